//! Versioned schema migrations.
//!
//! The schema version lives in SQLite's `PRAGMA user_version`. [`MIGRATIONS`] holds one SQL
//! script per version: entry `i` moves the database from version `i` to version `i + 1`.
//! Each script runs in its own immediate transaction together with the `user_version`
//! bump, so a crash leaves the database at a whole version and concurrent openers cannot
//! both apply the same script. Migrations are append-only: a released script is never
//! edited, a change is a new entry.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

/// Version 1: documents, their extracted text, chunks and the chunk full-text index.
///
/// `chunks.seq` is an `INTEGER PRIMARY KEY`, an alias of the rowid, because the FTS5
/// external-content index addresses chunks by rowid: a rowid that is not aliased may be
/// renumbered by `VACUUM`, which would silently detach the index from its content. The
/// public chunk id stays the `id` column.
const V1: &str = r"
CREATE TABLE documents (
    id         TEXT    NOT NULL PRIMARY KEY,
    filename   TEXT    NOT NULL,
    mime       TEXT    NOT NULL,
    sha256     TEXT    NOT NULL UNIQUE,
    bytes      INTEGER NOT NULL,
    status     TEXT    NOT NULL,
    progress   INTEGER NOT NULL,
    error      TEXT,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
);
CREATE INDEX documents_created_at ON documents (created_at, id);
CREATE INDEX documents_status ON documents (status);

CREATE TABLE document_texts (
    document_id TEXT NOT NULL PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    text        TEXT NOT NULL
);

CREATE TABLE chunks (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    document_id TEXT    NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal     INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    char_start  INTEGER NOT NULL,
    char_end    INTEGER NOT NULL,
    token_count INTEGER NOT NULL,
    page        INTEGER,
    heading     TEXT,
    UNIQUE (document_id, ordinal)
);

CREATE VIRTUAL TABLE chunks_fts USING fts5 (
    text,
    content = 'chunks',
    content_rowid = 'seq',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER chunks_fts_after_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, text) VALUES (new.seq, new.text);
END;

CREATE TRIGGER chunks_fts_after_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.seq, old.text);
END;

CREATE TRIGGER chunks_fts_after_update AFTER UPDATE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.seq, old.text);
    INSERT INTO chunks_fts (rowid, text) VALUES (new.seq, new.text);
END;
";

/// Version 2: chat sessions, their documents and tags, messages and their full-text index.
///
/// `session_documents` references `documents`, so deleting a document takes it out of every
/// session's retrieval set. `sessions_fts` indexes each session's name and tags (kept in sync
/// by the catalog code in the same transactions), `messages_fts` the message text (kept in
/// sync by triggers, like `chunks_fts`).
const V2: &str = r"
CREATE TABLE sessions (
    id               TEXT NOT NULL PRIMARY KEY,
    name             TEXT NOT NULL,
    model            TEXT,
    created_at       TEXT NOT NULL,
    last_activity_at TEXT NOT NULL,
    summary          TEXT,
    summary_through  TEXT
);
CREATE INDEX sessions_last_activity ON sessions (last_activity_at, id);

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
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    model      TEXT,
    metadata   TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX messages_session ON messages (session_id, seq);

CREATE VIRTUAL TABLE messages_fts USING fts5 (
    content,
    content = 'messages',
    content_rowid = 'seq',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_fts_after_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
END;

CREATE TRIGGER messages_fts_after_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
END;

CREATE TRIGGER messages_fts_after_update AFTER UPDATE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
END;

CREATE VIRTUAL TABLE sessions_fts USING fts5 (
    session_id UNINDEXED,
    name,
    tags,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER sessions_fts_after_delete AFTER DELETE ON sessions BEGIN
    DELETE FROM sessions_fts WHERE session_id = old.id;
END;
";

/// Version 3: collections (named sets of documents) and the collections a session's
/// retrieval is restricted to.
///
/// Names are unique regardless of ASCII case. Deleting a document takes it out of every
/// collection; deleting a collection leaves its documents stored. `session_collections` does
/// not cascade from `collections`: a collection a session uses cannot be deleted (the catalog
/// refuses it by name), because the session would silently widen to every document.
const V3: &str = r"
CREATE TABLE collections (
    id          TEXT NOT NULL PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX collections_name ON collections (name COLLATE NOCASE);

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
";

/// Version 4: user metadata of documents, one row per key. `value` has no declared type, so
/// it keeps what was stored (TEXT, REAL, or INTEGER 0/1 for bools); `kind` says which.
const V4: &str = r"
CREATE TABLE document_metadata (
    document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('string', 'number', 'bool')),
    value,
    PRIMARY KEY (document_id, key)
);
CREATE INDEX document_metadata_key_value ON document_metadata (key, kind, value);
";

/// Version 5: generations of the vector index (see `generations.rs`): at most one active
/// and at most one building.
const V5: &str = r"
CREATE TABLE vector_generations (
    generation INTEGER NOT NULL PRIMARY KEY,
    model_id   TEXT    NOT NULL,
    dimensions INTEGER NOT NULL,
    state      TEXT    NOT NULL CHECK (state IN ('active', 'building', 'retired')),
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
);
CREATE UNIQUE INDEX vector_generations_one_active
    ON vector_generations (state) WHERE state = 'active';
CREATE UNIQUE INDEX vector_generations_one_building
    ON vector_generations (state) WHERE state = 'building';
";

/// Version 6: what an extraction left out without failing the document, as a JSON array
/// of sentences.
const V6: &str = r"
ALTER TABLE documents ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]';
";

/// Version 7: work leases (`leases.rs`): which process works on an unfinished document,
/// until when.
const V7: &str = r"
ALTER TABLE documents ADD COLUMN lease_owner TEXT;
ALTER TABLE documents ADD COLUMN lease_expires_at TEXT;
";

/// Every migration, in order. The schema version after all of them is their count.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7];

/// The newest schema version this build knows (the number of migrations).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Reads `PRAGMA user_version`.
pub(crate) fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Brings the database up to [`SCHEMA_VERSION`], or refuses one that is newer.
///
/// Opening an up-to-date database runs no script.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let found = user_version(conn)?;
    check_not_too_new(found)?;
    for (index, script) in MIGRATIONS.iter().enumerate() {
        let target = i64::try_from(index + 1)
            .map_err(|_| Error::Corrupt("too many migrations".to_owned()))?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated between our read and taking the write lock.
        let current = user_version(&tx)?;
        check_not_too_new(current)?;
        if current >= target {
            continue;
        }
        tx.execute_batch(script)?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
        tracing::info!(version = target, "applied catalog migration");
    }
    Ok(())
}

/// Refuses a database written by a newer schema.
fn check_not_too_new(found: i64) -> Result<()> {
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew { found, supported: SCHEMA_VERSION });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn newer_schema_is_refused_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(matches!(err, Error::SchemaTooNew { found, .. } if found == SCHEMA_VERSION + 1));
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(tables, 0);
    }
}
