//! Chat sessions: creating, reading, listing and searching, updating, tagging, deleting.
//!
//! A session row holds its name, model, times and summary; its retrieval documents and
//! tags live in `session_documents` and `session_tags`. Every change that touches the name
//! or the tags also rewrites the session's `sessions_fts` row in the same transaction, so
//! [`Catalog::list_sessions`] can search names, tags and message text with FTS5.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use ragd_core::{CollectionId, DocumentId, MessageId, Session, SessionId};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};

use crate::{
    catalog::Page,
    error::{Error, Result},
    rows::{id_from_sql as parse_id, id_to_sql, time_from_sql as parse_time, time_to_sql},
    search::{fts_query, no_searchable_word},
    sqlite::SqliteCatalog,
};

/// The longest session name, in chars.
pub const MAX_NAME_CHARS: usize = 200;

/// The longest tag, in chars.
pub const MAX_TAG_CHARS: usize = 64;

/// The most tags one session may carry (automatic and user tags together).
pub const MAX_TAGS: usize = 32;

/// The most documents one session may restrict retrieval to.
pub const MAX_SESSION_DOCUMENTS: usize = 256;

/// Who gave a session a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagSource {
    /// Derived from the session text by ragd.
    Auto,
    /// Set by the user; automatic tagging never removes it.
    User,
}

impl TagSource {
    /// The stored name of the source.
    pub(crate) const fn as_sql(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::User => "user",
        }
    }
}

/// What [`Catalog::create_session`] stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The id to give the session.
    pub id: SessionId,
    /// Its name (1 to [`MAX_NAME_CHARS`] chars after trimming).
    pub name: String,
    /// The model it uses by default, if chosen.
    pub model: Option<String>,
    /// Documents retrieval is restricted to; each must exist.
    pub document_ids: Vec<DocumentId>,
    /// Collections retrieval is restricted to (with the documents: their union); each must
    /// exist.
    pub collection_ids: Vec<CollectionId>,
    /// User tags (normalised by [`normalize_tag`]).
    pub tags: Vec<String>,
}

/// Filters and paging for [`Catalog::list_sessions`]. Filters combine with AND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionQuery {
    /// Free text matched (any word, stemmed) against names, tags and message content.
    pub text: Option<String>,
    /// Only sessions carrying this tag (normalised first).
    pub tag: Option<String>,
    /// Only sessions whose name contains this text (literally, ASCII case-insensitive).
    pub name_contains: Option<String>,
    /// Only sessions restricted to some of these collections and nothing outside them: at
    /// least one collection, all of them in the list, and every document of the session in
    /// one of them (`None`: no condition).
    pub within_collections: Option<Vec<CollectionId>>,
    /// Page size.
    pub limit: u32,
    /// How many matches to skip.
    pub offset: u32,
}

impl Default for SessionQuery {
    /// No filters, the 50 most recently active sessions.
    fn default() -> Self {
        Self {
            text: None,
            tag: None,
            name_contains: None,
            within_collections: None,
            limit: 50,
            offset: 0,
        }
    }
}

/// Changes for [`Catalog::update_session`]; `None` and empty lists change nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionUpdate {
    /// A new name.
    pub name: Option<String>,
    /// A new set of retrieval documents (replacing the old set).
    pub document_ids: Option<Vec<DocumentId>>,
    /// A new set of retrieval collections (replacing the old set).
    pub collection_ids: Option<Vec<CollectionId>>,
    /// User tags to add.
    pub add_tags: Vec<String>,
    /// Tags (automatic or user) to remove.
    pub remove_tags: Vec<String>,
}

/// Trims, lowercases and checks a tag: 1 to [`MAX_TAG_CHARS`] chars, no control chars.
/// Inner runs of whitespace become one space.
///
/// # Errors
///
/// [`Error::InvalidInput`] for an empty, too long or control-char tag.
pub fn normalize_tag(tag: &str) -> Result<String> {
    let normalized = tag.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    if normalized.is_empty() {
        return Err(Error::InvalidInput("a tag must not be empty".to_owned()));
    }
    if normalized.chars().count() > MAX_TAG_CHARS {
        return Err(Error::InvalidInput(format!(
            "tag {normalized:?} is longer than {MAX_TAG_CHARS} chars"
        )));
    }
    if normalized.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!("tag {normalized:?} contains a control char")));
    }
    Ok(normalized)
}

/// Trims and checks a session name.
pub(crate) fn normalize_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::InvalidInput("a session name must not be empty".to_owned()));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::InvalidInput(format!(
            "a session name must be at most {MAX_NAME_CHARS} chars"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::InvalidInput(
            "a session name must not contain control chars".to_owned(),
        ));
    }
    Ok(name.to_owned())
}

/// Normalises tags and drops repeats, keeping their order.
pub(crate) fn normalize_tags(tags: &[String]) -> Result<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = normalize_tag(tag)?;
        if seen.insert(tag.clone()) {
            out.push(tag);
        }
    }
    Ok(out)
}

/// The normalised name and user tags of a new session, checked.
pub(crate) fn check_new_session(new: &NewSession) -> Result<(String, Vec<String>)> {
    let name = normalize_name(&new.name)?;
    let tags = normalize_tags(&new.tags)?;
    if tags.len() > MAX_TAGS {
        return Err(Error::InvalidInput(format!("a session may carry at most {MAX_TAGS} tags")));
    }
    Ok((name, tags))
}

/// The automatic tags worth storing: normalised, invalid ones skipped, repeats dropped,
/// in their order.
pub(crate) fn normalize_auto_tags(tags: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    tags.iter()
        .filter_map(|tag| normalize_tag(tag).ok())
        .filter(|tag| seen.insert(tag.clone()))
        .collect()
}

/// How many automatic tags fit beside the `kept` tags a session carries.
pub(crate) fn auto_tag_room(kept: i64) -> usize {
    MAX_TAGS.saturating_sub(usize::try_from(kept).unwrap_or(MAX_TAGS))
}

/// Fails when a session would carry `count` tags, more than [`MAX_TAGS`].
pub(crate) fn check_tag_total(count: i64) -> Result<()> {
    if count.unsigned_abs() > MAX_TAGS as u64 {
        return Err(Error::InvalidInput(format!("a session may carry at most {MAX_TAGS} tags")));
    }
    Ok(())
}

/// A session's documents, sorted and without repeats, refused when too many.
pub(crate) fn unique_documents(ids: &[DocumentId]) -> Result<Vec<DocumentId>> {
    let unique: Vec<DocumentId> =
        ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    if unique.len() > MAX_SESSION_DOCUMENTS {
        return Err(Error::InvalidInput(format!(
            "a session may use at most {MAX_SESSION_DOCUMENTS} documents"
        )));
    }
    Ok(unique)
}

/// A session's collections, sorted and without repeats, refused when too many.
pub(crate) fn unique_collections(ids: &[CollectionId]) -> Result<Vec<CollectionId>> {
    let unique: Vec<CollectionId> =
        ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    if unique.len() > MAX_SESSION_DOCUMENTS {
        return Err(Error::InvalidInput(format!(
            "a session may use at most {MAX_SESSION_DOCUMENTS} collections"
        )));
    }
    Ok(unique)
}

/// Fails unless every document exists; repeats are dropped.
fn check_documents(conn: &Connection, ids: &[DocumentId]) -> Result<Vec<DocumentId>> {
    let unique = unique_documents(ids)?;
    let mut statement = conn.prepare_cached("SELECT 1 FROM documents WHERE id = ?1")?;
    for id in &unique {
        if !statement.exists([id_to_sql(id)])? {
            return Err(Error::not_found("document", id));
        }
    }
    Ok(unique)
}

/// Fails unless every collection exists; repeats are dropped.
fn check_collections(conn: &Connection, ids: &[CollectionId]) -> Result<Vec<CollectionId>> {
    let unique = unique_collections(ids)?;
    for id in &unique {
        crate::collections::require_collection(conn, *id)?;
    }
    Ok(unique)
}

/// Replaces a session's collection set.
fn replace_collections(
    conn: &Connection,
    id: SessionId,
    collections: &[CollectionId],
) -> Result<()> {
    conn.execute("DELETE FROM session_collections WHERE session_id = ?1", [id_to_sql(id)])?;
    let mut statement = conn.prepare_cached(
        "INSERT INTO session_collections (session_id, collection_id) VALUES (?1, ?2)",
    )?;
    for collection in collections {
        statement.execute([id_to_sql(id), id_to_sql(collection)])?;
    }
    Ok(())
}

/// A `sessions` row as stored.
pub(crate) struct SessionRow {
    id: String,
    name: String,
    model: Option<String>,
    created_at: String,
    last_activity_at: String,
    summary: Option<String>,
    summary_through: Option<String>,
}

/// The session columns of a query on `sessions` aliased `s`, in the order
/// [`SessionRow::read`] expects.
pub(crate) const SESSION_COLUMNS: &str =
    "s.id, s.name, s.model, s.created_at, s.last_activity_at, s.summary, s.summary_through";

impl SessionRow {
    /// Reads the [`SESSION_COLUMNS`] of a row.
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            name: row.get(1)?,
            model: row.get(2)?,
            created_at: row.get(3)?,
            last_activity_at: row.get(4)?,
            summary: row.get(5)?,
            summary_through: row.get(6)?,
        })
    }

    /// Reads the [`SESSION_COLUMNS`] of a Postgres row.
    pub(crate) fn read_pg(row: &postgres::Row) -> Result<Self> {
        Ok(Self {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            model: row.try_get(2)?,
            created_at: row.try_get(3)?,
            last_activity_at: row.try_get(4)?,
            summary: row.try_get(5)?,
            summary_through: row.try_get(6)?,
        })
    }

    /// The stored id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Converts to the domain type with the session's documents, collections and tags (in
    /// that order: each sorted), checking every value.
    pub(crate) fn into_session(
        self,
        document_ids: Vec<DocumentId>,
        collection_ids: Vec<CollectionId>,
        tags: Vec<String>,
    ) -> Result<Session> {
        Ok(Session {
            id: parse_id(&self.id)?,
            name: self.name,
            model: self.model,
            created_at: parse_time(&self.created_at)?,
            last_activity_at: parse_time(&self.last_activity_at)?,
            document_ids,
            collection_ids,
            tags,
            summary: self.summary,
            summary_through: self
                .summary_through
                .as_deref()
                .map(parse_id::<MessageId>)
                .transpose()?,
        })
    }
}

/// Reads one session with its documents and tags, if it exists.
fn select_session(conn: &Connection, id: SessionId) -> Result<Option<Session>> {
    let row = conn
        .query_row(
            &format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = ?1"),
            [id_to_sql(id)],
            SessionRow::read,
        )
        .optional()?;
    row.map(|row| complete_session(conn, row)).transpose()
}

/// Converts a row and adds its documents and tags.
fn complete_session(conn: &Connection, row: SessionRow) -> Result<Session> {
    let mut documents = conn.prepare_cached(
        "SELECT document_id FROM session_documents WHERE session_id = ?1 ORDER BY document_id",
    )?;
    let document_ids = documents
        .query_map([&row.id], |r| r.get::<_, String>(0))?
        .map(|id| parse_id::<DocumentId>(&id?))
        .collect::<Result<Vec<_>>>()?;
    let mut collections = conn.prepare_cached(
        "SELECT collection_id FROM session_collections WHERE session_id = ?1 \
         ORDER BY collection_id",
    )?;
    let collection_ids = collections
        .query_map([&row.id], |r| r.get::<_, String>(0))?
        .map(|id| parse_id::<CollectionId>(&id?))
        .collect::<Result<Vec<_>>>()?;
    let mut tags =
        conn.prepare_cached("SELECT tag FROM session_tags WHERE session_id = ?1 ORDER BY tag")?;
    let tags = tags.query_map([&row.id], |r| r.get::<_, String>(0))?.collect::<Result<_, _>>()?;
    row.into_session(document_ids, collection_ids, tags)
}

/// Rewrites a session's `sessions_fts` row from its current name and tags.
fn refresh_search_row(conn: &Connection, id: SessionId) -> Result<()> {
    let id = id_to_sql(id);
    conn.execute("DELETE FROM sessions_fts WHERE session_id = ?1", [&id])?;
    conn.execute(
        "INSERT INTO sessions_fts (session_id, name, tags) \
         SELECT s.id, s.name, \
                coalesce((SELECT group_concat(tag, ' ') FROM session_tags WHERE session_id = s.id), '') \
         FROM sessions s WHERE s.id = ?1",
        [&id],
    )?;
    Ok(())
}

/// Adds tags with `source`; a tag the session already has keeps its source.
fn insert_tags(conn: &Connection, id: SessionId, tags: &[String], source: TagSource) -> Result<()> {
    let mut statement = conn.prepare_cached(
        "INSERT INTO session_tags (session_id, tag, source) VALUES (?1, ?2, ?3) \
         ON CONFLICT (session_id, tag) DO NOTHING",
    )?;
    for tag in tags {
        statement.execute(params![id_to_sql(id), tag, source.as_sql()])?;
    }
    Ok(())
}

/// Fails when the session carries more than [`MAX_TAGS`] tags.
fn check_tag_count(conn: &Connection, id: SessionId) -> Result<()> {
    let count: i64 = conn.query_row(
        "SELECT count(*) FROM session_tags WHERE session_id = ?1",
        [id_to_sql(id)],
        |row| row.get(0),
    )?;
    check_tag_total(count)
}

/// Replaces a session's document set.
fn replace_documents(conn: &Connection, id: SessionId, documents: &[DocumentId]) -> Result<()> {
    conn.execute("DELETE FROM session_documents WHERE session_id = ?1", [id_to_sql(id)])?;
    let mut statement = conn.prepare_cached(
        "INSERT INTO session_documents (session_id, document_id) VALUES (?1, ?2)",
    )?;
    for document in documents {
        statement.execute([id_to_sql(id), id_to_sql(document)])?;
    }
    Ok(())
}

/// Fails with `NotFound` unless the session exists.
pub(crate) fn require_session(conn: &Connection, id: SessionId) -> Result<()> {
    if conn.prepare_cached("SELECT 1 FROM sessions WHERE id = ?1")?.exists([id_to_sql(id)])? {
        Ok(())
    } else {
        Err(Error::not_found("session", id))
    }
}

impl SqliteCatalog {
    /// Stores a new session, with `created_at` and `last_activity_at` set to now.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a bad name or tag, or too many tags or documents;
    /// [`Error::NotFound`] naming the first document that does not exist;
    /// [`Error::Sqlite`] (kind `Conflict`) when the id is taken.
    pub(crate) fn create_session(&self, new: NewSession) -> Result<Session> {
        let (name, tags) = check_new_session(&new)?;
        let now = time_to_sql(Utc::now());
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let documents = check_documents(&tx, &new.document_ids)?;
        let collections = check_collections(&tx, &new.collection_ids)?;
        tx.execute(
            "INSERT INTO sessions (id, name, model, created_at, last_activity_at) \
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![id_to_sql(new.id), name, new.model, now],
        )?;
        replace_documents(&tx, new.id, &documents)?;
        replace_collections(&tx, new.id, &collections)?;
        insert_tags(&tx, new.id, &tags, TagSource::User)?;
        refresh_search_row(&tx, new.id)?;
        let session = select_session(&tx, new.id)?
            .ok_or_else(|| Error::Corrupt(format!("session {} vanished", new.id)))?;
        tx.commit()?;
        Ok(session)
    }

    /// Reads one session with its documents and tags.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no session has this id.
    pub(crate) fn get_session(&self, id: SessionId) -> Result<Session> {
        select_session(&self.lock(), id)?.ok_or_else(|| Error::not_found("session", id))
    }

    /// Lists sessions matching `query`, most recently active first, with the total count.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a `text` without a searchable word or a bad `tag`;
    /// [`Error::Sqlite`] when the query fails.
    pub(crate) fn list_sessions(&self, query: &SessionQuery) -> Result<Page<Session>> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if let Some(text) = &query.text {
            let fts = fts_query(text).ok_or_else(|| no_searchable_word(text))?;
            clauses.push(
                "(s.id IN (SELECT session_id FROM sessions_fts WHERE sessions_fts MATCH ?) \
                  OR s.id IN (SELECT m.session_id FROM messages_fts \
                              JOIN messages m ON m.seq = messages_fts.rowid \
                              WHERE messages_fts MATCH ?))",
            );
            values.push(Value::Text(fts.clone()));
            values.push(Value::Text(fts));
        }
        if let Some(tag) = &query.tag {
            clauses.push("s.id IN (SELECT session_id FROM session_tags WHERE tag = ?)");
            values.push(Value::Text(normalize_tag(tag)?));
        }
        if let Some(part) = &query.name_contains {
            clauses.push(r"s.name LIKE ? ESCAPE '\'");
            values.push(Value::Text(format!("%{}%", crate::documents::escape_like(part))));
        }
        let within_clause;
        if let Some(collections) = &query.within_collections {
            let list = crate::documents::placeholders(collections.len());
            within_clause = format!(
                "s.id IN (SELECT session_id FROM session_collections) \
                 AND s.id NOT IN (SELECT session_id FROM session_collections \
                                  WHERE collection_id NOT IN ({list})) \
                 AND s.id NOT IN (SELECT session_id FROM session_documents \
                                  WHERE document_id NOT IN (SELECT document_id \
                                      FROM collection_documents WHERE collection_id IN ({list})))"
            );
            clauses.push(&within_clause);
            for _ in 0..2 {
                values.extend(collections.iter().map(|c| Value::Text(id_to_sql(c))));
            }
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let total: i64 = tx.query_row(
            &format!("SELECT count(*) FROM sessions s{filter}"),
            params_from_iter(values.iter()),
            |row| row.get(0),
        )?;
        values.push(Value::Integer(i64::from(query.limit)));
        values.push(Value::Integer(i64::from(query.offset)));
        let rows = {
            let mut statement = tx.prepare(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions s{filter} \
                 ORDER BY s.last_activity_at DESC, s.id DESC LIMIT ? OFFSET ?"
            ))?;
            statement
                .query_map(params_from_iter(values.iter()), SessionRow::read)?
                .collect::<Result<Vec<_>, _>>()?
        };
        let items =
            rows.into_iter().map(|row| complete_session(&tx, row)).collect::<Result<Vec<_>>>()?;
        tx.commit()?;
        Ok(Page { items, total: total.unsigned_abs() })
    }

    /// Renames a session, replaces its documents, adds user tags and removes tags.
    /// Removals apply before additions.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown session or document; [`Error::InvalidInput`] for a
    /// bad name or tag, or too many tags or documents.
    pub(crate) fn update_session(&self, id: SessionId, update: &SessionUpdate) -> Result<Session> {
        let name = update.name.as_deref().map(normalize_name).transpose()?;
        let add = normalize_tags(&update.add_tags)?;
        let remove = normalize_tags(&update.remove_tags)?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        require_session(&tx, id)?;
        if let Some(name) = name {
            tx.execute(
                "UPDATE sessions SET name = ?1 WHERE id = ?2",
                params![name, id_to_sql(id)],
            )?;
        }
        if let Some(documents) = &update.document_ids {
            let documents = check_documents(&tx, documents)?;
            replace_documents(&tx, id, &documents)?;
        }
        if let Some(collections) = &update.collection_ids {
            let collections = check_collections(&tx, collections)?;
            replace_collections(&tx, id, &collections)?;
        }
        {
            let mut statement =
                tx.prepare_cached("DELETE FROM session_tags WHERE session_id = ?1 AND tag = ?2")?;
            for tag in &remove {
                statement.execute([id_to_sql(id), tag.clone()])?;
            }
        }
        // A tag the user adds becomes theirs, even if tagging had found it first.
        {
            let mut statement = tx.prepare_cached(
                "INSERT INTO session_tags (session_id, tag, source) VALUES (?1, ?2, 'user') \
                 ON CONFLICT (session_id, tag) DO UPDATE SET source = 'user'",
            )?;
            for tag in &add {
                statement.execute([id_to_sql(id), tag.clone()])?;
            }
        }
        check_tag_count(&tx, id)?;
        refresh_search_row(&tx, id)?;
        let session = select_session(&tx, id)?
            .ok_or_else(|| Error::Corrupt(format!("session {id} vanished")))?;
        tx.commit()?;
        Ok(session)
    }

    /// Replaces the session's automatic tags with `tags`, keeping user tags, up to
    /// [`MAX_TAGS`] in all (later automatic tags are dropped). Returns the session.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown session; invalid tags are skipped, not errors,
    /// because they come from text analysis rather than the user.
    pub(crate) fn set_auto_tags(&self, id: SessionId, tags: &[String]) -> Result<Session> {
        let tags = normalize_auto_tags(tags);
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        require_session(&tx, id)?;
        tx.execute(
            "DELETE FROM session_tags WHERE session_id = ?1 AND source = 'auto'",
            [id_to_sql(id)],
        )?;
        let user: i64 = tx.query_row(
            "SELECT count(*) FROM session_tags WHERE session_id = ?1",
            [id_to_sql(id)],
            |row| row.get(0),
        )?;
        let room = auto_tag_room(user);
        let chosen: Vec<String> = tags.into_iter().take(room).collect();
        insert_tags(&tx, id, &chosen, TagSource::Auto)?;
        refresh_search_row(&tx, id)?;
        let session = select_session(&tx, id)?
            .ok_or_else(|| Error::Corrupt(format!("session {id} vanished")))?;
        tx.commit()?;
        Ok(session)
    }

    /// Stores the summary of the session's history up to and including message `through`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown session.
    pub(crate) fn set_session_summary(
        &self,
        id: SessionId,
        summary: &str,
        through: MessageId,
    ) -> Result<()> {
        let updated = self.lock().execute(
            "UPDATE sessions SET summary = ?1, summary_through = ?2 WHERE id = ?3",
            params![summary, id_to_sql(through), id_to_sql(id)],
        )?;
        if updated == 0 {
            return Err(Error::not_found("session", id));
        }
        Ok(())
    }

    /// Deletes a session with its messages, tags, document links and search entries.
    /// Returns `false` when no session had this id.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the delete fails.
    pub(crate) fn delete_session(&self, id: SessionId) -> Result<bool> {
        // Messages, tags and links go by cascade; triggers clear messages_fts and
        // sessions_fts.
        let deleted = self.lock().execute("DELETE FROM sessions WHERE id = ?1", [id_to_sql(id)])?;
        Ok(deleted > 0)
    }

    /// Sets a session's `last_activity_at` (used when a message is stored).
    pub(crate) fn touch_session(
        conn: &Connection,
        id: SessionId,
        at: DateTime<Utc>,
        model: Option<&str>,
    ) -> Result<()> {
        let updated = conn.execute(
            "UPDATE sessions SET last_activity_at = max(last_activity_at, ?1), \
                                 model = coalesce(?2, model) \
             WHERE id = ?3",
            params![time_to_sql(at), model, id_to_sql(id)],
        )?;
        if updated == 0 {
            return Err(Error::not_found("session", id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_normalised() {
        assert_eq!(normalize_tag("  Rust   Lang ").unwrap(), "rust lang");
        assert!(normalize_tag("   ").is_err());
        assert!(normalize_tag(&"x".repeat(MAX_TAG_CHARS + 1)).is_err());
        assert!(normalize_tag("a\u{7}b").is_err());
        let tags = normalize_tags(&["A".into(), "a".into(), "b".into()]).unwrap();
        assert_eq!(tags, ["a", "b"]);
    }

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(normalize_name("  hi ").unwrap(), "hi");
        assert!(normalize_name(" ").is_err());
        assert!(normalize_name(&"n".repeat(MAX_NAME_CHARS + 1)).is_err());
    }
}
