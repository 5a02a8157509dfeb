use openraft::testing::{StoreBuilder, Suite};

use super::*;
use crate::storage::Store;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, SmStore, ()> for Builder {
    async fn build(&self) -> StorageResult<((), LogStore, SmStore)> {
        let store = Store::open_memory().map_err(io_write)?;
        let sm = Arc::new(StateMachine::new(store));
        Ok(((), LogStore::new(sm.clone()), SmStore::new(sm)))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("openraft storage suite");
}

fn entry(index: u64, cmd: ChangeCommand) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(cmd),
    }
}

async fn snapshot_of(store: &mut SmStore) -> Snapshot<TypeConfig> {
    store
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap()
}

fn namespace(name: &str) -> ChangeCommand {
    ChangeCommand::put(Resource::Namespace(crate::resources::Namespace {
        name: name.into(),
        tags: vec![],
    }))
}

#[tokio::test]
async fn entries_apply_commands_and_snapshots_carry_the_state() {
    let sm = Arc::new(StateMachine::new(Store::open_memory().unwrap()));
    let mut store = SmStore::new(sm.clone());
    let delete_missing = ChangeCommand::delete(ResourceKey::namespace("nope"));
    let out = store
        .apply([
            entry(1, namespace("a")),
            entry(2, delete_missing),
            entry(3, namespace("b")),
        ])
        .await
        .unwrap();
    assert!(matches!(out[0], ApplyResponse::Created(_)));
    assert!(
        matches!(&out[1], ApplyResponse::Refused(Refusal::NotFound(_))),
        "{:?}",
        out[1]
    );
    // A refused entry still counts as applied.
    let (applied, _) = store.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(3));

    let snap = snapshot_of(&mut store).await;
    let fresh = Arc::new(StateMachine::new(Store::open_memory().unwrap()));
    let mut other = SmStore::new(fresh.clone());
    other.apply([entry(1, namespace("stale"))]).await.unwrap();
    other
        .install_snapshot(&snap.meta, snap.snapshot)
        .await
        .unwrap();
    let names: Vec<String> = fresh
        .store()
        .list(crate::resources::Kind::Namespace, "", None)
        .unwrap()
        .into_iter()
        .map(|r| r.key().name)
        .collect();
    assert_eq!(names, ["a", "b"], "the snapshot replaces the state");
    assert_eq!(
        other.applied_state().await.unwrap().0.map(|l| l.index),
        Some(3)
    );
    assert!(other.get_current_snapshot().await.unwrap().is_some());
}

/// A node that catches up through a snapshot gets the kept versions too, so its next version
/// numbers and rollbacks match the others'.
#[tokio::test]
async fn snapshots_carry_the_history() {
    let sm = Arc::new(StateMachine::new(Store::open_memory().unwrap()));
    let mut store = SmStore::new(sm.clone());
    let module = |payload: &str| {
        ChangeCommand::put(
            Resource::from_json(
                crate::resources::Kind::Module,
                serde_json::json!({"name": "m", "namespace": "a", "payload": payload, "moduleType": "javascript"})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap(),
        )
    };
    store
        .apply([
            entry(1, namespace("a")),
            entry(2, module("YQ==")),
            entry(3, module("Yg==")),
        ])
        .await
        .unwrap();
    let snap = snapshot_of(&mut store).await;
    let fresh = Arc::new(StateMachine::new(Store::open_memory().unwrap()));
    let mut other = SmStore::new(fresh.clone());
    other
        .install_snapshot(&snap.meta, snap.snapshot)
        .await
        .unwrap();
    let key = ResourceKey::new(crate::resources::Kind::Module, "a", "m");
    assert_eq!(
        fresh.store().versions(&key).unwrap(),
        sm.store().versions(&key).unwrap()
    );
    assert_eq!(fresh.store().last_version(&key).unwrap(), 2);
}
