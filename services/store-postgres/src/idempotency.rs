//! Idempotency keys on PostgreSQL, reserved in batches.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_store::idempotency::{IdempotencyKeys, KeyRecord, Reservation};
use homeward_store::StoreError;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{PgPool, Row};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::batch::{group_commit, Slot};
use crate::PgStore;

#[async_trait]
impl IdempotencyKeys for PgStore {
    async fn reserve_key(
        &self,
        record: &KeyRecord,
        not_before: DateTime<Utc>,
    ) -> Result<Reservation, StoreError> {
        self.key_batcher().reserve(record.clone(), not_before).await
    }

    async fn forget_key(&self, party: Uuid, key_hash: &[u8]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM idempotency_keys WHERE party_id = $1 AND key_hash = $2")
            .bind(party)
            .bind(key_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn purge_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                .bind(before)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }
}

/// How many reservation statements may run at once.
const RESERVATIONS_IN_FLIGHT: usize = 2;
/// The most keys one statement reserves.
const MAX_RESERVATIONS: usize = 256;

struct PendingKey {
    record: KeyRecord,
    not_before: DateTime<Utc>,
    reply: oneshot::Sender<Result<Reservation, StoreError>>,
}

/// Group commit for key reservations: the keys queued while a statement runs are reserved
/// together by the next one.
#[derive(Debug, Clone)]
pub(crate) struct KeyBatcher {
    queue: mpsc::UnboundedSender<PendingKey>,
}

impl KeyBatcher {
    pub(crate) fn start(pool: PgPool) -> Self {
        let (queue, queued) = mpsc::unbounded_channel::<PendingKey>();
        group_commit(
            pool.clone(),
            RESERVATIONS_IN_FLIGHT,
            MAX_RESERVATIONS,
            queued,
            move |mut slot, batch| {
                let pool = pool.clone();
                async move {
                    reserve_batch(&mut slot, &pool, batch).await;
                    slot
                }
            },
        );
        Self { queue }
    }

    pub(crate) async fn reserve(
        &self,
        record: KeyRecord,
        not_before: DateTime<Utc>,
    ) -> Result<Reservation, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(PendingKey {
                record,
                not_before,
                reply,
            })
            .map_err(|_| StoreError::Unexpected("the key reservation queue has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Unexpected("the key reservation was dropped unanswered".into())
        })?
    }
}

/// Reserves a batch in one statement. A key that the statement could not decide (the same
/// key twice in the batch, a record another replica wrote meanwhile, a failed connection) is
/// reserved on its own afterwards.
async fn reserve_batch(slot: &mut Slot, pool: &PgPool, batch: Vec<PendingKey>) {
    let mut seen = HashSet::new();
    let (together, alone): (Vec<PendingKey>, Vec<PendingKey>) = batch
        .into_iter()
        .partition(|p| seen.insert((p.record.party, p.record.key_hash.clone())));
    let mut undecided = alone;
    let decided = match slot.connection().await {
        Ok(connection) => reserve_together(connection, &together).await,
        Err(e) => Err(e),
    };
    match decided {
        Ok(mut decided) => {
            for pending in together {
                let key = (pending.record.party, pending.record.key_hash.clone());
                match decided.remove(&key) {
                    // Live for the batch's earliest expiry but expired for this request:
                    // it may take the record over, alone.
                    Some(Reservation::Known(first)) if first.created_at < pending.not_before => {
                        undecided.push(pending)
                    }
                    Some(reservation) => {
                        let _ = pending.reply.send(Ok(reservation));
                    }
                    None => undecided.push(pending),
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, keys = together.len(), "key reservations failed together; one at a time");
            slot.connection = None;
            undecided.extend(together);
        }
    }
    for pending in undecided {
        let result = reserve_one(pool, &pending.record, pending.not_before).await;
        let _ = pending.reply.send(result);
    }
}

type Decided = std::collections::HashMap<(Uuid, Vec<u8>), Reservation>;

/// One statement for distinct keys: inserts each, or takes over its expired record, or returns
/// its live record (as it was before the statement).
async fn reserve_together(
    db: &mut PgConnection,
    batch: &[PendingKey],
) -> Result<Decided, sqlx::Error> {
    let mut party = Vec::with_capacity(batch.len());
    let mut key_hash = Vec::with_capacity(batch.len());
    let mut operation = Vec::with_capacity(batch.len());
    let mut target = Vec::with_capacity(batch.len());
    let mut fingerprint = Vec::with_capacity(batch.len());
    let mut command_id = Vec::with_capacity(batch.len());
    let mut created_at = Vec::with_capacity(batch.len());
    let mut not_before = DateTime::<Utc>::MAX_UTC;
    for PendingKey {
        record,
        not_before: expiry,
        ..
    } in batch
    {
        party.push(record.party);
        key_hash.push(record.key_hash.clone());
        operation.push(record.operation.clone());
        target.push(record.target.clone());
        fingerprint.push(record.fingerprint.clone());
        command_id.push(record.command_id);
        created_at.push(record.created_at);
        // The earliest: a record is taken over only when it expired for every request here.
        not_before = not_before.min(*expiry);
    }
    let rows: Vec<PgRow> = sqlx::query(
        "WITH input AS ( \
             SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::text[], $4::text[], \
                 $5::bytea[], $6::uuid[], $7::timestamptz[]) \
             AS t(party_id, key_hash, operation, target, fingerprint, command_id, created_at)), \
         no_flush AS (SELECT set_config('synchronous_commit', 'off', true)), \
         inserted AS ( \
             INSERT INTO idempotency_keys AS k (party_id, key_hash, operation, target, \
                 fingerprint, command_id, created_at) \
             SELECT i.party_id, i.key_hash, i.operation, i.target, i.fingerprint, \
                 i.command_id, i.created_at \
             FROM input i, no_flush \
             ON CONFLICT (party_id, key_hash) DO UPDATE SET \
                 operation = excluded.operation, target = excluded.target, \
                 fingerprint = excluded.fingerprint, command_id = excluded.command_id, \
                 created_at = excluded.created_at \
             WHERE k.created_at < $8 \
             RETURNING k.party_id, k.key_hash) \
         SELECT party_id, key_hash, true AS reserved, NULL::text AS operation, \
             NULL::text AS target, NULL::bytea AS fingerprint, NULL::uuid AS command_id, \
             NULL::timestamptz AS created_at \
         FROM inserted \
         UNION ALL \
         SELECT k.party_id, k.key_hash, false, k.operation, k.target, k.fingerprint, \
             k.command_id, k.created_at \
         FROM idempotency_keys k JOIN input i USING (party_id, key_hash) \
         WHERE k.created_at >= $8",
    )
    .bind(&party)
    .bind(&key_hash)
    .bind(&operation)
    .bind(&target)
    .bind(&fingerprint)
    .bind(&command_id)
    .bind(&created_at)
    .bind(not_before)
    .fetch_all(db)
    .await?;
    let mut decided = Decided::with_capacity(rows.len());
    for row in rows {
        let key: (Uuid, Vec<u8>) = (row.try_get("party_id")?, row.try_get("key_hash")?);
        let reservation = if row.try_get("reserved")? {
            Reservation::Reserved
        } else {
            Reservation::Known(KeyRecord {
                party: key.0,
                key_hash: key.1.clone(),
                operation: row.try_get("operation")?,
                target: row.try_get("target")?,
                fingerprint: row.try_get("fingerprint")?,
                command_id: row.try_get("command_id")?,
                created_at: row.try_get("created_at")?,
            })
        };
        // A key both taken over and seen live cannot happen (the snapshot is one); the
        // reservation, written by this statement, wins.
        decided
            .entry(key)
            .and_modify(|known| {
                if reservation == Reservation::Reserved {
                    *known = Reservation::Reserved;
                }
            })
            .or_insert(reservation);
    }
    Ok(decided)
}

/// One key on its own: insert, or take over an expired record, or return the live one.
async fn reserve_one(
    pool: &PgPool,
    record: &KeyRecord,
    not_before: DateTime<Utc>,
) -> Result<Reservation, StoreError> {
    loop {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys AS k (party_id, key_hash, operation, target, \
                 fingerprint, command_id, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7 \
             FROM (SELECT set_config('synchronous_commit', 'off', true)) no_flush \
             ON CONFLICT (party_id, key_hash) DO UPDATE SET \
                 operation = excluded.operation, target = excluded.target, \
                 fingerprint = excluded.fingerprint, command_id = excluded.command_id, \
                 created_at = excluded.created_at \
             WHERE k.created_at < $8 \
             RETURNING 1",
        )
        .bind(record.party)
        .bind(&record.key_hash)
        .bind(&record.operation)
        .bind(&record.target)
        .bind(&record.fingerprint)
        .bind(record.command_id)
        .bind(record.created_at)
        .bind(not_before)
        .fetch_optional(pool)
        .await?;
        if inserted.is_some() {
            return Ok(Reservation::Reserved);
        }
        let row = sqlx::query(
            "SELECT operation, target, fingerprint, command_id, created_at \
             FROM idempotency_keys WHERE party_id = $1 AND key_hash = $2",
        )
        .bind(record.party)
        .bind(&record.key_hash)
        .fetch_optional(pool)
        .await?;
        // None: forgotten between the two statements, so the request may go ahead as the first.
        if let Some(row) = row {
            return Ok(Reservation::Known(KeyRecord {
                party: record.party,
                key_hash: record.key_hash.clone(),
                operation: row.try_get("operation")?,
                target: row.try_get("target")?,
                fingerprint: row.try_get("fingerprint")?,
                command_id: row.try_get("command_id")?,
                created_at: row.try_get("created_at")?,
            }));
        }
    }
}
