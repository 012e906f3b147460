//! Carrying a container's one-document checkpoint (versions before day shards) over to day
//! shards, once, with nothing staged twice.
//!
//! 1. Read `{container}.json`. A fresh claim in it by another run means an older version is
//!    copying: leave the container to it this time.
//! 2. Write it back (`If-Match`) holding a claim named [`MIGRATED`] dated far in the future: an
//!    older version that reads it finds a fresh claim and skips the container, for ever; a second
//!    newer run loses the race or finds it already done. The blobs' progress stays in it.
//! 3. Write each day shard with the progress of its blobs (`If-None-Match`: one left by an
//!    interrupted carry-over is the same). The ranges of a claim whose run died become the
//!    shards' retry lists, so they are copied as claimed (same keys, nothing twice).
//! 4. Write `roots.json` from the walked roots: from then on the container is in day shards. A run
//!    that died before this step carries it over again (steps 3 and 4 are idempotent).

use std::collections::BTreeMap;

use aztrail_state::Write;

use crate::checkpoint::{
    CheckpointError, Claim, Keys, LegacyCheckpoint, Roots, ShardCheckpoint, ShardId, States,
    MIGRATED,
};
use crate::source::Staging;

/// What was found.
#[derive(Debug)]
pub enum Carried {
    /// No one-document checkpoint: a container seen for the first time.
    Nothing,
    /// Carried over: the roots it had walked, and the ETag of `roots.json`.
    Roots(Roots, String),
    /// An older version's run is copying (why, for a warning).
    Busy(String),
}

/// When the claim that parks a carried-over checkpoint was made: far enough ahead that
/// `now - at` stays negative (fresh) for any clock, near enough that no arithmetic overflows.
const PARKED_AT: i64 = i64::MAX / 4;

/// Carries the one-document checkpoint of `keys` over to day shards, if there is one.
pub async fn carry_over<T: Staging>(
    state: &States<'_, T>,
    keys: &Keys,
    run_id: &str,
    now: i64,
    lease_seconds: i64,
) -> Result<Carried, CheckpointError> {
    let Some((mut legacy, etag)) = state.get::<LegacyCheckpoint>(&keys.legacy()).await? else {
        return Ok(Carried::Nothing);
    };
    let mut resumed = Vec::new();
    match &legacy.claim {
        Some(c) if c.run_id == MIGRATED => {}
        Some(c) if c.run_id != run_id && now - c.at < lease_seconds => {
            return Ok(Carried::Busy(format!(
                "run {} of an earlier version is copying (claimed {} s ago)",
                c.run_id,
                now - c.at
            )));
        }
        claim => {
            if let Some(c) = claim {
                resumed.clone_from(&c.ranges);
            }
            legacy.claim = Some(Claim {
                run_id: MIGRATED.into(),
                at: PARKED_AT,
                ranges: resumed.clone(),
            });
            state
                .put(&keys.legacy(), &legacy, Write::IfMatch(&etag))
                .await?;
        }
    }
    if let Some(c) = &legacy.claim {
        resumed.clone_from(&c.ranges);
    }
    let mut shards: BTreeMap<ShardId, ShardCheckpoint> = BTreeMap::new();
    for (blob, progress) in &legacy.blobs {
        let id = ShardId::of(blob);
        let shard = shards
            .entry(id.clone())
            .or_insert_with(|| ShardCheckpoint::empty(&id));
        shard.blobs.insert(blob.clone(), progress.clone());
    }
    for range in resumed {
        let id = ShardId::of(&range.blob);
        let shard = shards
            .entry(id.clone())
            .or_insert_with(|| ShardCheckpoint::empty(&id));
        shard.retry.push(range);
    }
    let writes = shards.iter().map(|(id, shard)| async move {
        match state.put(&keys.shard(id), shard, Write::IfAbsent).await {
            Ok(_) | Err(CheckpointError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    });
    futures::future::try_join_all(writes).await?;
    let roots = Roots {
        roots: legacy.roots,
        at: legacy.roots_at,
    };
    let etag = state.put(&keys.roots(), &roots, Write::Always).await?;
    Ok(Carried::Roots(roots, etag))
}
