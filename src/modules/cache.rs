//! The module cache: bytes by key with an optional time to live, bounded in bytes, each entry
//! counted with what it costs besides its key and value ([`ENTRY_OVERHEAD`]), so that many tiny
//! entries cannot outgrow the bound. One per namespace on the proxy; `dgate module run` has its
//! own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What one entry costs besides its key and value: the map's slot (key and value handles, the
/// expiry) and the two allocations' headers, rounded up.
pub const ENTRY_OVERHEAD: usize = 128;

pub struct Cache {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, (Vec<u8>, Option<Instant>)>,
    bytes: usize,
}

impl Default for Cache {
    fn default() -> Self {
        Cache::new(16 << 20)
    }
}

impl Cache {
    pub fn new(max_bytes: usize) -> Cache {
        Cache {
            inner: Mutex::new(Inner::default()),
            max_bytes,
        }
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.entries.get(key) {
            Some((_, Some(expires))) if *expires <= Instant::now() => {
                inner.remove(key);
                None
            }
            Some((v, _)) => Some(v.clone()),
            None => None,
        }
    }

    /// Stores `value`; when the cache is full, expired entries go first, then arbitrary ones.
    /// A value larger than the whole cache is not stored.
    pub fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) {
        let size = cost(key, &value);
        if size > self.max_bytes {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.remove(key);
        if inner.bytes + size > self.max_bytes {
            let now = Instant::now();
            let expired: Vec<String> = inner
                .entries
                .iter()
                .filter(|(_, (_, e))| e.is_some_and(|e| e <= now))
                .map(|(k, _)| k.clone())
                .collect();
            for k in expired {
                inner.remove(&k);
            }
        }
        while inner.bytes + size > self.max_bytes {
            let Some(k) = inner.entries.keys().next().cloned() else {
                break;
            };
            inner.remove(&k);
        }
        inner.bytes += size;
        let expires = ttl.map(|t| Instant::now() + t);
        inner.entries.insert(key.to_string(), (value, expires));
    }

    /// How many entries the cache holds (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn delete(&self, key: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// What an entry counts against the bound.
fn cost(key: &str, value: &[u8]) -> usize {
    key.len() + value.len() + ENTRY_OVERHEAD
}

impl Inner {
    fn remove(&mut self, key: &str) {
        if let Some((v, _)) = self.entries.remove(key) {
            self.bytes -= cost(key, &v);
        }
    }
}

#[cfg(test)]
mod tests;
