//! The Postgres schema and its versioned migrations.
//!
//! The version lives in the one-row table `ragd_schema`. [`MIGRATIONS`] holds one script per
//! version, append-only like SQLite's. Each runs in one transaction with the version bump,
//! under a transaction-scoped advisory lock, so replicas starting together apply each script
//! once and a crash leaves a whole version.
//!
//! The tables mirror SQLite's (`crate::schema`) with Postgres types: ids and times are the
//! same text, integers `bigint`, metadata values one typed column per kind. Full-text search
//! runs on generated `tsvector` columns (`ragd_english`: `unaccent`, then the `english`
//! configuration's Snowball stemming, as FTS5's porter tokenizer with diacritics removed)
//! with GIN indexes; sessions keep their name and tags in one.

use postgres::GenericClient;

use crate::error::{Error, Result};

/// Version 1: everything SQLite's versions 1 to 6 hold.
const V1: &str = r"
-- FTS5's tokenizer removes diacritics (remove_diacritics 2), so 'cafe' finds 'café'; these
-- two configurations do the same with the `unaccent` dictionary (contrib, a trusted
-- extension since Postgres 13) before `english`'s Snowball stemmer or `simple`.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE TEXT SEARCH CONFIGURATION ragd_english (COPY = english);
ALTER TEXT SEARCH CONFIGURATION ragd_english
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem;
CREATE TEXT SEARCH CONFIGURATION ragd_simple (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION ragd_simple
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple;

CREATE TABLE documents (
    id         TEXT   NOT NULL PRIMARY KEY,
    filename   TEXT   NOT NULL,
    mime       TEXT   NOT NULL,
    sha256     TEXT   NOT NULL UNIQUE,
    bytes      BIGINT NOT NULL,
    status     TEXT   NOT NULL,
    progress   BIGINT NOT NULL,
    error      TEXT,
    created_at TEXT   NOT NULL,
    updated_at TEXT   NOT NULL,
    warnings   TEXT   NOT NULL DEFAULT '[]'
);
CREATE INDEX documents_created_at ON documents (created_at, id);
CREATE INDEX documents_status ON documents (status);

CREATE TABLE document_texts (
    document_id TEXT NOT NULL PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    text        TEXT NOT NULL
);

CREATE TABLE chunks (
    id          TEXT   NOT NULL PRIMARY KEY,
    document_id TEXT   NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal     BIGINT NOT NULL,
    text        TEXT   NOT NULL,
    char_start  BIGINT NOT NULL,
    char_end    BIGINT NOT NULL,
    token_count BIGINT NOT NULL,
    page        BIGINT,
    heading     TEXT,
    tsv         TSVECTOR GENERATED ALWAYS AS (to_tsvector('ragd_english', text)) STORED,
    UNIQUE (document_id, ordinal)
);
CREATE INDEX chunks_tsv ON chunks USING GIN (tsv);

CREATE TABLE sessions (
    id               TEXT NOT NULL PRIMARY KEY,
    name             TEXT NOT NULL,
    model            TEXT,
    created_at       TEXT NOT NULL,
    last_activity_at TEXT NOT NULL,
    summary          TEXT,
    summary_through  TEXT,
    -- The name and tags as one text, kept by the catalog code in the transactions that
    -- change either; searched through `search_tsv`.
    search_text      TEXT NOT NULL DEFAULT '',
    search_tsv       TSVECTOR GENERATED ALWAYS AS (to_tsvector('ragd_english', search_text)) STORED
);
CREATE INDEX sessions_last_activity ON sessions (last_activity_at, id);
CREATE INDEX sessions_search_tsv ON sessions USING GIN (search_tsv);

CREATE TABLE session_documents (
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    PRIMARY KEY (session_id, document_id)
);
CREATE INDEX session_documents_document ON session_documents (document_id);

CREATE TABLE session_tags (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    tag        TEXT NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('auto', 'user')),
    PRIMARY KEY (session_id, tag)
);
CREATE INDEX session_tags_tag ON session_tags (tag);

CREATE TABLE messages (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    model      TEXT,
    metadata   TEXT NOT NULL DEFAULT '{}',
    tsv        TSVECTOR GENERATED ALWAYS AS (to_tsvector('ragd_english', content)) STORED
);
CREATE INDEX messages_session ON messages (session_id, seq);
CREATE INDEX messages_tsv ON messages USING GIN (tsv);

CREATE TABLE collections (
    id          TEXT NOT NULL PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
-- Unique regardless of case (lower() folds by the database's locale; SQLite's NOCASE folds
-- ASCII only). Lookups by name compare lower(name) = lower($1) to use this index.
CREATE UNIQUE INDEX collections_name ON collections (lower(name));

CREATE TABLE collection_documents (
    collection_id TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    document_id   TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    added_at      TEXT NOT NULL,
    PRIMARY KEY (collection_id, document_id)
);
CREATE INDEX collection_documents_document ON collection_documents (document_id);

CREATE TABLE session_collections (
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    collection_id TEXT NOT NULL REFERENCES collections (id),
    PRIMARY KEY (session_id, collection_id)
);
CREATE INDEX session_collections_collection ON session_collections (collection_id);

CREATE TABLE document_metadata (
    document_id  TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('string', 'number', 'bool')),
    text_value   TEXT,
    number_value DOUBLE PRECISION,
    bool_value   BOOLEAN,
    PRIMARY KEY (document_id, key)
);
CREATE INDEX document_metadata_text ON document_metadata (key, text_value);
CREATE INDEX document_metadata_number ON document_metadata (key, number_value);

CREATE TABLE vector_generations (
    generation BIGINT NOT NULL PRIMARY KEY,
    model_id   TEXT   NOT NULL,
    dimensions BIGINT NOT NULL,
    state      TEXT   NOT NULL CHECK (state IN ('active', 'building', 'retired')),
    created_at TEXT   NOT NULL,
    updated_at TEXT   NOT NULL
);
CREATE UNIQUE INDEX vector_generations_one_active
    ON vector_generations (state) WHERE state = 'active';
CREATE UNIQUE INDEX vector_generations_one_building
    ON vector_generations (state) WHERE state = 'building';
";

/// Version 2: work leases (`crate::leases`), and the queue's order.
const V2: &str = r"
ALTER TABLE documents ADD COLUMN lease_owner TEXT;
ALTER TABLE documents ADD COLUMN lease_expires_at TEXT;
";

/// Every migration, in order. The schema version after all of them is their count.
const MIGRATIONS: &[&str] = &[V1, V2];

/// The newest Postgres schema version this build knows.
pub(crate) const PG_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock key migrations hold ("ragd" in ASCII).
const MIGRATION_LOCK: i64 = 0x7261_6764;

/// The version stored in `ragd_schema`, 0 for a database ragd never migrated.
pub(crate) fn stored_version(client: &mut impl GenericClient) -> Result<i64> {
    let exists: bool =
        client.query_one("SELECT to_regclass('ragd_schema') IS NOT NULL", &[])?.try_get(0)?;
    if !exists {
        return Ok(0);
    }
    let row = client.query_opt("SELECT version FROM ragd_schema", &[])?;
    Ok(match row {
        Some(row) => row.try_get(0)?,
        None => 0,
    })
}

/// Brings the database up to [`PG_SCHEMA_VERSION`], or refuses one that is newer.
pub(crate) fn migrate(client: &mut postgres::Client) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS ragd_schema (version BIGINT NOT NULL)")?;
    let found = stored_version(&mut tx)?;
    if found > PG_SCHEMA_VERSION {
        return Err(Error::SchemaTooNew { found, supported: PG_SCHEMA_VERSION });
    }
    if found == 0 && tx.query_opt("SELECT version FROM ragd_schema", &[])?.is_none() {
        tx.execute("INSERT INTO ragd_schema (version) VALUES (0)", &[])?;
    }
    for (index, script) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
        let target = i64::try_from(index + 1)
            .map_err(|_| Error::Corrupt("too many migrations".to_owned()))?;
        tx.batch_execute(script)?;
        tx.execute("UPDATE ragd_schema SET version = $1", &[&target])?;
        tracing::info!(version = target, "applied Postgres catalog migration");
    }
    tx.commit()?;
    Ok(())
}
