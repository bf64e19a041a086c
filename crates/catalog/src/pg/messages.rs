//! Messages of chat sessions on Postgres: appending (which marks the session active),
//! paging, and reading by id for memory recall.
//!
//! The rules are SQLite's (`crate::messages`). Messages keep their order in `seq`, an
//! identity column; their text is searched through the generated `tsv` column.

use std::collections::HashMap;

use chrono::Utc;
use ragd_core::{Message, MessageId, SessionId};

use crate::{
    catalog::Page,
    error::{Error, Result},
    messages::{
        MESSAGE_COLUMNS, MessageRow, NewMessage, check_new_message, message_error, role_to_sql,
    },
    pg::{
        PostgresCatalog, count,
        sessions::{require_session, snapshot, touch_session},
    },
    rows::{id_to_sql, time_to_sql},
};

/// Converts rows of [`MESSAGE_COLUMNS`].
fn to_messages(rows: &[postgres::Row]) -> Result<Vec<Message>> {
    rows.iter().map(|row| MessageRow::read_pg(row)?.into_message()).collect()
}

impl PostgresCatalog {
    /// Stores a message and sets the session's `last_activity_at` to its time (and the
    /// session's model to the message's, when it names one), in one transaction.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the session does not exist (it may have been deleted);
    /// [`Error::InvalidInput`] for a message over
    /// [`MAX_MESSAGE_BYTES`](crate::MAX_MESSAGE_BYTES), metadata that is not a JSON object,
    /// or a text or model with a NUL char (which Postgres text cannot hold).
    pub(crate) fn append_message(&self, new: NewMessage) -> Result<Message> {
        check_new_message(&new)?;
        if new.content.contains('\0') || new.model.as_deref().is_some_and(|m| m.contains('\0')) {
            return Err(Error::InvalidInput(
                "a message and its model must not contain NUL chars".to_owned(),
            ));
        }
        let now = Utc::now();
        let at = time_to_sql(now);
        let metadata = new.metadata.to_string();
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        touch_session(&mut tx, new.session_id, &at, new.model.as_deref())?;
        tx.execute(
            "INSERT INTO messages (id, session_id, role, content, created_at, model, metadata) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &id_to_sql(new.id),
                &id_to_sql(new.session_id),
                &role_to_sql(new.role),
                &new.content,
                &at,
                &new.model,
                &metadata,
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
    /// message}` (the rest of the metadata is kept, in its order), so a reader of the
    /// history sees why a question has no answer.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown message.
    pub(crate) fn set_message_error(&self, id: MessageId, code: &str, message: &str) -> Result<()> {
        let key = id_to_sql(id);
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let Some(row) =
            tx.query_opt("SELECT metadata FROM messages WHERE id = $1 FOR UPDATE", &[&key])?
        else {
            return Err(Error::not_found("message", id));
        };
        let stored: String = row.try_get(0)?;
        let mut metadata: serde_json::Value = serde_json::from_str(&stored).map_err(|err| {
            Error::CorruptValue { what: format!("message {id} metadata"), source: err.into() }
        })?;
        // As SQLite's json_set(metadata, '$.error', ...): metadata that is not an object
        // (never stored by this catalog) is left as it is.
        if let Some(object) = metadata.as_object_mut() {
            object.insert("error".to_owned(), message_error(code, message));
            tx.execute(
                "UPDATE messages SET metadata = $2 WHERE id = $1",
                &[&key, &metadata.to_string()],
            )?;
        }
        tx.commit()?;
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
        let key = id_to_sql(session);
        let mut client = self.client()?;
        let mut tx = snapshot(&mut client)?;
        require_session(&mut tx, session)?;
        let total: i64 = tx
            .query_one("SELECT count(*) FROM messages WHERE session_id = $1", &[&key])?
            .try_get(0)?;
        let rows = tx.query(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.session_id = $1 \
                 ORDER BY m.seq LIMIT $2 OFFSET $3"
            ),
            &[&key, &i64::from(limit), &i64::from(offset)],
        )?;
        let items = to_messages(&rows)?;
        tx.commit()?;
        Ok(Page { items, total: count(total) })
    }

    /// The session's last `count` messages, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the query fails.
    pub(crate) fn recent_messages(&self, session: SessionId, count: u32) -> Result<Vec<Message>> {
        let rows = self.client()?.query(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.session_id = $1 \
                 ORDER BY m.seq DESC LIMIT $2"
            ),
            &[&id_to_sql(session), &i64::from(count)],
        )?;
        let mut messages = to_messages(&rows)?;
        messages.reverse();
        Ok(messages)
    }

    /// The session's messages after `after` (all when `None`) and before `before`, both
    /// exclusive, oldest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the query fails.
    pub(crate) fn messages_between(
        &self,
        session: SessionId,
        after: Option<MessageId>,
        before: MessageId,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let rows = self.client()?.query(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.session_id = $1 \
                   AND m.seq > coalesce((SELECT seq FROM messages WHERE id = $2), 0) \
                   AND m.seq < (SELECT seq FROM messages WHERE id = $3) \
                 ORDER BY m.seq LIMIT $4"
            ),
            &[&id_to_sql(session), &after.map(id_to_sql), &id_to_sql(before), &i64::from(limit)],
        )?;
        to_messages(&rows)
    }

    /// The messages with these ids that exist, in the order of `ids` (a repeated id each
    /// time).
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the query fails.
    pub(crate) fn get_messages(&self, ids: &[MessageId]) -> Result<Vec<Message>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<String> = ids.iter().map(id_to_sql).collect();
        let rows = self.client()?.query(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = ANY($1)"),
            &[&wanted],
        )?;
        let found: HashMap<MessageId, Message> =
            to_messages(&rows)?.into_iter().map(|message| (message.id, message)).collect();
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    /// How many messages the session holds.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the query fails.
    pub(crate) fn count_messages(&self, session: SessionId) -> Result<u64> {
        let total: i64 = self
            .client()?
            .query_one(
                "SELECT count(*) FROM messages WHERE session_id = $1",
                &[&id_to_sql(session)],
            )?
            .try_get(0)?;
        Ok(count(total))
    }
}
