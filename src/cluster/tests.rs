use serde_json::json;

use super::*;
use crate::resources::{Kind, REDACTED};

fn res(kind: Kind, v: serde_json::Value) -> Resource {
    Resource::from_json(kind, v.to_string().as_bytes()).unwrap()
}

fn sm() -> StateMachine {
    let sm = StateMachine::new(Store::open_memory().unwrap());
    sm.apply(ChangeCommand::put(res(
        Kind::Namespace,
        json!({"name": "ns"}),
    )))
    .unwrap();
    sm
}

fn put(sm: &StateMachine, kind: Kind, v: serde_json::Value) -> Result<ChangeOutcome, Rejected> {
    sm.apply(ChangeCommand::put(res(kind, v)))
}

fn del(sm: &StateMachine, key: ResourceKey) -> Result<ChangeOutcome, Rejected> {
    sm.apply(ChangeCommand::delete(key))
}

#[test]
fn references_must_exist() {
    let sm = sm();
    let err = put(
        &sm,
        Kind::Service,
        json!({"name": "s", "namespace": "nope", "urls": ["http://h"]}),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "namespace \"nope\" does not exist");
    let err = put(
        &sm,
        Kind::Route,
        json!({"name": "r", "namespace": "ns", "paths": ["/"], "methods": ["GET"], "service": "s"}),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        Rejected::Refused(Refusal::MissingReference(_))
    ));
    assert_eq!(
        err.to_string(),
        "service \"s\" does not exist in namespace \"ns\""
    );
    let err = put(
        &sm,
        Kind::Route,
        json!({"name": "r", "namespace": "ns", "paths": ["/"], "methods": ["GET"], "modules": ["m"]}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "module \"m\" does not exist in namespace \"ns\""
    );
    let err = put(
        &sm,
        Kind::Document,
        json!({"id": "d", "namespace": "ns", "collection": "c"}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "collection \"c\" does not exist in namespace \"ns\""
    );
    // Nothing was written by the refused commands.
    assert!(sm.store().list(Kind::Route, "ns", None).unwrap().is_empty());
}

#[test]
fn create_then_update() {
    let sm = sm();
    let svc = json!({"name": "s", "namespace": "ns", "urls": ["http://h"]});
    assert!(matches!(
        put(&sm, Kind::Service, svc.clone()),
        Ok(ChangeOutcome::Created(_))
    ));
    assert!(matches!(
        put(&sm, Kind::Service, svc),
        Ok(ChangeOutcome::Updated(_))
    ));
}

#[test]
fn referenced_resources_cannot_be_deleted() {
    let sm = sm();
    put(
        &sm,
        Kind::Service,
        json!({"name": "s", "namespace": "ns", "urls": ["http://h"]}),
    )
    .unwrap();
    put(
        &sm,
        Kind::Module,
        json!({"name": "m", "namespace": "ns", "payload": "ZXhwb3J0IHt9", "moduleType": "javascript"}),
    )
    .unwrap();
    put(
        &sm,
        Kind::Route,
        json!({"name": "r", "namespace": "ns", "paths": ["/"], "methods": ["GET"], "service": "s", "modules": ["m"]}),
    )
    .unwrap();
    put(
        &sm,
        Kind::Collection,
        json!({"name": "c", "namespace": "ns"}),
    )
    .unwrap();
    put(
        &sm,
        Kind::Document,
        json!({"id": "d", "namespace": "ns", "collection": "c", "data": 1}),
    )
    .unwrap();

    let err = del(&sm, ResourceKey::new(Kind::Service, "ns", "s")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "service \"s\" in namespace \"ns\" is still used by route \"r\" in namespace \"ns\""
    );
    let err = del(&sm, ResourceKey::new(Kind::Module, "ns", "m")).unwrap_err();
    assert!(
        matches!(err, Rejected::Refused(Refusal::Conflict(_))),
        "{err}"
    );
    let err = del(&sm, ResourceKey::new(Kind::Collection, "ns", "c")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "collection \"c\" in namespace \"ns\" is still used by document \"d\" in collection \"c\" of namespace \"ns\""
    );
    let err = del(&sm, ResourceKey::namespace("ns")).unwrap_err();
    assert!(
        matches!(err, Rejected::Refused(Refusal::Conflict(_))),
        "{err}"
    );

    // Remove the referrers, then the rest goes.
    del(&sm, ResourceKey::new(Kind::Route, "ns", "r")).unwrap();
    del(&sm, ResourceKey::document("ns", "c", "d")).unwrap();
    for (kind, name) in [
        (Kind::Service, "s"),
        (Kind::Module, "m"),
        (Kind::Collection, "c"),
    ] {
        del(&sm, ResourceKey::new(kind, "ns", name)).unwrap();
    }
    del(&sm, ResourceKey::namespace("ns")).unwrap();
    let err = del(&sm, ResourceKey::namespace("ns")).unwrap_err();
    assert_eq!(err.to_string(), "namespace \"ns\" not found");
}

#[test]
fn documents_follow_their_collection_schema() {
    let sm = sm();
    put(
        &sm,
        Kind::Collection,
        json!({"name": "c", "namespace": "ns", "schema": {"type": "object", "required": ["url"]}}),
    )
    .unwrap();
    let err = put(
        &sm,
        Kind::Document,
        json!({"id": "d", "namespace": "ns", "collection": "c", "data": {}}),
    )
    .unwrap_err();
    assert!(
        matches!(err, Rejected::Refused(Refusal::Invalid(_))),
        "{err}"
    );
    put(
        &sm,
        Kind::Document,
        json!({"id": "d", "namespace": "ns", "collection": "c", "data": {"url": "x"}, "createdAt": "t1"}),
    )
    .unwrap();
    // An update keeps the first createdAt.
    let out = put(
        &sm,
        Kind::Document,
        json!({"id": "d", "namespace": "ns", "collection": "c", "data": {"url": "y"}, "createdAt": "t2"}),
    )
    .unwrap();
    match out {
        ChangeOutcome::Updated(Resource::Document(d)) => {
            assert_eq!(d.created_at.as_deref(), Some("t1"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn redacted_placeholders_keep_the_stored_value() {
    let sm = sm();
    let err = put(
        &sm,
        Kind::Secret,
        json!({"name": "s", "namespace": "ns", "data": REDACTED}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "data: is the redacted placeholder; send the secret value"
    );
    put(
        &sm,
        Kind::Secret,
        json!({"name": "s", "namespace": "ns", "data": "hunter2"}),
    )
    .unwrap();
    put(
        &sm,
        Kind::Secret,
        json!({"name": "s", "namespace": "ns", "data": REDACTED, "tags": ["x"]}),
    )
    .unwrap();
    match sm
        .store()
        .get(&ResourceKey::new(Kind::Secret, "ns", "s"))
        .unwrap()
    {
        Some(Resource::Secret(s)) => {
            assert_eq!(s.data, "hunter2");
            assert_eq!(s.tags, ["x"]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_bootstraps_default_namespace_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = "http://127.0.0.1:9080";
    {
        let c = Cluster::single_node(Store::open_dir(dir.path()).unwrap(), url)
            .await
            .unwrap();
        assert!(c.is_ready());
        assert!(c.get(&ResourceKey::namespace("default")).unwrap().is_some());
        c.write(ChangeCommand::delete(ResourceKey::namespace("default")))
            .await
            .unwrap();
        // Writes go through the log: a refused one comes back refused.
        let err = c
            .write(ChangeCommand::delete(ResourceKey::namespace("default")))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "namespace \"default\" not found");
        c.shutdown().await;
    }
    // A deleted default namespace stays deleted across restarts; the log replays nothing twice.
    // Raft's tasks let go of the store shortly after shutdown; in a real restart the process is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let store = loop {
        match Store::open_dir(dir.path()) {
            Ok(s) => break s,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("store still locked: {e}"),
        }
    };
    let c = Cluster::single_node(store, url).await.unwrap();
    assert!(c.get(&ResourceKey::namespace("default")).unwrap().is_none());
    let out = c
        .write(ChangeCommand::put(res(
            Kind::Namespace,
            json!({"name": "again"}),
        )))
        .await
        .unwrap();
    assert!(matches!(out, ChangeOutcome::Created(_)));
    c.shutdown().await;
}

#[test]
fn put_all_writes_everything_or_nothing() {
    let sm = sm();
    let ns = |name: &str| res(Kind::Namespace, json!({"name": name}));
    let svc = |namespace: &str| {
        res(
            Kind::Service,
            json!({"name": "s", "namespace": namespace, "urls": ["http://a"]}),
        )
    };
    // The second put's namespace does not exist: nothing is written.
    let refused = sm.apply(ChangeCommand::put_all(vec![ns("one"), svc("nowhere")]));
    assert!(
        matches!(
            refused,
            Err(Rejected::Refused(Refusal::MissingReference(_)))
        ),
        "{refused:?}"
    );
    assert!(
        sm.store()
            .get(&ResourceKey::namespace("one"))
            .unwrap()
            .is_none()
    );
    // All valid: all written, each outcome in order.
    put(&sm, Kind::Namespace, json!({"name": "two"})).unwrap();
    match sm.apply(ChangeCommand::put_all(vec![ns("one"), svc("two")])) {
        Ok(ChangeOutcome::All(outcomes)) => {
            assert_eq!(outcomes.len(), 2);
            assert!(
                outcomes
                    .iter()
                    .all(|o| matches!(o, ChangeOutcome::Created(_)))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        sm.store()
            .get(&ResourceKey::namespace("one"))
            .unwrap()
            .is_some()
    );
    assert!(
        sm.store()
            .get(&ResourceKey::new(Kind::Service, "two", "s"))
            .unwrap()
            .is_some()
    );
}

#[test]
fn deleting_a_collections_documents_takes_them_all() {
    let sm = sm();
    put(
        &sm,
        Kind::Collection,
        json!({"name": "c", "namespace": "ns"}),
    )
    .unwrap();
    for id in ["a", "b"] {
        put(
            &sm,
            Kind::Document,
            json!({"id": id, "namespace": "ns", "collection": "c", "data": 1}),
        )
        .unwrap();
    }
    match sm.apply(ChangeCommand::delete_documents("ns", "c")) {
        Ok(ChangeOutcome::DeletedDocuments(keys)) => assert_eq!(keys.len(), 2),
        other => panic!("{other:?}"),
    }
    assert!(
        sm.store()
            .list(Kind::Document, "ns", Some("c"))
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        sm.apply(ChangeCommand::delete_documents("ns", "missing")),
        Err(Rejected::Refused(Refusal::NotFound(_)))
    ));
}

fn module_put(payload: &str, by: &str) -> ChangeCommand {
    ChangeCommand::put(res(
        Kind::Module,
        json!({"name": "m", "namespace": "ns", "payload": payload, "moduleType": "javascript"}),
    ))
    .stamped(crate::resources::Stamp {
        at: "2026-12-03T00:00:00Z".into(),
        by: by.into(),
    })
}

/// Each write of a module or route is kept as a numbered version (a delete too), the oldest
/// dropped past the limit; other kinds keep none.
#[test]
fn module_and_route_writes_are_kept_as_versions() {
    let sm = StateMachine::with_history(Store::open_memory().unwrap(), 3);
    sm.apply(ChangeCommand::put(res(
        Kind::Namespace,
        json!({"name": "ns"}),
    )))
    .unwrap();
    for (i, payload) in ["YQ==", "Yg==", "Yw==", "ZA=="].iter().enumerate() {
        sm.apply(module_put(payload, &format!("key {i}"))).unwrap();
    }
    let key = ResourceKey::new(Kind::Module, "ns", "m");
    let kept = sm.store().versions(&key).unwrap();
    let numbers: Vec<u64> = kept.iter().map(|v| v.version).collect();
    assert_eq!(
        numbers,
        [2, 3, 4],
        "the oldest version falls out past the limit of 3"
    );
    assert_eq!(kept[2].by.as_deref(), Some("key 3"));
    assert_eq!(kept[2].at.as_deref(), Some("2026-12-03T00:00:00Z"));
    assert!(matches!(&kept[0].resource, Some(Resource::Module(m)) if m.payload == "Yg=="));

    // A delete is a version without a resource; numbering goes on after it.
    sm.apply(ChangeCommand::delete(key.clone())).unwrap();
    sm.apply(module_put("ZQ==", "key 0")).unwrap();
    let kept = sm.store().versions(&key).unwrap();
    let shape: Vec<(u64, bool)> = kept
        .iter()
        .map(|v| (v.version, v.resource.is_some()))
        .collect();
    assert_eq!(shape, [(4, true), (5, false), (6, true)]);
    assert_eq!(sm.store().last_version(&key).unwrap(), 6);
    // Written again as it is (init_resources at each start): no new version.
    sm.apply(module_put("ZQ==", "dgate")).unwrap();
    assert_eq!(sm.store().last_version(&key).unwrap(), 6);

    // A refused write keeps nothing; other kinds keep no history.
    let bad = ChangeCommand::put(res(
        Kind::Route,
        json!({"name": "r", "namespace": "ns", "paths": ["/"], "methods": ["GET"], "service": "none"}),
    ));
    assert!(sm.apply(bad).is_err());
    assert_eq!(
        sm.store()
            .last_version(&ResourceKey::new(Kind::Route, "ns", "r"))
            .unwrap(),
        0
    );
    put(
        &sm,
        Kind::Service,
        json!({"name": "s", "namespace": "ns", "urls": ["http://h"]}),
    )
    .unwrap();
    assert!(
        sm.store()
            .versions(&ResourceKey::new(Kind::Service, "ns", "s"))
            .unwrap()
            .is_empty()
    );

    // A change that writes the same route twice makes two versions.
    let route = |p: &str| {
        res(
            Kind::Route,
            json!({"name": "r", "namespace": "ns", "paths": [p], "methods": ["GET"], "service": "s"}),
        )
    };
    sm.apply(ChangeCommand::put_all(vec![route("/a"), route("/b")]))
        .unwrap();
    let numbers: Vec<u64> = sm
        .store()
        .versions(&ResourceKey::new(Kind::Route, "ns", "r"))
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(numbers, [1, 2]);

    // With a history of 0 nothing is kept.
    let none = StateMachine::with_history(Store::open_memory().unwrap(), 0);
    none.apply(ChangeCommand::put(res(
        Kind::Namespace,
        json!({"name": "ns"}),
    )))
    .unwrap();
    none.apply(module_put("YQ==", "x")).unwrap();
    assert!(none.store().versions(&key).unwrap().is_empty());
}
