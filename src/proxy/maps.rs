//! Header maps reused within a proxy thread. A request's map and its response's are made and
//! dropped once an exchange each; with the room the proxy reserves in them they are over a
//! kilobyte, past glibc's per-thread cache, and each allocation took its slow path (and a
//! consolidation of freed chunks) every request. The maps the wire code makes come from here,
//! and go back once written out.

use std::cell::RefCell;

use http::HeaderMap;

/// Maps kept per thread: two for each request in flight on it at c=256 with two threads (with 64,
/// `take` showed 0.2 µs a request under perf there: many maps were made anew). The list only grows
/// to the thread's peak of requests in flight, each map about 1.3 KiB.
const KEEP: usize = 512;
/// A map grown past this many fields (a request with very many headers) is not kept.
const KEEP_FIELDS: usize = 64;

thread_local! {
    static FREE: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// An empty map with room for `fields` without growing: one this thread gave back, or new.
pub fn take(fields: usize) -> HeaderMap {
    let reused = FREE.try_with(|free| free.borrow_mut().pop()).ok().flatten();
    match reused {
        Some(mut map) => {
            if map.capacity() < fields {
                map.reserve(fields);
            }
            map
        }
        None => HeaderMap::with_capacity(fields),
    }
}

/// Gives `map` back for another exchange on this thread; its fields are dropped now.
pub fn give(mut map: HeaderMap) {
    if map.capacity() > KEEP_FIELDS {
        return;
    }
    map.clear();
    let _ = FREE.try_with(|free| {
        let mut free = free.borrow_mut();
        if free.len() < KEEP {
            free.push(map);
        }
    });
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    #[test]
    fn a_map_given_back_is_taken_again_empty_with_its_room() {
        let mut map = super::take(10);
        map.insert("x-a", HeaderValue::from_static("1"));
        let room = map.capacity();
        super::give(map);
        let again = super::take(4);
        assert!(again.is_empty());
        assert_eq!(again.capacity(), room);
        // Asking for more room than it has grows it.
        super::give(again);
        assert!(super::take(room + 8).capacity() >= room + 8);
    }
}
