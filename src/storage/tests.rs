use super::*;
use crate::resources::{Namespace, Secret, Service};

fn ns(name: &str) -> Resource {
    Resource::Namespace(Namespace {
        name: name.into(),
        tags: vec![],
    })
}

fn svc(namespace: &str, name: &str) -> Resource {
    Resource::Service(Service {
        name: name.into(),
        namespace: namespace.into(),
        urls: vec!["http://127.0.0.1:1".into()],
        retries: None,
        retry_timeout: None,
        connect_timeout: None,
        request_timeout: None,
        tls_skip_verify: false,
        http2_only: false,
        hide_dgate_headers: false,
        disable_query_params: false,
        tags: vec![],
    })
}

#[test]
fn put_get_list_delete_round_trip() {
    let store = Store::open_memory().unwrap();
    let mut b = Batch::default();
    b.put(ns("a"));
    b.put(svc("a", "s2"));
    b.put(svc("a", "s1"));
    b.put(svc("ab", "other"));
    store.write(b).unwrap();

    assert_eq!(
        store.get(&ResourceKey::namespace("a")).unwrap(),
        Some(ns("a"))
    );
    let names: Vec<_> = store
        .list(Kind::Service, "a", None)
        .unwrap()
        .into_iter()
        .map(|r| r.key().name)
        .collect();
    // Namespace "ab" shares a string prefix with "a" but not a key prefix.
    assert_eq!(names, ["s1", "s2"]);
    assert!(store.first(Kind::Secret, "a", None).unwrap().is_none());

    let mut b = Batch::default();
    b.delete(ResourceKey::new(Kind::Service, "a", "s1"));
    store.write(b).unwrap();
    assert_eq!(store.list(Kind::Service, "a", None).unwrap().len(), 1);
    assert!(
        store
            .get(&ResourceKey::new(Kind::Service, "a", "s1"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open_dir(dir.path()).unwrap();
        let mut b = Batch::default();
        b.put(ns("kept"));
        b.put(Resource::Secret(Secret {
            name: "s".into(),
            namespace: "kept".into(),
            data: "hunter2".into(),
            tags: vec![],
            created_at: None,
            updated_at: None,
        }));
        b.put_meta(b"k", b"v");
        store.write(b).unwrap();
    }
    let store = Store::open_dir(dir.path()).unwrap();
    assert_eq!(
        store.list(Kind::Namespace, "", None).unwrap(),
        vec![ns("kept")]
    );
    assert_eq!(store.get_meta(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    match store
        .get(&ResourceKey::new(Kind::Secret, "kept", "s"))
        .unwrap()
    {
        Some(Resource::Secret(s)) => assert_eq!(s.data, "hunter2"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_second_open_of_the_same_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open_dir(dir.path()).unwrap();
    let err = Store::open_dir(dir.path())
        .err()
        .expect("second open must fail");
    assert!(err.to_string().contains("lock"), "{err}");
}
