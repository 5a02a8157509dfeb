//! openraft storage (storage-v2) over the node's RocksDB: the log in the `log` column family, Raft
//! metadata (vote, committed, purged) and the state machine's position (last applied, membership,
//! current snapshot) in `meta`, the state itself in `resources`. Each applied entry writes its
//! resources and its log position in one atomic batch, so a crash can never apply an entry twice
//! or lose one. Checked with openraft's own storage test suite. `network.rs` carries the Raft
//! RPCs between nodes.

// openraft's traits fix the error type (`StorageError`, ~224 bytes); boxing it in the helpers
// would only move the conversion.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Refusal, Rejected, StateMachine};
use crate::resources::{ChangeCommand, ChangeOutcome, Resource, ResourceKey};
use crate::storage::Batch;

openraft::declare_raft_types!(
    /// dgate's Raft types: the log carries [`ChangeCommand`]s.
    pub TypeConfig:
        D = ChangeCommand,
        R = ApplyResponse,
);

pub type NodeId = u64;
type StorageResult<T> = Result<T, StorageError<NodeId>>;

const VOTE: &[u8] = b"raft/vote";
const COMMITTED: &[u8] = b"raft/committed";
const LAST_PURGED: &[u8] = b"raft/last_purged";
const LAST_APPLIED: &[u8] = b"sm/last_applied";
const MEMBERSHIP: &[u8] = b"sm/membership";
const SNAPSHOT: &[u8] = b"sm/snapshot";

/// What applying one log entry did, as the node that proposed it reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ApplyResponse {
    Created(Resource),
    Updated(Resource),
    Deleted(ResourceKey),
    DeletedDocuments(Vec<ResourceKey>),
    All(Vec<ApplyResponse>),
    /// The command was refused by the state machine's rules (it is still applied: nothing changed).
    Refused(Refusal),
    /// A blank or membership entry.
    Nothing,
}

fn io_read(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read(AnyError::new(&e)).into()
}

fn io_write(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write(AnyError::new(&e)).into()
}

fn encode<T: Serialize>(v: &T) -> StorageResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(io_write)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> StorageResult<T> {
    serde_json::from_slice(bytes).map_err(io_read)
}

fn read_meta<T: DeserializeOwned>(sm: &StateMachine, key: &[u8]) -> StorageResult<Option<T>> {
    match sm.store().get_meta(key).map_err(io_read)? {
        Some(bytes) => decode(&bytes).map(Some),
        None => Ok(None),
    }
}

/// The last membership this state machine applied, if any.
pub fn applied_membership(
    sm: &StateMachine,
) -> Result<Option<StoredMembership<NodeId, BasicNode>>, Rejected> {
    read_meta(sm, MEMBERSHIP).map_err(|e| Rejected::Internal(format!("stored membership: {e}")))
}

/// The Raft log.
#[derive(Clone)]
pub struct LogStore {
    sm: Arc<StateMachine>,
}

impl LogStore {
    pub fn new(sm: Arc<StateMachine>) -> LogStore {
        LogStore { sm }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let from = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(i) => i.saturating_add(1),
            Bound::Excluded(i) => *i,
            Bound::Unbounded => u64::MAX,
        };
        self.sm
            .store()
            .log_range(from, to)
            .map_err(io_read)?
            .iter()
            .map(|(_, bytes)| decode(bytes))
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last = match self.sm.store().last_log().map_err(io_read)? {
            Some((_, bytes)) => Some(decode::<Entry<TypeConfig>>(&bytes)?.log_id),
            None => None,
        };
        let last_purged_log_id: Option<LogId<NodeId>> = read_meta(&self.sm, LAST_PURGED)?;
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        self.sm
            .store()
            .put_meta_synced(VOTE, &encode(vote)?)
            .map_err(io_write)
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        read_meta(&self.sm, VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        self.sm
            .store()
            .put_meta_synced(COMMITTED, &encode(&committed)?)
            .map_err(io_write)
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        Ok(read_meta::<Option<LogId<NodeId>>>(&self.sm, COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let encoded = entries
            .into_iter()
            .map(|e| Ok((e.log_id.index, encode(&e)?)))
            .collect::<StorageResult<Vec<_>>>()?;
        // Synced before returning, so the flush has happened when the callback fires.
        let result = self.sm.store().append_log(&encoded);
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(io_write(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        self.sm
            .store()
            .delete_log_range(log_id.index, u64::MAX, None)
            .map_err(io_write)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let purged = encode(&log_id)?;
        self.sm
            .store()
            .delete_log_range(
                0,
                log_id.index.saturating_add(1),
                Some((LAST_PURGED, &purged)),
            )
            .map_err(io_write)
    }
}

/// A snapshot as stored: its meta and the serialized state.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// The state in a snapshot: every resource, and the kept versions of modules and routes (absent
/// from snapshots taken before there was a history).
#[derive(Serialize, Deserialize)]
struct SnapshotState {
    resources: Vec<Resource>,
    #[serde(default)]
    history: Vec<crate::storage::Version>,
}

/// The state machine side of Raft, over [`StateMachine`].
#[derive(Clone)]
pub struct SmStore {
    sm: Arc<StateMachine>,
    snapshot_idx: u64,
}

impl SmStore {
    pub fn new(sm: Arc<StateMachine>) -> SmStore {
        SmStore {
            sm,
            snapshot_idx: 0,
        }
    }

    fn position(
        log_id: LogId<NodeId>,
        membership: Option<&StoredMembership<NodeId, BasicNode>>,
    ) -> StorageResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut meta = vec![(LAST_APPLIED.to_vec(), encode(&Some(log_id))?)];
        if let Some(m) = membership {
            meta.push((MEMBERSHIP.to_vec(), encode(m)?));
        }
        Ok(meta)
    }

    fn write_meta_only(&self, meta: Vec<(Vec<u8>, Vec<u8>)>) -> StorageResult<()> {
        let mut batch = Batch::default();
        for (k, v) in &meta {
            batch.put_meta(k, v);
        }
        self.sm.write_batch(batch).map_err(io_write)
    }
}

fn applied(outcome: ChangeOutcome) -> ApplyResponse {
    match outcome {
        ChangeOutcome::Created(r) => ApplyResponse::Created(r),
        ChangeOutcome::Updated(r) => ApplyResponse::Updated(r),
        ChangeOutcome::Deleted(k) => ApplyResponse::Deleted(k),
        ChangeOutcome::DeletedDocuments(keys) => ApplyResponse::DeletedDocuments(keys),
        ChangeOutcome::All(all) => ApplyResponse::All(all.into_iter().map(applied).collect()),
    }
}

fn response(result: Result<ChangeOutcome, Rejected>) -> StorageResult<ApplyResponse> {
    Ok(match result {
        Ok(outcome) => applied(outcome),
        Err(Rejected::Refused(r)) => ApplyResponse::Refused(r),
        // Storage failures are not refusals: the node cannot go on applying.
        Err(e @ (Rejected::Storage(_) | Rejected::Internal(_) | Rejected::Unavailable(_))) => {
            return Err(io_write(e));
        }
    })
}

impl RaftSnapshotBuilder<TypeConfig> for SmStore {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let (last_log_id, last_membership, resources, history) = self
            .sm
            .read_locked(|store| {
                let applied = store.get_meta(LAST_APPLIED)?;
                let membership = store.get_meta(MEMBERSHIP)?;
                Ok::<_, crate::storage::StorageError>((
                    applied,
                    membership,
                    store.all_resources()?,
                    store.all_versions()?,
                ))
            })
            .map_err(io_read)?;
        let last_log_id: Option<LogId<NodeId>> = match last_log_id {
            Some(b) => decode(&b)?,
            None => None,
        };
        let last_membership: StoredMembership<NodeId, BasicNode> = match last_membership {
            Some(b) => decode(&b)?,
            None => StoredMembership::default(),
        };
        let data = encode(&SnapshotState { resources, history })?;
        let snapshot_id = match last_log_id {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.snapshot_idx),
            None => format!("--{}", self.snapshot_idx),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        let stored = encode(&StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        })?;
        self.sm
            .store()
            .put_meta_synced(SNAPSHOT, &stored)
            .map_err(io_write)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for SmStore {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        let applied = read_meta::<Option<LogId<NodeId>>>(&self.sm, LAST_APPLIED)?.flatten();
        let membership = read_meta(&self.sm, MEMBERSHIP)?.unwrap_or_default();
        Ok((applied, membership))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<ApplyResponse>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            match entry.payload {
                EntryPayload::Blank => {
                    self.write_meta_only(Self::position(log_id, None)?)?;
                    out.push(ApplyResponse::Nothing);
                }
                EntryPayload::Membership(m) => {
                    let stored = StoredMembership::new(Some(log_id), m);
                    self.write_meta_only(Self::position(log_id, Some(&stored))?)?;
                    out.push(ApplyResponse::Nothing);
                }
                EntryPayload::Normal(cmd) => {
                    let sm = self.sm.clone();
                    let meta = Self::position(log_id, None)?;
                    let result = tokio::task::spawn_blocking(move || sm.apply_with_meta(cmd, meta))
                        .await
                        .map_err(io_write)?;
                    out.push(response(result)?);
                }
            }
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_idx += 1;
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let data = snapshot.into_inner();
        let state: SnapshotState = decode(&data)?;
        let mut batch = Batch::default();
        batch.replace_all();
        for r in state.resources {
            batch.put(r);
        }
        for v in state.history {
            batch.put_version(v);
        }
        batch.put_meta(LAST_APPLIED, &encode(&meta.last_log_id)?);
        batch.put_meta(MEMBERSHIP, &encode(&meta.last_membership)?);
        batch.put_meta(
            SNAPSHOT,
            &encode(&StoredSnapshot {
                meta: meta.clone(),
                data,
            })?,
        );
        self.sm.write_batch(batch).map_err(io_write)
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        Ok(
            read_meta::<StoredSnapshot>(&self.sm, SNAPSHOT)?.map(|s| Snapshot {
                meta: s.meta,
                snapshot: Box::new(Cursor::new(s.data)),
            }),
        )
    }
}

#[cfg(test)]
mod tests;
