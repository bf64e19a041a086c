//! Chat sessions on Postgres: creating, reading, listing and searching, updating, tagging,
//! deleting.
//!
//! The rules are SQLite's (`crate::sessions`: the same validation helpers and limits). A
//! session's name and tags are searched through `sessions.search_text` (its name, a space
//! and its tags joined by spaces) and the generated `search_tsv`; every transaction that
//! changes the name or the tags rewrites `search_text` from the rows it has just written.
//! Message text is searched through `messages.tsv`, with the query rules of keyword search.
//!
//! Writers lock the session row (`FOR UPDATE`) before changing its tags, so two replicas
//! tagging one session at once take turns and the tag limit holds; the documents and
//! collections a session is given are locked against deletion (`FOR KEY SHARE`) until the
//! transaction ends.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use postgres::{GenericClient, IsolationLevel, Transaction};
use ragd_core::{CollectionId, DocumentId, MessageId, Session, SessionId};

use crate::{
    catalog::Page,
    documents::escape_like,
    error::{Error, Result},
    pg::{
        PostgresCatalog, count,
        search::{SqlParams, TextQuery},
    },
    rows::{id_from_sql, id_to_sql, time_to_sql},
    search::{no_searchable_word, query_words},
    sessions::{
        NewSession, SESSION_COLUMNS, SessionQuery, SessionRow, SessionUpdate, TagSource,
        auto_tag_room, check_new_session, check_tag_total, normalize_auto_tags, normalize_name,
        normalize_tag, normalize_tags, unique_collections, unique_documents,
    },
};

/// `s.name` with ASCII letters lowercased and nothing else changed: SQLite's `LIKE` folds
/// ASCII case only, where `ILIKE` and `lower()` would fold by the database's locale.
const NAME_ASCII_LOWER: &str =
    "translate(s.name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')";

/// Starts a read-only transaction on one snapshot, so that a count and the page it goes
/// with (or a session and its tags) agree while other replicas write.
pub(super) fn snapshot(client: &mut postgres::Client) -> Result<Transaction<'_>> {
    Ok(client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?)
}

/// The stored ids of `ids`.
fn ids_to_sql<T: std::fmt::Display>(ids: &[T]) -> Vec<String> {
    ids.iter().map(id_to_sql).collect()
}

/// Fails with `NotFound` naming the first document (in sorted order) that does not exist;
/// repeats are dropped. The documents found stay locked against deletion until the
/// transaction ends.
fn check_documents(client: &mut impl GenericClient, ids: &[DocumentId]) -> Result<Vec<DocumentId>> {
    let unique = unique_documents(ids)?;
    if unique.is_empty() {
        return Ok(unique);
    }
    let wanted = ids_to_sql(&unique);
    let found: HashSet<String> = client
        .query("SELECT id FROM documents WHERE id = ANY($1) FOR KEY SHARE", &[&wanted])?
        .iter()
        .map(|row| row.try_get::<_, String>(0))
        .collect::<Result<_, _>>()?;
    if let Some((id, _)) = unique.iter().zip(&wanted).find(|(_, text)| !found.contains(*text)) {
        return Err(Error::not_found("document", id));
    }
    Ok(unique)
}

/// Fails with `NotFound` naming the first collection (in sorted order) that does not
/// exist; repeats are dropped. The collections found stay locked against deletion until the
/// transaction ends.
fn check_collections(
    client: &mut impl GenericClient,
    ids: &[CollectionId],
) -> Result<Vec<CollectionId>> {
    let unique = unique_collections(ids)?;
    if unique.is_empty() {
        return Ok(unique);
    }
    let wanted = ids_to_sql(&unique);
    let found: HashSet<String> = client
        .query("SELECT id FROM collections WHERE id = ANY($1) FOR KEY SHARE", &[&wanted])?
        .iter()
        .map(|row| row.try_get::<_, String>(0))
        .collect::<Result<_, _>>()?;
    if let Some((id, _)) = unique.iter().zip(&wanted).find(|(_, text)| !found.contains(*text)) {
        return Err(Error::not_found("collection", id));
    }
    Ok(unique)
}

/// Replaces a session's document set.
fn replace_documents(
    client: &mut impl GenericClient,
    id: &str,
    documents: &[DocumentId],
) -> Result<()> {
    client.execute("DELETE FROM session_documents WHERE session_id = $1", &[&id])?;
    if !documents.is_empty() {
        client.execute(
            "INSERT INTO session_documents (session_id, document_id) \
             SELECT $1::text, d.id FROM unnest($2::text[]) AS d(id)",
            &[&id, &ids_to_sql(documents)],
        )?;
    }
    Ok(())
}

/// Replaces a session's collection set.
fn replace_collections(
    client: &mut impl GenericClient,
    id: &str,
    collections: &[CollectionId],
) -> Result<()> {
    client.execute("DELETE FROM session_collections WHERE session_id = $1", &[&id])?;
    if !collections.is_empty() {
        client.execute(
            "INSERT INTO session_collections (session_id, collection_id) \
             SELECT $1::text, c.id FROM unnest($2::text[]) AS c(id)",
            &[&id, &ids_to_sql(collections)],
        )?;
    }
    Ok(())
}

/// Adds tags with `source`; a tag the session already has keeps its source.
fn insert_tags(
    client: &mut impl GenericClient,
    id: &str,
    tags: &[String],
    source: TagSource,
) -> Result<()> {
    if tags.is_empty() {
        return Ok(());
    }
    client.execute(
        "INSERT INTO session_tags (session_id, tag, source) \
         SELECT $1::text, t.tag, $3::text FROM unnest($2::text[]) AS t(tag) \
         ON CONFLICT (session_id, tag) DO NOTHING",
        &[&id, &tags, &source.as_sql()],
    )?;
    Ok(())
}

/// How many tags the session carries.
fn tag_count(client: &mut impl GenericClient, id: &str) -> Result<i64> {
    Ok(client
        .query_one("SELECT count(*) FROM session_tags WHERE session_id = $1", &[&id])?
        .try_get::<_, i64>(0)?)
}

/// Rewrites a session's `search_text` from its current name and tags (in byte order).
fn refresh_search_text(client: &mut impl GenericClient, id: &str) -> Result<()> {
    client.execute(
        "UPDATE sessions s SET search_text = s.name || ' ' || coalesce( \
             (SELECT string_agg(t.tag, ' ' ORDER BY t.tag COLLATE \"C\") \
              FROM session_tags t WHERE t.session_id = s.id), '') \
         WHERE s.id = $1",
        &[&id],
    )?;
    Ok(())
}

/// Fails with `NotFound` unless the session exists, and locks its row until the
/// transaction ends, so concurrent changes of its tags take turns.
fn lock_session(client: &mut impl GenericClient, id: SessionId) -> Result<()> {
    match client.query_opt("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", &[&id_to_sql(id)])? {
        Some(_) => Ok(()),
        None => Err(Error::not_found("session", id)),
    }
}

/// Fails with `NotFound` unless the session exists.
pub(super) fn require_session(client: &mut impl GenericClient, id: SessionId) -> Result<()> {
    match client.query_opt("SELECT 1 FROM sessions WHERE id = $1", &[&id_to_sql(id)])? {
        Some(_) => Ok(()),
        None => Err(Error::not_found("session", id)),
    }
}

/// Sets a session's `last_activity_at` to `at` unless it is later already, and its model
/// to `model` when given (used when a message is stored).
///
/// # Errors
///
/// [`Error::NotFound`] for an unknown session.
pub(super) fn touch_session(
    client: &mut impl GenericClient,
    id: SessionId,
    at: &str,
    model: Option<&str>,
) -> Result<()> {
    // Times are fixed-width RFC 3339 text; "C" compares bytes, as SQLite's max() does.
    let updated = client.execute(
        "UPDATE sessions SET last_activity_at = GREATEST(last_activity_at COLLATE \"C\", $1), \
                             model = coalesce($2, model) \
         WHERE id = $3",
        &[&at, &model, &id_to_sql(id)],
    )?;
    if updated == 0 {
        return Err(Error::not_found("session", id));
    }
    Ok(())
}

/// Reads the values of `(session_id, value)` rows of `sql` (which takes the session ids as
/// `$1`), grouped by session, in the query's order.
fn grouped(
    client: &mut impl GenericClient,
    sql: &str,
    sessions: &[String],
) -> Result<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for row in client.query(sql, &[&sessions])? {
        let session: String = row.try_get(0)?;
        let value: String = row.try_get(1)?;
        out.entry(session).or_default().push(value);
    }
    Ok(out)
}

/// Parses stored ids.
fn parse_ids<T>(ids: Vec<String>) -> Result<Vec<T>>
where
    T: std::str::FromStr<Err = ragd_core::IdParseError>,
{
    ids.iter().map(|id| id_from_sql(id)).collect()
}

/// Converts rows and adds their documents, collections and tags (each sorted by its bytes,
/// as SQLite's `ORDER BY` sorts), in three queries for all of them.
fn complete_sessions(
    client: &mut impl GenericClient,
    rows: Vec<SessionRow>,
) -> Result<Vec<Session>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = rows.iter().map(|row| row.id().to_owned()).collect();
    let mut documents = grouped(
        client,
        "SELECT session_id, document_id FROM session_documents WHERE session_id = ANY($1) \
         ORDER BY session_id, document_id COLLATE \"C\"",
        &ids,
    )?;
    let mut collections = grouped(
        client,
        "SELECT session_id, collection_id FROM session_collections WHERE session_id = ANY($1) \
         ORDER BY session_id, collection_id COLLATE \"C\"",
        &ids,
    )?;
    let mut tags = grouped(
        client,
        "SELECT session_id, tag FROM session_tags WHERE session_id = ANY($1) \
         ORDER BY session_id, tag COLLATE \"C\"",
        &ids,
    )?;
    rows.into_iter()
        .map(|row| {
            let id = row.id().to_owned();
            let document_ids = parse_ids::<DocumentId>(documents.remove(&id).unwrap_or_default())?;
            let collection_ids =
                parse_ids::<CollectionId>(collections.remove(&id).unwrap_or_default())?;
            row.into_session(document_ids, collection_ids, tags.remove(&id).unwrap_or_default())
        })
        .collect()
}

/// Reads one session with its documents, collections and tags, if it exists.
fn select_session(client: &mut impl GenericClient, id: SessionId) -> Result<Option<Session>> {
    let row = client.query_opt(
        &format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = $1"),
        &[&id_to_sql(id)],
    )?;
    let Some(row) = row else {
        return Ok(None);
    };
    let row = SessionRow::read_pg(&row)?;
    Ok(complete_sessions(client, vec![row])?.pop())
}

impl PostgresCatalog {
    /// Stores a new session, with `created_at` and `last_activity_at` set to now.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a bad name or tag, or too many tags or documents;
    /// [`Error::NotFound`] naming the first document that does not exist;
    /// [`Error::Postgres`] (kind `Conflict`) when the id is taken.
    pub(crate) fn create_session(&self, new: NewSession) -> Result<Session> {
        let (name, tags) = check_new_session(&new)?;
        let now = time_to_sql(Utc::now());
        let id = id_to_sql(new.id);
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let documents = check_documents(&mut tx, &new.document_ids)?;
        let collections = check_collections(&mut tx, &new.collection_ids)?;
        tx.execute(
            "INSERT INTO sessions (id, name, model, created_at, last_activity_at) \
             VALUES ($1, $2, $3, $4, $4)",
            &[&id, &name, &new.model, &now],
        )?;
        replace_documents(&mut tx, &id, &documents)?;
        replace_collections(&mut tx, &id, &collections)?;
        insert_tags(&mut tx, &id, &tags, TagSource::User)?;
        refresh_search_text(&mut tx, &id)?;
        let session = select_session(&mut tx, new.id)?
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
        let mut client = self.client()?;
        let mut tx = snapshot(&mut client)?;
        let session = select_session(&mut tx, id)?;
        tx.commit()?;
        session.ok_or_else(|| Error::not_found("session", id))
    }

    /// Lists sessions matching `query`, most recently active first, with the total count.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a `text` without a searchable word or a bad `tag`;
    /// [`Error::Postgres`] when the query fails.
    pub(crate) fn list_sessions(&self, query: &SessionQuery) -> Result<Page<Session>> {
        let words = match &query.text {
            Some(text) => {
                let words = query_words(text);
                if words.is_empty() {
                    return Err(no_searchable_word(text));
                }
                Some(words)
            }
            None => None,
        };
        let tag = query.tag.as_deref().map(normalize_tag).transpose()?;
        let mut client = self.client()?;
        let mut tx = snapshot(&mut client)?;
        let mut params = SqlParams::default();
        let mut clauses: Vec<String> = Vec::new();
        if let Some(words) = words {
            let search = TextQuery::new(&mut tx, words)?;
            let tsquery = search.tsquery(&mut params);
            let sessions = search.vector("s.search_tsv", "s.search_text");
            let messages = search.vector("m.tsv", "m.content");
            clauses.push(format!(
                "({sessions} @@ {tsquery} \
                  OR s.id IN (SELECT m.session_id FROM messages m WHERE {messages} @@ {tsquery}))"
            ));
        }
        if let Some(tag) = tag {
            let tag = params.push(tag);
            clauses
                .push(format!("s.id IN (SELECT session_id FROM session_tags WHERE tag = {tag})"));
        }
        if let Some(part) = &query.name_contains {
            if part.contains('\0') {
                // Postgres text cannot hold NUL (the query would fail), and no name
                // contains one (names refuse control chars): nothing matches.
                clauses.push("FALSE".to_owned());
            } else {
                // The default LIKE escape is `\`, which `escape_like` uses.
                let pattern = params.push(format!("%{}%", escape_like(&part.to_ascii_lowercase())));
                clauses.push(format!("{NAME_ASCII_LOWER} LIKE {pattern}"));
            }
        }
        if let Some(collections) = &query.within_collections {
            let list = params.push(ids_to_sql(collections));
            clauses.push(format!(
                "s.id IN (SELECT session_id FROM session_collections) \
                 AND s.id NOT IN (SELECT session_id FROM session_collections \
                                  WHERE collection_id <> ALL({list})) \
                 AND s.id NOT IN (SELECT session_id FROM session_documents \
                                  WHERE document_id NOT IN (SELECT document_id \
                                      FROM collection_documents WHERE collection_id = ANY({list})))"
            ));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let total: i64 = tx
            .query_one(&format!("SELECT count(*) FROM sessions s{filter}"), &params.refs())?
            .try_get(0)?;
        let limit = params.push(i64::from(query.limit));
        let offset = params.push(i64::from(query.offset));
        let rows = tx
            .query(
                &format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions s{filter} \
                     ORDER BY s.last_activity_at DESC, s.id DESC LIMIT {limit} OFFSET {offset}"
                ),
                &params.refs(),
            )?
            .iter()
            .map(SessionRow::read_pg)
            .collect::<Result<Vec<_>>>()?;
        let items = complete_sessions(&mut tx, rows)?;
        tx.commit()?;
        Ok(Page { items, total: count(total) })
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
        let key = id_to_sql(id);
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        lock_session(&mut tx, id)?;
        if let Some(name) = name {
            tx.execute("UPDATE sessions SET name = $1 WHERE id = $2", &[&name, &key])?;
        }
        if let Some(documents) = &update.document_ids {
            let documents = check_documents(&mut tx, documents)?;
            replace_documents(&mut tx, &key, &documents)?;
        }
        if let Some(collections) = &update.collection_ids {
            let collections = check_collections(&mut tx, collections)?;
            replace_collections(&mut tx, &key, &collections)?;
        }
        if !remove.is_empty() {
            tx.execute(
                "DELETE FROM session_tags WHERE session_id = $1 AND tag = ANY($2)",
                &[&key, &remove],
            )?;
        }
        // A tag the user adds becomes theirs, even if tagging had found it first.
        if !add.is_empty() {
            tx.execute(
                "INSERT INTO session_tags (session_id, tag, source) \
                 SELECT $1::text, t.tag, 'user' FROM unnest($2::text[]) AS t(tag) \
                 ON CONFLICT (session_id, tag) DO UPDATE SET source = 'user'",
                &[&key, &add],
            )?;
        }
        check_tag_total(tag_count(&mut tx, &key)?)?;
        refresh_search_text(&mut tx, &key)?;
        let session = select_session(&mut tx, id)?
            .ok_or_else(|| Error::Corrupt(format!("session {id} vanished")))?;
        tx.commit()?;
        Ok(session)
    }

    /// Replaces the session's automatic tags with `tags`, keeping user tags, up to
    /// [`MAX_TAGS`](crate::MAX_TAGS) in all (later automatic tags are dropped). Returns the
    /// session.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown session; invalid tags are skipped, not errors,
    /// because they come from text analysis rather than the user.
    pub(crate) fn set_auto_tags(&self, id: SessionId, tags: &[String]) -> Result<Session> {
        let tags = normalize_auto_tags(tags);
        let key = id_to_sql(id);
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        lock_session(&mut tx, id)?;
        tx.execute("DELETE FROM session_tags WHERE session_id = $1 AND source = 'auto'", &[&key])?;
        let room = auto_tag_room(tag_count(&mut tx, &key)?);
        let chosen: Vec<String> = tags.into_iter().take(room).collect();
        insert_tags(&mut tx, &key, &chosen, TagSource::Auto)?;
        refresh_search_text(&mut tx, &key)?;
        let session = select_session(&mut tx, id)?
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
        let updated = self.client()?.execute(
            "UPDATE sessions SET summary = $1, summary_through = $2 WHERE id = $3",
            &[&summary, &id_to_sql(through), &id_to_sql(id)],
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
    /// [`Error::Postgres`] when the delete fails.
    pub(crate) fn delete_session(&self, id: SessionId) -> Result<bool> {
        // Messages (with their tsvectors), tags and links go by cascade; the session's own
        // search_tsv goes with its row.
        let deleted =
            self.client()?.execute("DELETE FROM sessions WHERE id = $1", &[&id_to_sql(id)])?;
        Ok(deleted > 0)
    }
}
