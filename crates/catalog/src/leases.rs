//! Work leases: which process is working on an unfinished document, until when.
//!
//! Several processes (ragd replicas sharing a Postgres catalog) take documents from one
//! queue, the unfinished documents in the catalog. A process claims a document by writing
//! its owner id and an expiry into the row ([`Lease`]), renews the lease while it works,
//! and releases it when the document is finished. A document whose lease expired (its owner
//! died or stalled) may be claimed by any process; a claim never takes a live lease of
//! another owner, so one document is processed by one process at a time.
//!
//! Expiries are the claiming process's clock in the catalog's fixed-width RFC 3339 text,
//! so they compare as text; clocks of replicas must agree to well within a lease (NTP does).

use std::time::Duration;

use chrono::{DateTime, Utc};
use ragd_core::{Document, DocumentId, DocumentStatus};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::{
    documents::{check_progress, read_document},
    error::{Error, Result},
    rows::{id_from_sql, id_to_sql, status_to_sql, time_to_sql},
    sqlite::SqliteCatalog,
};

/// The statuses of documents still to be worked on: the queue a process claims from, and
/// what a restarted process resumes.
pub const UNFINISHED: [DocumentStatus; 4] = [
    DocumentStatus::Queued,
    DocumentStatus::Extracting,
    DocumentStatus::Chunking,
    DocumentStatus::Embedding,
];

/// A claim on unfinished work: who takes it, for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The process taking the work: unique among the processes sharing the catalog.
    pub owner: String,
    /// How long the claim holds unless renewed.
    pub duration: Duration,
}

impl Lease {
    /// A lease for `owner` of `duration`.
    #[must_use]
    pub fn new(owner: impl Into<String>, duration: Duration) -> Self {
        Self { owner: owner.into(), duration }
    }

    /// The times a claim at `now` stores and compares with: `(now, expiry)`.
    pub(crate) fn times(&self, now: DateTime<Utc>) -> Result<(String, String)> {
        let duration = chrono::Duration::from_std(self.duration).map_err(|_| {
            Error::InvalidInput(format!("lease of {:?} is too long", self.duration))
        })?;
        let expiry = now.checked_add_signed(duration).ok_or_else(|| {
            Error::InvalidInput(format!("lease of {:?} is too long", self.duration))
        })?;
        Ok((time_to_sql(now), time_to_sql(expiry)))
    }

    /// Refuses an empty owner, which would match unleased rows.
    pub(crate) fn check(&self) -> Result<()> {
        if self.owner.trim().is_empty() {
            return Err(Error::InvalidInput("a lease needs an owner".to_owned()));
        }
        Ok(())
    }
}

/// The unfinished statuses as stored.
pub(crate) fn unfinished_names() -> Vec<String> {
    UNFINISHED.iter().map(|status| status_to_sql(*status).to_owned()).collect()
}

/// The condition (over `documents`) of rows a lease owner may claim: unfinished, and not
/// leased until later, except (when `own` is set, for a claim of one named document) by
/// the owner itself (`owner`, its placeholder). A claim of "the next document" never
/// returns one the owner holds.
pub(crate) fn claimable_sql(owner: Option<&str>, now: &str, statuses: &str) -> String {
    let own = owner.map(|owner| format!(" OR lease_owner = {owner}")).unwrap_or_default();
    format!(
        "status IN ({statuses}) \
         AND (lease_owner IS NULL OR lease_expires_at < {now}{own})"
    )
}

impl SqliteCatalog {
    pub(crate) fn claim_document(
        &self,
        lease: &Lease,
        document: Option<DocumentId>,
    ) -> Result<Option<Document>> {
        lease.check()?;
        let (now, expiry) = lease.times(Utc::now())?;
        let statuses: Vec<String> =
            unfinished_names().iter().map(|name| format!("'{name}'")).collect();
        let statuses = statuses.join(", ");
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: Option<String> = match document {
            Some(id) => tx
                .query_row(
                    &format!(
                        "SELECT id FROM documents WHERE id = ?3 AND {}",
                        claimable_sql(Some("?1"), "?2", &statuses)
                    ),
                    params![lease.owner, now, id_to_sql(id)],
                    |row| row.get(0),
                )
                .optional()?,
            None => tx
                .query_row(
                    &format!(
                        "SELECT id FROM documents WHERE {} ORDER BY created_at, id LIMIT 1",
                        claimable_sql(None, "?1", &statuses)
                    ),
                    params![now],
                    |row| row.get(0),
                )
                .optional()?,
        };
        let Some(found) = found else { return Ok(None) };
        tx.execute(
            "UPDATE documents SET lease_owner = ?1, lease_expires_at = ?2 WHERE id = ?3",
            params![lease.owner, expiry, found],
        )?;
        let claimed = read_document(&tx, id_from_sql(&found)?)?;
        tx.commit()?;
        Ok(Some(claimed))
    }

    pub(crate) fn renew_lease(&self, id: DocumentId, lease: &Lease) -> Result<bool> {
        lease.check()?;
        let (_, expiry) = lease.times(Utc::now())?;
        let renewed = self.lock().execute(
            "UPDATE documents SET lease_expires_at = ?1 WHERE id = ?2 AND lease_owner = ?3",
            params![expiry, id_to_sql(id), lease.owner],
        )?;
        Ok(renewed > 0)
    }

    pub(crate) fn set_status_leased(
        &self,
        id: DocumentId,
        owner: &str,
        status: DocumentStatus,
        progress: u8,
        error: Option<&str>,
    ) -> Result<bool> {
        check_progress(progress)?;
        let conn = self.lock();
        let updated = conn.execute(
            "UPDATE documents SET status = ?1, progress = ?2, error = ?3, updated_at = ?4 \
             WHERE id = ?5 AND lease_owner = ?6",
            params![
                status_to_sql(status),
                progress,
                error,
                time_to_sql(Utc::now()),
                id_to_sql(id),
                owner
            ],
        )?;
        if updated > 0 {
            return Ok(true);
        }
        let exists = conn
            .query_row("SELECT 1 FROM documents WHERE id = ?1", [id_to_sql(id)], |_| Ok(()))
            .optional()?;
        exists.ok_or_else(|| Error::not_found("document", id))?;
        Ok(false)
    }

    pub(crate) fn release_lease(&self, id: DocumentId, owner: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE documents SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = ?1 AND lease_owner = ?2",
            params![id_to_sql(id), owner],
        )?;
        Ok(())
    }

    pub(crate) fn clear_leases(&self) -> Result<u64> {
        let cleared = self.lock().execute(
            "UPDATE documents SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE lease_owner IS NOT NULL",
            [],
        )?;
        Ok(cleared as u64)
    }
}
