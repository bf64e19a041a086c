//! Vector index generations on Postgres: [`PostgresCatalog`]'s side of
//! `crate::generations`, the same state machine with the same errors.
//!
//! SQLite ran each change in an immediate transaction, one writer at a time. Here each
//! change that reads the table before writing it (recording the first generation, starting
//! a build, activating one) first takes one transaction-scoped advisory lock, so replicas
//! sharing the database apply them one at a time with the same outcomes (one of two
//! replicas starting a build at once gets [`Error::InUse`], as it would have in SQLite);
//! the partial unique indexes (at most one `active`, one `building`) stay as a backstop.
//! Forgetting is one statement, which Postgres re-checks against an activation that
//! commits while it waits.
//!
//! Generation numbers and dimensions are `bigint`; the API's `u32` and `usize` are
//! converted with checks both ways.

use chrono::Utc;
use postgres::{GenericClient, Row};

use super::PostgresCatalog;
use crate::{
    error::{Error, Result},
    generations::{
        COLUMNS, GenerationState, RawRow, VectorGeneration, convert, generation_from_sql,
    },
    rows::time_to_sql,
};

/// The advisory lock key that changes to the generations hold ("ragdgen" in ASCII; the
/// migrations hold "ragd").
const GENERATION_LOCK: i64 = 0x0072_6167_6467_656e;

/// Waits for and takes the generations lock, held until the transaction ends. Run it
/// before the transaction's first read, so that read sees what the previous holder
/// committed.
fn lock_generations(client: &mut impl GenericClient) -> Result<()> {
    client.execute("SELECT pg_advisory_xact_lock($1)", &[&GENERATION_LOCK])?;
    Ok(())
}

/// Reads the [`COLUMNS`] of a row.
fn read(row: &Row) -> Result<RawRow> {
    Ok((
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        row.try_get(4)?,
        row.try_get(5)?,
    ))
}

/// Records a generation in `state`, created now, and returns its row.
fn insert(
    client: &mut impl GenericClient,
    generation: i64,
    model_id: &str,
    dimensions: usize,
    state: GenerationState,
) -> Result<RawRow> {
    let dimensions = i64::try_from(dimensions).map_err(|_| {
        Error::InvalidInput(format!("vector dimension {dimensions} is too large to store"))
    })?;
    let now = time_to_sql(Utc::now());
    client.execute(
        "INSERT INTO vector_generations \
         (generation, model_id, dimensions, state, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
        &[&generation, &model_id, &dimensions, &state.as_str(), &now],
    )?;
    Ok((generation, model_id.to_owned(), dimensions, state.as_str().to_owned(), now.clone(), now))
}

impl PostgresCatalog {
    /// Every recorded generation, oldest first.
    ///
    /// # Errors
    /// [`Error::Postgres`] when the query fails, [`Error::Corrupt`] for an unreadable row.
    pub(crate) fn vector_generations(&self) -> Result<Vec<VectorGeneration>> {
        let mut client = self.client()?;
        client
            .query(&format!("SELECT {COLUMNS} FROM vector_generations ORDER BY generation"), &[])?
            .iter()
            .map(|row| convert(read(row)?))
            .collect()
    }

    /// Records the generation in use when none is recorded yet (a data directory from
    /// before generations, or a new one) and returns the active generation.
    ///
    /// # Errors
    /// [`Error::Postgres`] when the statements fail.
    pub(crate) fn ensure_active_generation(
        &self,
        generation: u32,
        model_id: &str,
        dimensions: usize,
    ) -> Result<VectorGeneration> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        lock_generations(&mut tx)?;
        let active = tx.query_opt(
            &format!("SELECT {COLUMNS} FROM vector_generations WHERE state = 'active'"),
            &[],
        )?;
        let active = match active {
            Some(row) => read(&row)?,
            None => insert(
                &mut tx,
                i64::from(generation),
                model_id,
                dimensions,
                GenerationState::Active,
            )?,
        };
        tx.commit()?;
        convert(active)
    }

    /// Starts a new `building` generation for `model_id`, numbered after every recorded
    /// one.
    ///
    /// # Errors
    /// [`Error::InUse`] when a generation is already building,
    /// [`Error::Postgres`] when the statements fail.
    pub(crate) fn start_generation(
        &self,
        model_id: &str,
        dimensions: usize,
    ) -> Result<VectorGeneration> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        lock_generations(&mut tx)?;
        let building = tx
            .query_opt("SELECT generation FROM vector_generations WHERE state = 'building'", &[])?
            .map(|row| row.try_get::<_, i64>(0))
            .transpose()?;
        if let Some(building) = building {
            return Err(Error::InUse {
                what: "the vector index".to_owned(),
                by: format!("generation {building} is already being built"),
            });
        }
        let next: i64 = tx
            .query_one("SELECT coalesce(max(generation), 0) + 1 FROM vector_generations", &[])?
            .try_get(0)?;
        let started = insert(&mut tx, next, model_id, dimensions, GenerationState::Building)?;
        tx.commit()?;
        convert(started)
    }

    /// Activates the building generation `generation` and retires the active one, in one
    /// transaction; returns the retired generation's number.
    ///
    /// # Errors
    /// [`Error::NotFound`] when `generation` is not building, [`Error::Postgres`] when the
    /// statements fail.
    pub(crate) fn activate_generation(&self, generation: u32) -> Result<Option<u32>> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        lock_generations(&mut tx)?;
        let now = time_to_sql(Utc::now());
        let retired = tx
            .query_opt("SELECT generation FROM vector_generations WHERE state = 'active'", &[])?
            .map(|row| generation_from_sql(row.try_get(0)?))
            .transpose()?;
        // Retire first: the index allowing one active generation is checked per row.
        tx.execute(
            "UPDATE vector_generations SET state = 'retired', updated_at = $1 \
             WHERE state = 'active'",
            &[&now],
        )?;
        let changed = tx.execute(
            "UPDATE vector_generations SET state = 'active', updated_at = $2 \
             WHERE generation = $1 AND state = 'building'",
            &[&i64::from(generation), &now],
        )?;
        if changed == 0 {
            // Dropping the transaction rolls the retirement back.
            return Err(Error::NotFound {
                what: "building vector generation",
                id: generation.to_string(),
            });
        }
        tx.commit()?;
        Ok(retired)
    }

    /// Forgets a retired or building generation (its tables are gone); the active one is
    /// never forgotten.
    ///
    /// # Errors
    /// [`Error::Postgres`] when the statement fails.
    pub(crate) fn forget_generation(&self, generation: u32) -> Result<bool> {
        let removed = self.client()?.execute(
            "DELETE FROM vector_generations WHERE generation = $1 AND state <> 'active'",
            &[&i64::from(generation)],
        )?;
        Ok(removed > 0)
    }
}
