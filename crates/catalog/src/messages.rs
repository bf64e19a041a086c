//! Messages of chat sessions: appending (which marks the session active), paging, and
//! reading by id for memory recall.

use chrono::Utc;
use ragd_core::{ChatRole, Message, MessageId, SessionId};
use rusqlite::{Connection, TransactionBehavior, params};

use crate::{
    catalog::Page,
    error::{Error, Result},
    rows::{id_from_sql, id_to_sql, time_from_sql, time_to_sql},
    sessions::require_session,
    sqlite::SqliteCatalog,
};

/// The longest message, in bytes (a guard against runaway clients, far above any context
/// window).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// What [`Catalog::append_message`] stores.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// The id to give the message.
    pub id: MessageId,
    /// The session it belongs to.
    pub session_id: SessionId,
    /// Who wrote it.
    pub role: ChatRole,
    /// Its text.
    pub content: String,
    /// The model that produced it (assistant messages); also becomes the session's model.
    pub model: Option<String>,
    /// Settings, token counts, timings, cited chunks: any JSON object.
    pub metadata: serde_json::Value,
}

/// The stored name of a role.
pub(crate) const fn role_to_sql(role: ChatRole) -> &'static str {
    role.as_str()
}

/// Parses a stored role; an unknown name means the data is corrupt.
fn role_from_sql(text: &str) -> Result<ChatRole> {
    match text {
        "system" => Ok(ChatRole::System),
        "user" => Ok(ChatRole::User),
        "assistant" => Ok(ChatRole::Assistant),
        other => Err(Error::Corrupt(format!("unknown message role {other:?}"))),
    }
}

/// The message columns of a query on `messages` aliased `m`, in the order
/// [`MessageRow::read`] expects.
pub(crate) const MESSAGE_COLUMNS: &str =
    "m.id, m.session_id, m.role, m.content, m.created_at, m.model, m.metadata";

/// A `messages` row as stored.
pub(crate) struct MessageRow {
    id: String,
    session_id: String,
    role: String,
    content: String,
    created_at: String,
    model: Option<String>,
    metadata: String,
}

impl MessageRow {
    /// Reads the [`MESSAGE_COLUMNS`] of a row.
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            session_id: row.get(1)?,
            role: row.get(2)?,
            content: row.get(3)?,
            created_at: row.get(4)?,
            model: row.get(5)?,
            metadata: row.get(6)?,
        })
    }

    /// Reads the [`MESSAGE_COLUMNS`] of a Postgres row.
    pub(crate) fn read_pg(row: &postgres::Row) -> Result<Self> {
        Ok(Self {
            id: row.try_get(0)?,
            session_id: row.try_get(1)?,
            role: row.try_get(2)?,
            content: row.try_get(3)?,
            created_at: row.try_get(4)?,
            model: row.try_get(5)?,
            metadata: row.try_get(6)?,
        })
    }

    /// Converts to the domain type, checking every value.
    pub(crate) fn into_message(self) -> Result<Message> {
        Ok(Message {
            id: id_from_sql(&self.id)?,
            session_id: id_from_sql(&self.session_id)?,
            role: role_from_sql(&self.role)?,
            content: self.content,
            created_at: time_from_sql(&self.created_at)?,
            model: self.model,
            metadata: serde_json::from_str(&self.metadata).map_err(|err| Error::CorruptValue {
                what: format!("message {} metadata", self.id),
                source: err.into(),
            })?,
        })
    }
}

/// Refuses a message over [`MAX_MESSAGE_BYTES`] or with metadata that is not a JSON object.
pub(crate) fn check_new_message(new: &NewMessage) -> Result<()> {
    if new.content.len() > MAX_MESSAGE_BYTES {
        return Err(Error::InvalidInput(format!(
            "a message may be at most {MAX_MESSAGE_BYTES} bytes"
        )));
    }
    if !new.metadata.is_object() {
        return Err(Error::InvalidInput("message metadata must be a JSON object".to_owned()));
    }
    Ok(())
}

/// The `{code, message}` object `set_message_error` stores as `metadata.error`.
pub(crate) fn message_error(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "code": code, "message": message })
}

/// Runs a query for [`MESSAGE_COLUMNS`] and converts its rows.
fn collect_messages(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Message>> {
    let mut statement = conn.prepare(sql)?;
    let rows = statement.query_map(params, MessageRow::read)?;
    rows.map(|row| row.map_err(Error::from).and_then(MessageRow::into_message)).collect()
}

impl SqliteCatalog {
    /// Stores a message and sets the session's `last_activity_at` to its time (and the
    /// session's model to the message's, when it names one), in one transaction.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the session does not exist (it may have been deleted);
    /// [`Error::InvalidInput`] for a message over [`MAX_MESSAGE_BYTES`] or metadata that is
    /// not a JSON object.
    pub(crate) fn append_message(&self, new: NewMessage) -> Result<Message> {
        check_new_message(&new)?;
        let now = Utc::now();
        let metadata = new.metadata.to_string();
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        Self::touch_session(&tx, new.session_id, now, new.model.as_deref())?;
        tx.execute(
            "INSERT INTO messages (id, session_id, role, content, created_at, model, metadata) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id_to_sql(new.id),
                id_to_sql(new.session_id),
                role_to_sql(new.role),
                new.content,
                time_to_sql(now),
                new.model,
                metadata,
            ],
        )?;
        tx.commit()?;
        Ok(Message {
            id: new.id,
            session_id: new.session_id,
            role: new.role,
            content: new.content,
            created_at: now,
            model: new.model,
            metadata: new.metadata,
        })
    }

    /// Records on message `id` that its reply failed: `metadata.error` becomes `{code,
    /// message}` (the rest of the metadata is kept), so a reader of the history sees why a
    /// question has no answer.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown message.
    pub(crate) fn set_message_error(&self, id: MessageId, code: &str, message: &str) -> Result<()> {
        let error = message_error(code, message).to_string();
        let changed = self.lock().execute(
            "UPDATE messages SET metadata = json_set(metadata, '$.error', json(?2)) WHERE id = ?1",
            params![id_to_sql(id), error],
        )?;
        if changed == 0 {
            return Err(Error::not_found("message", id));
        }
        Ok(())
    }

    /// A page of a session's messages, oldest first, with the session's message count.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown session.
    pub(crate) fn list_messages(
        &self,
        session: SessionId,
        limit: u32,
        offset: u32,
    ) -> Result<Page<Message>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        require_session(&tx, session)?;
        let total: i64 = tx.query_row(
            "SELECT count(*) FROM messages WHERE session_id = ?1",
            [id_to_sql(session)],
            |row| row.get(0),
        )?;
        let items = collect_messages(
            &tx,
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.session_id = ?1 \
                 ORDER BY m.seq LIMIT ?2 OFFSET ?3"
            ),
            params![id_to_sql(session), limit, offset],
        )?;
        tx.commit()?;
        Ok(Page { items, total: total.unsigned_abs() })
    }

    /// The session's last `count` messages, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails.
    pub(crate) fn recent_messages(&self, session: SessionId, count: u32) -> Result<Vec<Message>> {
        let mut messages = collect_messages(
            &self.lock(),
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.session_id = ?1 \
                 ORDER BY m.seq DESC LIMIT ?2"
            ),
            params![id_to_sql(session), count],
        )?;
        messages.reverse();
        Ok(messages)
    }

    /// The session's messages after `after` (all when `None`) and before `before`, both
    /// exclusive, oldest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails.
    pub(crate) fn messages_between(
        &self,
        session: SessionId,
        after: Option<MessageId>,
        before: MessageId,
        limit: u32,
    ) -> Result<Vec<Message>> {
        collect_messages(
            &self.lock(),
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.session_id = ?1 \
                   AND m.seq > coalesce((SELECT seq FROM messages WHERE id = ?2), 0) \
                   AND m.seq < (SELECT seq FROM messages WHERE id = ?3) \
                 ORDER BY m.seq LIMIT ?4"
            ),
            params![id_to_sql(session), after.map(id_to_sql), id_to_sql(before), limit],
        )
    }

    /// The messages with these ids that exist, in the order of `ids`.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails.
    pub(crate) fn get_messages(&self, ids: &[MessageId]) -> Result<Vec<Message>> {
        let conn = self.lock();
        let mut statement = conn
            .prepare_cached(&format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = ?1"))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let mut rows = statement.query_map([id_to_sql(id)], MessageRow::read)?;
            if let Some(row) = rows.next() {
                out.push(row?.into_message()?);
            }
        }
        Ok(out)
    }

    /// How many messages the session holds.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails.
    pub(crate) fn count_messages(&self, session: SessionId) -> Result<u64> {
        let count: i64 = self.lock().query_row(
            "SELECT count(*) FROM messages WHERE session_id = ?1",
            [id_to_sql(session)],
            |row| row.get(0),
        )?;
        Ok(count.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        for role in [ChatRole::System, ChatRole::User, ChatRole::Assistant] {
            assert_eq!(role_from_sql(role_to_sql(role)).unwrap(), role);
        }
        assert!(role_from_sql("robot").is_err());
    }
}
