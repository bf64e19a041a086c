//! The [`Catalog`] handle: the catalog every other crate holds, whatever database is behind it.

use std::{fmt, ops::Deref, path::Path, sync::Arc};

use crate::{
    backend::CatalogBackend,
    error::{Error, Result},
    pg::PostgresCatalog,
    sqlite::SqliteCatalog,
};

/// A cheap, cloneable handle to the catalog.
///
/// It dereferences to [`CatalogBackend`], so every catalog operation is a method call on
/// it (`catalog.get_document(id)`). Every method blocks on the database; async callers run
/// them through [`Catalog::run`], on Tokio's blocking pool.
#[derive(Clone)]
pub struct Catalog {
    backend: Arc<dyn CatalogBackend>,
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.backend.fmt(f)
    }
}

impl Deref for Catalog {
    type Target = dyn CatalogBackend;

    fn deref(&self) -> &Self::Target {
        self.backend.as_ref()
    }
}

impl Catalog {
    /// Wraps a backend: an integrator's own store, or one opened by hand.
    #[must_use]
    pub fn from_backend(backend: Arc<dyn CatalogBackend>) -> Self {
        Self { backend }
    }

    /// Opens (creating if needed) the SQLite database file at `path`; see
    /// [`SqliteCatalog::open`].
    ///
    /// # Errors
    ///
    /// As [`SqliteCatalog::open`].
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self::from_backend(Arc::new(SqliteCatalog::open(path)?)))
    }

    /// Opens a private, empty in-memory SQLite database, for tests.
    ///
    /// # Errors
    ///
    /// As [`SqliteCatalog::open_in_memory`].
    pub fn open_in_memory() -> Result<Self> {
        Ok(Self::from_backend(Arc::new(SqliteCatalog::open_in_memory()?)))
    }

    /// Connects to the Postgres database at `url` (`postgres://user@host:port/db`) and
    /// migrates it; see [`PostgresCatalog::connect`].
    ///
    /// # Errors
    ///
    /// As [`PostgresCatalog::connect`].
    pub fn connect_postgres(url: &str) -> Result<Self> {
        Ok(Self::from_backend(Arc::new(PostgresCatalog::connect(url)?)))
    }

    /// Runs `f` on this catalog on Tokio's blocking pool: the one way async code calls the
    /// catalog without blocking the runtime.
    ///
    /// # Errors
    /// What `f` returns; [`Error::Task`] when it panicked.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Self) -> Result<T> + Send + 'static,
    {
        let catalog = self.clone();
        tokio::task::spawn_blocking(move || f(&catalog)).await.map_err(Error::Task)?
    }
}

/// One page of a listing, with the number of matches over all pages.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// How many items match the query, ignoring `limit` and `offset`.
    pub total: u64,
}
