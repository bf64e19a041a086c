//! Connecting to and migrating the Postgres catalog.

use ragd_catalog::{Catalog, Error};
use ragd_core::ErrorKind;
use ragd_test_utils::PgDatabase;

/// Reads the version row behind the catalog's back.
fn stored_version(database: &PgDatabase) -> i64 {
    postgres::Client::connect(&database.url, postgres::NoTls)
        .unwrap()
        .query_one("SELECT version FROM ragd_schema", &[])
        .unwrap()
        .get(0)
}

#[test]
fn connecting_twice_migrates_once_and_shares_the_data() {
    let database = PgDatabase::create();
    let first = Catalog::connect_postgres(&database.url).unwrap();
    let version = first.schema_version().unwrap();
    assert!(version >= 1, "{version}");
    crate::add_document(&first, "a.txt", "text/plain", 1);
    let second = Catalog::connect_postgres(&database.url).unwrap();
    assert_eq!(second.schema_version().unwrap(), version);
    assert_eq!(second.count_documents().unwrap(), 1);
    assert_eq!(stored_version(&database), version);
}

#[test]
fn replicas_connecting_at_once_migrate_a_new_database_once() {
    let database = PgDatabase::create();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = database.url.clone();
            std::thread::spawn(move || Catalog::connect_postgres(&url).map(|c| c.count_documents()))
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap().unwrap().unwrap(), 0);
    }
}

#[test]
fn newer_schema_is_refused() {
    let database = PgDatabase::create();
    let version = Catalog::connect_postgres(&database.url).unwrap().schema_version().unwrap();
    postgres::Client::connect(&database.url, postgres::NoTls)
        .unwrap()
        .execute("UPDATE ragd_schema SET version = version + 5", &[])
        .unwrap();
    let err = Catalog::connect_postgres(&database.url).unwrap_err();
    assert!(
        matches!(err, Error::SchemaTooNew { found, supported } if found == version + 5 && supported == version),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
}

#[test]
fn an_unreachable_server_is_unavailable_and_a_bad_url_invalid() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err =
        Catalog::connect_postgres(&format!("postgres://ragd@127.0.0.1:{port}/ragd")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    let err = Catalog::connect_postgres("postgres://ragd@127.0.0.1:notaport/ragd").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
}

#[test]
fn the_password_never_reaches_debug_output() {
    let database = PgDatabase::create();
    let url = database.url.replace("postgres@", "postgres:hunter2@");
    let catalog = Catalog::connect_postgres(&url).unwrap();
    let shown = format!("{catalog:?}");
    assert!(shown.contains("PostgresCatalog"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}
