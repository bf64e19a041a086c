//! TLS to the Postgres catalog: libpq's `sslmode` and `sslrootcert` against the test server,
//! whose certificate a test CA issued to `localhost` only.

use ragd_catalog::Catalog;
use ragd_core::ErrorKind;
use ragd_test_utils::PgDatabase;

/// The catalog's connections to `database` (all, and how many of them encrypted), seen from
/// another connection.
fn connections(database: &PgDatabase) -> (i64, i64) {
    let row = postgres::Client::connect(&database.url, postgres::NoTls)
        .unwrap()
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl)
               FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
              WHERE a.datname = $1 AND a.pid <> pg_backend_pid()",
            &[&database.name],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

/// `database`'s URL on `host` with `query`.
fn url(database: &PgDatabase, host: &str, query: &str) -> String {
    format!("postgres://postgres@{host}:{}/{}?{query}", database.port(), database.name)
}

/// Connects, reads, and returns how many of the catalog's connections were encrypted.
fn encrypted_after_connecting(database: &PgDatabase, url: &str) -> i64 {
    let catalog = Catalog::connect_postgres(url).unwrap();
    assert_eq!(catalog.count_documents().unwrap(), 0);
    let (all, encrypted) = connections(database);
    assert!(all >= 1, "the catalog holds a connection: {all}");
    assert!(encrypted == 0 || encrypted == all, "{encrypted} of {all} encrypted");
    drop(catalog);
    encrypted
}

fn refused(url: &str) -> String {
    let err = Catalog::connect_postgres(url).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    err.to_string()
}

#[test]
fn by_default_connections_are_encrypted_when_the_server_offers_tls() {
    let database = PgDatabase::create();
    assert!(encrypted_after_connecting(&database, &database.url) >= 1);
}

#[test]
fn sslmode_disable_connects_in_the_clear() {
    let database = PgDatabase::create();
    assert_eq!(
        encrypted_after_connecting(&database, &url(&database, "127.0.0.1", "sslmode=disable")),
        0
    );
}

#[test]
fn verify_full_accepts_the_named_host_and_refuses_another_name() {
    let database = PgDatabase::create();
    let ca = format!("sslmode=verify-full&sslrootcert={}", database.ca_cert().display());
    assert!(encrypted_after_connecting(&database, &url(&database, "localhost", &ca)) >= 1);
    let err = refused(&url(&database, "127.0.0.1", &ca));
    assert!(err.contains("TLS") && err.contains("not valid for name"), "{err}");
}

#[test]
fn verify_ca_checks_the_signer_but_not_the_name() {
    let database = PgDatabase::create();
    let ca = format!("sslmode=verify-ca&sslrootcert={}", database.ca_cert().display());
    assert!(encrypted_after_connecting(&database, &url(&database, "127.0.0.1", &ca)) >= 1);
    let other = format!("sslmode=verify-ca&sslrootcert={}", database.other_ca_cert().display());
    for host in ["localhost", "127.0.0.1"] {
        let err = refused(&url(&database, host, &other));
        assert!(err.contains("TLS") && err.contains("UnknownIssuer"), "{err}");
    }
}

#[test]
fn modes_that_check_no_name_are_refused_with_the_systems_roots() {
    let database = PgDatabase::create();
    for query in ["sslmode=verify-ca", "sslmode=require&sslrootcert=system"] {
        let err = Catalog::connect_postgres(&url(&database, "localhost", query)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{query}: {err:?}");
    }
}

#[test]
fn a_unix_socket_is_not_encrypted_even_when_required() {
    let database = PgDatabase::create();
    let settings = format!(
        "host={} port={} user=postgres dbname={} sslmode=require",
        database.socket_dir().display(),
        database.port(),
        database.name
    );
    assert_eq!(encrypted_after_connecting(&database, &settings), 0);
}

#[test]
fn require_with_a_root_file_checks_the_signer_as_libpq_does() {
    let database = PgDatabase::create();
    assert!(
        encrypted_after_connecting(&database, &url(&database, "127.0.0.1", "sslmode=require")) >= 1
    );
    let other = format!("sslmode=require&sslrootcert={}", database.other_ca_cert().display());
    let err = refused(&url(&database, "127.0.0.1", &other));
    assert!(err.contains("UnknownIssuer"), "{err}");
}

#[test]
fn the_key_value_form_takes_the_same_settings() {
    let database = PgDatabase::create();
    let settings = |ca: &std::path::Path| {
        format!(
            "host=localhost port={} user=postgres dbname={} sslmode=verify-full sslrootcert={}",
            database.port(),
            database.name,
            ca.display()
        )
    };
    assert!(encrypted_after_connecting(&database, &settings(&database.ca_cert())) >= 1);
    let err = refused(&settings(&database.other_ca_cert()));
    assert!(err.contains("UnknownIssuer"), "{err}");
}

#[test]
fn a_root_file_that_cannot_be_read_is_invalid_input() {
    let database = PgDatabase::create();
    let err = Catalog::connect_postgres(&url(
        &database,
        "localhost",
        "sslmode=verify-full&sslrootcert=/no/such/root.crt",
    ))
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
    assert!(err.to_string().contains("/no/such/root.crt"), "{err}");
}
