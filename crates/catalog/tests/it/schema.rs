//! Opening, pragmas and migrations of the SQLite catalog.

use ragd_catalog::{Catalog, Error, SCHEMA_VERSION};
use ragd_core::ErrorKind;

use crate::{raw, temp_sqlite_catalog as temp_catalog};

#[test]
fn opening_twice_is_idempotent_and_sets_user_version() {
    let (dir, catalog) = temp_catalog();
    assert_eq!(catalog.schema_version().unwrap(), SCHEMA_VERSION);
    drop(catalog);
    let again = Catalog::open(&dir.path().join("catalog.sqlite3")).unwrap();
    assert_eq!(again.schema_version().unwrap(), SCHEMA_VERSION);
    let version: i64 =
        raw(&dir).pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn a_second_open_while_the_first_is_alive_shares_the_file() {
    let (dir, first) = temp_catalog();
    crate::add_document(&first, "a.txt", "text/plain", 1);
    let second = Catalog::open(&dir.path().join("catalog.sqlite3")).unwrap();
    assert_eq!(second.count_documents().unwrap(), 1);
}

#[test]
fn file_database_uses_wal_and_foreign_keys() {
    let (dir, _catalog) = temp_catalog();
    let mode: String =
        raw(&dir).pragma_query_value(None, "journal_mode", |row| row.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.sqlite3");
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 5)
        .unwrap();
    let err = Catalog::open(&path).unwrap_err();
    assert!(
        matches!(err, Error::SchemaTooNew { found, supported } if found == SCHEMA_VERSION + 5 && supported == SCHEMA_VERSION),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains("newer"));
}

#[test]
fn in_memory_catalogs_are_private() {
    let a = Catalog::open_in_memory().unwrap();
    let b = Catalog::open_in_memory().unwrap();
    crate::add_document(&a, "a.txt", "text/plain", 1);
    assert_eq!(a.count_documents().unwrap(), 1);
    assert_eq!(b.count_documents().unwrap(), 0);
    assert!(format!("{a:?}").contains("Catalog"));
}
