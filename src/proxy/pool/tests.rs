use std::hash::BuildHasher;

use super::*;

fn hash(key: &Key) -> u64 {
    BuildHasherDefault::<KeyHasher>::default().hash_one(key)
}

#[test]
fn keys_of_one_address_meet_whatever_its_case() {
    let a = Key::new("Upstream.Example:8080".parse().unwrap());
    let b = Key::new("upstream.example:8080".parse().unwrap());
    assert_eq!(a, b);
    assert_eq!(hash(&a), hash(&b));
    let mut map: HashMap<Key, u32, BuildHasherDefault<KeyHasher>> = HashMap::default();
    map.insert(a, 1);
    assert_eq!(map.get(&b), Some(&1));
}

#[test]
fn keys_of_different_addresses_differ() {
    let a = Key::new("127.0.0.1:8080".parse().unwrap());
    let b = Key::new("127.0.0.1:8081".parse().unwrap());
    assert_ne!(a, b);
    assert_ne!(hash(&a), hash(&b));
}
