//! Work leases on Postgres (see `crate::leases`): a claim takes the oldest claimable row
//! with `FOR UPDATE SKIP LOCKED`, so replicas claiming at once each get a different
//! document without waiting on each other.

use chrono::Utc;
use ragd_core::{Document, DocumentId, DocumentStatus};

use crate::{
    documents::check_progress,
    error::{Error, Result},
    leases::{Lease, claimable_sql, unfinished_names},
    pg::{PostgresCatalog, documents::read_document},
    rows::{id_from_sql, id_to_sql, status_to_sql, time_to_sql},
};

impl PostgresCatalog {
    pub(crate) fn claim_document(
        &self,
        lease: &Lease,
        document: Option<DocumentId>,
    ) -> Result<Option<Document>> {
        lease.check()?;
        let (now, expiry) = lease.times(Utc::now())?;
        let claimable = claimable_sql(document.map(|_| "$1"), "$2", "SELECT unnest($4::text[])");
        let one = if document.is_some() { "AND id = $5" } else { "" };
        let sql = format!(
            "UPDATE documents SET lease_owner = $1, lease_expires_at = $3 \
             WHERE id = (SELECT id FROM documents WHERE {claimable} {one} \
                         ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING id"
        );
        let statuses = unfinished_names();
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let row = match document {
            Some(id) => {
                tx.query_opt(&sql, &[&lease.owner, &now, &expiry, &statuses, &id_to_sql(id)])?
            }
            None => tx.query_opt(&sql, &[&lease.owner, &now, &expiry, &statuses])?,
        };
        let Some(row) = row else { return Ok(None) };
        let id: String = row.try_get(0)?;
        let claimed = read_document(&mut tx, id_from_sql(&id)?)?;
        tx.commit()?;
        Ok(Some(claimed))
    }

    pub(crate) fn renew_lease(&self, id: DocumentId, lease: &Lease) -> Result<bool> {
        lease.check()?;
        let (_, expiry) = lease.times(Utc::now())?;
        let renewed = self.client()?.execute(
            "UPDATE documents SET lease_expires_at = $1 WHERE id = $2 AND lease_owner = $3",
            &[&expiry, &id_to_sql(id), &lease.owner],
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
        let mut client = self.client()?;
        let updated = client.execute(
            "UPDATE documents SET status = $1, progress = $2, error = $3, updated_at = $4 \
             WHERE id = $5 AND lease_owner = $6",
            &[
                &status_to_sql(status),
                &i64::from(progress),
                &error,
                &time_to_sql(Utc::now()),
                &id_to_sql(id),
                &owner,
            ],
        )?;
        if updated > 0 {
            return Ok(true);
        }
        if client.query_opt("SELECT 1 FROM documents WHERE id = $1", &[&id_to_sql(id)])?.is_none() {
            return Err(Error::not_found("document", id));
        }
        Ok(false)
    }

    pub(crate) fn release_lease(&self, id: DocumentId, owner: &str) -> Result<()> {
        self.client()?.execute(
            "UPDATE documents SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $1 AND lease_owner = $2",
            &[&id_to_sql(id), &owner],
        )?;
        Ok(())
    }

    pub(crate) fn clear_leases(&self) -> Result<u64> {
        Ok(self.client()?.execute(
            "UPDATE documents SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE lease_owner IS NOT NULL",
            &[],
        )?)
    }
}
