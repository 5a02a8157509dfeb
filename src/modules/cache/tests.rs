use super::*;

#[test]
fn tiny_entries_count_what_they_cost() {
    let cache = Cache::new(64 << 10);
    for i in 0..100_000 {
        cache.set(&format!("k{i}"), vec![1], None);
    }
    // Key and value alone would let about 13,000 in; with each entry's cost, at most 512.
    assert!(
        cache.len() <= (64 << 10) / ENTRY_OVERHEAD,
        "{}",
        cache.len()
    );
    assert!(cache.len() > 400, "the bound is used: {}", cache.len());
    // The newest entry is always kept.
    assert_eq!(cache.get("k99999"), Some(vec![1]));
}

#[test]
fn values_replace_expire_and_go() {
    let cache = Cache::new(1 << 20);
    cache.set("a", b"1".to_vec(), None);
    cache.set("a", b"2".to_vec(), None);
    assert_eq!(cache.get("a"), Some(b"2".to_vec()));
    assert_eq!(cache.len(), 1);
    cache.set("t", b"x".to_vec(), Some(Duration::ZERO));
    assert_eq!(cache.get("t"), None);
    cache.delete("a");
    assert!(cache.is_empty());
    // A value larger than the whole cache is not stored.
    cache.set("big", vec![0; 1 << 20], None);
    assert_eq!(cache.get("big"), None);
}
