//! Vector index generations (`vector_generations`): which embedding model's vector tables
//! answer queries, and which are being built.
//!
//! Each embedding model the index is (re)built with gets a generation number; its vectors
//! live in that generation's tables, never mixed with another model's. At most one
//! generation is `active` (queries use it) and at most one is `building` (a re-embed fills
//! it); finishing a build is one transaction that retires the active generation and
//! activates the built one, so a crash leaves either the old index in use or the new one,
//! never a half-built one. Retired and abandoned generations are forgotten once their
//! tables are dropped.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension as _, TransactionBehavior, params};

use crate::error::{Error, Result};
use crate::rows::{time_from_sql, time_to_sql};
use crate::sqlite::SqliteCatalog;

/// What a generation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerationState {
    /// Queries use it.
    Active,
    /// A re-embed is filling it.
    Building,
    /// Replaced; its tables are to be dropped.
    Retired,
}

impl GenerationState {
    /// The stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Building => "building",
            Self::Retired => "retired",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        match text {
            "active" => Ok(Self::Active),
            "building" => Ok(Self::Building),
            "retired" => Ok(Self::Retired),
            other => Err(Error::Corrupt(format!("unknown vector generation state {other:?}"))),
        }
    }
}

/// One generation of the vector index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorGeneration {
    /// Its number; its tables are named after it.
    pub generation: u32,
    /// The embedding model whose vectors it holds.
    pub model_id: String,
    /// Their length.
    pub dimensions: usize,
    /// What it is for.
    pub state: GenerationState,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
}

/// The columns [`convert`] expects, in order; plain SQL for SQLite and Postgres.
pub(crate) const COLUMNS: &str = "generation, model_id, dimensions, state, created_at, updated_at";

/// A row as read, before its values are checked.
pub(crate) type RawRow = (i64, String, i64, String, String, String);

fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
}

/// Converts a stored generation number to the API's.
pub(crate) fn generation_from_sql(generation: i64) -> Result<u32> {
    u32::try_from(generation).map_err(|_| Error::Corrupt(format!("vector generation {generation}")))
}

/// Checks a row's values and converts it to a [`VectorGeneration`].
pub(crate) fn convert(raw: RawRow) -> Result<VectorGeneration> {
    let (generation, model_id, dimensions, state, created_at, updated_at) = raw;
    Ok(VectorGeneration {
        generation: generation_from_sql(generation)?,
        model_id,
        dimensions: usize::try_from(dimensions)
            .map_err(|_| Error::Corrupt(format!("vector dimension {dimensions}")))?,
        state: GenerationState::parse(&state)?,
        created_at: time_from_sql(&created_at)?,
        updated_at: time_from_sql(&updated_at)?,
    })
}

/// Records a generation in `state`, created now, and returns its row.
fn insert(
    tx: &rusqlite::Transaction<'_>,
    generation: i64,
    model_id: &str,
    dimensions: usize,
    state: GenerationState,
) -> Result<RawRow> {
    let now = time_to_sql(Utc::now());
    tx.execute(
        "INSERT INTO vector_generations \
         (generation, model_id, dimensions, state, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![generation, model_id, dimensions as i64, state.as_str(), now],
    )?;
    Ok((
        generation,
        model_id.to_owned(),
        dimensions as i64,
        state.as_str().to_owned(),
        now.clone(),
        now,
    ))
}

impl SqliteCatalog {
    /// Every recorded generation, oldest first.
    ///
    /// # Errors
    /// [`Error::Sqlite`] when the query fails, [`Error::Corrupt`] for an unreadable row.
    pub(crate) fn vector_generations(&self) -> Result<Vec<VectorGeneration>> {
        let conn = self.lock();
        let mut statement = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM vector_generations ORDER BY generation"
        ))?;
        let rows = statement.query_map([], read)?;
        rows.map(|row| convert(row?)).collect()
    }

    /// Records the generation in use when none is recorded yet (a data directory from
    /// before generations, or a new one) and returns the active generation.
    ///
    /// # Errors
    /// [`Error::Sqlite`] when the statements fail.
    pub(crate) fn ensure_active_generation(
        &self,
        generation: u32,
        model_id: &str,
        dimensions: usize,
    ) -> Result<VectorGeneration> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let active = tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM vector_generations WHERE state = 'active'"),
                [],
                read,
            )
            .optional()?;
        let active = match active {
            Some(active) => active,
            None => {
                insert(&tx, i64::from(generation), model_id, dimensions, GenerationState::Active)?
            }
        };
        tx.commit()?;
        convert(active)
    }

    /// Starts a new `building` generation for `model_id`, numbered after every recorded
    /// one.
    ///
    /// # Errors
    /// [`Error::InUse`] when a generation is already building,
    /// [`Error::Sqlite`] when the statements fail.
    pub(crate) fn start_generation(
        &self,
        model_id: &str,
        dimensions: usize,
    ) -> Result<VectorGeneration> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let building: Option<i64> = tx
            .query_row(
                "SELECT generation FROM vector_generations WHERE state = 'building'",
                [],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(building) = building {
            return Err(Error::InUse {
                what: "the vector index".to_owned(),
                by: format!("generation {building} is already being built"),
            });
        }
        let next: i64 = tx.query_row(
            "SELECT coalesce(max(generation), 0) + 1 FROM vector_generations",
            [],
            |row| row.get(0),
        )?;
        let started = insert(&tx, next, model_id, dimensions, GenerationState::Building)?;
        tx.commit()?;
        convert(started)
    }

    /// Activates the building generation `generation` and retires the active one, in one
    /// transaction; returns the retired generation's number.
    ///
    /// # Errors
    /// [`Error::NotFound`] when `generation` is not building, [`Error::Sqlite`] when the
    /// statements fail.
    pub(crate) fn activate_generation(&self, generation: u32) -> Result<Option<u32>> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = time_to_sql(Utc::now());
        let retired: Option<u32> = tx
            .query_row(
                "SELECT generation FROM vector_generations WHERE state = 'active'",
                [],
                |row| row.get(0),
            )
            .optional()?;
        tx.execute(
            "UPDATE vector_generations SET state = 'retired', updated_at = ?1 \
             WHERE state = 'active'",
            [&now],
        )?;
        let changed = tx.execute(
            "UPDATE vector_generations SET state = 'active', updated_at = ?2 \
             WHERE generation = ?1 AND state = 'building'",
            params![generation, now],
        )?;
        if changed == 0 {
            return Err(Error::NotFound {
                what: "building vector generation",
                id: generation.to_string(),
            });
        }
        tx.commit()?;
        Ok(retired)
    }

    /// Forgets a retired or building generation (its tables are gone); the active one is
    /// never forgotten.
    ///
    /// # Errors
    /// [`Error::Sqlite`] when the statement fails.
    pub(crate) fn forget_generation(&self, generation: u32) -> Result<bool> {
        let removed = self.lock().execute(
            "DELETE FROM vector_generations WHERE generation = ?1 AND state <> 'active'",
            [generation],
        )?;
        Ok(removed > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_swaps_in_one_step_and_only_one_builds_at_a_time() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
        let first = catalog.ensure_active_generation(0, "model-a", 384).unwrap();
        assert_eq!((first.generation, first.state), (0, GenerationState::Active));
        // A second call keeps what is recorded.
        let again = catalog.ensure_active_generation(0, "model-b", 8).unwrap();
        assert_eq!(again.model_id, "model-a");

        let building = catalog.start_generation("model-b", 256).unwrap();
        assert_eq!((building.generation, building.state), (1, GenerationState::Building));
        assert!(matches!(catalog.start_generation("model-c", 8), Err(Error::InUse { .. })));

        assert_eq!(catalog.activate_generation(1).unwrap(), Some(0));
        let states: Vec<(u32, GenerationState)> = catalog
            .vector_generations()
            .unwrap()
            .into_iter()
            .map(|g| (g.generation, g.state))
            .collect();
        assert_eq!(states, [(0, GenerationState::Retired), (1, GenerationState::Active)]);
        assert!(catalog.activate_generation(1).is_err(), "only a building one activates");
        assert!(catalog.forget_generation(0).unwrap());
        assert!(!catalog.forget_generation(1).unwrap(), "the active one stays");
        assert_eq!(catalog.start_generation("model-c", 8).unwrap().generation, 2);
    }
}
