//! RocksDB: the one place that knows column families, key layout and value encoding.
//!
//! Column families: `meta` (small bookkeeping values, Raft's vote and log position), `resources`
//! (every resource, JSON-encoded, keyed `kind \0 namespace \0 [collection \0] name`), `history`
//! (the kept versions of modules and routes, keyed by the resource's key, `\0` and the big-endian
//! version) and `log` (the Raft log, keyed by big-endian index). Every write is one atomic `WriteBatch` synced
//! to the WAL before it returns, so an acknowledged write survives `kill -9` and a half-applied one
//! never appears. `storage.type: memory` runs the same code on RocksDB's in-memory environment.

use std::path::Path;

use rocksdb::{
    ColumnFamilyDescriptor, DB, Direction, Env, IteratorMode, Options, WriteBatch, WriteOptions,
};

use crate::resources::{Kind, Resource, ResourceKey};

const CF_META: &str = "meta";
const CF_RESOURCES: &str = "resources";
const CF_LOG: &str = "log";
const CF_HISTORY: &str = "history";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("storage: stored value under {key} is corrupt: {source}")]
    Decode {
        key: String,
        source: serde_json::Error,
    },
    #[error("storage: column family {0} is missing")]
    MissingColumnFamily(&'static str),
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// One kept version of a resource: what a write made it (`None`: the write deleted it), when and
/// by whom. Versions count up from 1 for each resource key and are never reused.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Version {
    pub key: ResourceKey,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
}

/// One write: resources to put and keys to delete, applied atomically.
#[derive(Default)]
pub struct Batch {
    puts: Vec<Resource>,
    deletes: Vec<ResourceKey>,
    versions: Vec<Version>,
    /// History entries to drop: a key's versions up to and including this one.
    forget: Vec<(ResourceKey, u64)>,
    meta: Vec<(Vec<u8>, Vec<u8>)>,
    replace_all: bool,
}

impl Batch {
    pub fn put(&mut self, r: Resource) {
        self.puts.push(r);
    }
    pub fn delete(&mut self, key: ResourceKey) {
        self.deletes.push(key);
    }
    /// Keeps `version` in the history.
    pub fn put_version(&mut self, version: Version) {
        self.versions.push(version);
    }
    /// The newest version of `key` this batch keeps, if any.
    pub fn last_version(&self, key: &ResourceKey) -> Option<u64> {
        self.versions
            .iter()
            .rev()
            .find(|v| &v.key == key)
            .map(|v| v.version)
    }
    /// Drops `key`'s history entries up to and including version `through`.
    pub fn forget_versions(&mut self, key: ResourceKey, through: u64) {
        self.forget.push((key, through));
    }
    pub fn put_meta(&mut self, key: &[u8], value: &[u8]) {
        self.meta.push((key.to_vec(), value.to_vec()));
    }
    /// Removes every stored resource and history entry before the puts (installing a snapshot).
    pub fn replace_all(&mut self) {
        self.replace_all = true;
    }
}

pub struct Store {
    db: DB,
    // Keeps the in-memory environment alive as long as the database that uses it.
    _env: Option<Env>,
}

impl Store {
    /// Opens (creating if needed) the database under `dir`.
    pub fn open_dir(dir: &Path) -> Result<Store> {
        Self::open_with(dir, None)
    }

    /// Opens an empty database that lives only in memory.
    pub fn open_memory() -> Result<Store> {
        let env = Env::mem_env()?;
        Self::open_with(Path::new("/dgate-memory"), Some(env))
    }

    fn open_with(path: &Path, env: Option<Env>) -> Result<Store> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_keep_log_file_num(4);
        opts.set_max_log_file_size(8 << 20);
        if let Some(env) = &env {
            opts.set_env(env);
        }
        let cfs = [CF_META, CF_RESOURCES, CF_LOG, CF_HISTORY]
            .into_iter()
            .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, path, cfs)?;
        Ok(Store { db, _env: env })
    }

    fn cf(&self, name: &'static str) -> Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(name)
            .ok_or(StorageError::MissingColumnFamily(name))
    }

    pub fn get(&self, key: &ResourceKey) -> Result<Option<Resource>> {
        let k = encode_key(key);
        match self.db.get_pinned_cf(self.cf(CF_RESOURCES)?, &k)? {
            Some(bytes) => decode(&k, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Resources of `kind` in `namespace` (all namespaces for [`Kind::Namespace`]), narrowed to one
    /// collection for documents when `collection` is given; ordered by name.
    pub fn list(
        &self,
        kind: Kind,
        namespace: &str,
        collection: Option<&str>,
    ) -> Result<Vec<Resource>> {
        let prefix = list_prefix(kind, namespace, collection);
        self.scan(&prefix, usize::MAX)
    }

    /// Like [`Store::list`] but stops at the first match: for "is anything still in here" checks.
    pub fn first(
        &self,
        kind: Kind,
        namespace: &str,
        collection: Option<&str>,
    ) -> Result<Option<Resource>> {
        let prefix = list_prefix(kind, namespace, collection);
        Ok(self.scan(&prefix, 1)?.into_iter().next())
    }

    fn scan(&self, prefix: &[u8], limit: usize) -> Result<Vec<Resource>> {
        let cf = self.cf(CF_RESOURCES)?;
        let iter = self
            .db
            .iterator_cf(cf, IteratorMode::From(prefix, Direction::Forward));
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }

    pub fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(CF_META)?, key)?)
    }

    /// `key`'s kept versions, oldest first.
    pub fn versions(&self, key: &ResourceKey) -> Result<Vec<Version>> {
        let prefix = history_prefix(key);
        self.scan_history(&prefix)
    }

    /// `key`'s newest kept version, if any.
    pub fn newest_version(&self, key: &ResourceKey) -> Result<Option<Version>> {
        self.newest_entry(key)?
            .map(|(k, v)| {
                serde_json::from_slice(&v).map_err(|source| StorageError::Decode {
                    key: String::from_utf8_lossy(&k).replace('\0', "/"),
                    source,
                })
            })
            .transpose()
    }

    /// The newest version number `key` ever had (0 when it never had one): its history's last
    /// entry, which is always kept.
    pub fn last_version(&self, key: &ResourceKey) -> Result<u64> {
        let prefix = history_prefix(key);
        Ok(match self.newest_entry(key)? {
            Some((k, _)) => log_index(&k[prefix.len()..]),
            None => 0,
        })
    }

    /// The raw key and value of `key`'s newest history entry.
    fn newest_entry(&self, key: &ResourceKey) -> Result<Option<KeyValue>> {
        let prefix = history_prefix(key);
        let mut end = prefix.clone();
        end.extend_from_slice(&u64::MAX.to_be_bytes());
        let cf = self.cf(CF_HISTORY)?;
        let mut iter = self
            .db
            .iterator_cf(cf, IteratorMode::From(&end, Direction::Reverse));
        match iter.next() {
            Some(item) => {
                let (k, v) = item?;
                Ok((k.starts_with(&prefix) && k.len() == prefix.len() + 8).then_some((k, v)))
            }
            None => Ok(None),
        }
    }

    /// Every kept version of every resource: the history part of a snapshot.
    pub fn all_versions(&self) -> Result<Vec<Version>> {
        self.scan_history(&[])
    }

    fn scan_history(&self, prefix: &[u8]) -> Result<Vec<Version>> {
        let cf = self.cf(CF_HISTORY)?;
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(cf, IteratorMode::From(prefix, Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push(
                serde_json::from_slice(&v).map_err(|source| StorageError::Decode {
                    key: String::from_utf8_lossy(&k).replace('\0', "/"),
                    source,
                })?,
            );
        }
        Ok(out)
    }

    /// Applies `batch` atomically and waits until it is synced to disk.
    pub fn write(&self, batch: Batch) -> Result<()> {
        let resources = self.cf(CF_RESOURCES)?;
        let history = self.cf(CF_HISTORY)?;
        let meta = self.cf(CF_META)?;
        let mut wb = WriteBatch::default();
        if batch.replace_all {
            wb.delete_range_cf(resources, [0u8].as_slice(), [0xffu8; 8].as_slice());
            wb.delete_range_cf(history, [0u8].as_slice(), [0xffu8; 8].as_slice());
        }
        for (key, through) in &batch.forget {
            let prefix = history_prefix(key);
            let mut end = prefix.clone();
            end.extend_from_slice(&through.saturating_add(1).to_be_bytes());
            wb.delete_range_cf(history, prefix, end);
        }
        for v in &batch.versions {
            let value = serde_json::to_vec(v).map_err(|source| StorageError::Decode {
                key: v.key.to_string(),
                source,
            })?;
            let mut k = history_prefix(&v.key);
            k.extend_from_slice(&v.version.to_be_bytes());
            wb.put_cf(history, k, value);
        }
        for r in &batch.puts {
            let value = serde_json::to_vec(r).map_err(|source| StorageError::Decode {
                key: r.key().to_string(),
                source,
            })?;
            wb.put_cf(resources, encode_key(&r.key()), value);
        }
        for k in &batch.deletes {
            wb.delete_cf(resources, encode_key(k));
        }
        for (k, v) in &batch.meta {
            wb.put_cf(meta, k, v);
        }
        self.write_synced(wb)
    }
}

/// The Raft log: entries by index (big-endian keys sort numerically), synced on every write.
impl Store {
    /// Every resource, in key order: the state machine's snapshot.
    pub fn all_resources(&self) -> Result<Vec<Resource>> {
        self.scan(&[], usize::MAX)
    }

    /// Appends (or overwrites) log entries.
    pub fn append_log(&self, entries: &[(u64, Vec<u8>)]) -> Result<()> {
        let cf = self.cf(CF_LOG)?;
        let mut wb = WriteBatch::default();
        for (index, bytes) in entries {
            wb.put_cf(cf, index.to_be_bytes(), bytes);
        }
        self.write_synced(wb)
    }

    /// Entries with `from <= index < to`, in order.
    pub fn log_range(&self, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let cf = self.cf(CF_LOG)?;
        let start = from.to_be_bytes();
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(cf, IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item?;
            let index = log_index(&k);
            if index >= to {
                break;
            }
            out.push((index, v.to_vec()));
        }
        Ok(out)
    }

    /// The last log entry, if any.
    pub fn last_log(&self) -> Result<Option<(u64, Vec<u8>)>> {
        let cf = self.cf(CF_LOG)?;
        match self.db.iterator_cf(cf, IteratorMode::End).next() {
            Some(item) => {
                let (k, v) = item?;
                Ok(Some((log_index(&k), v.to_vec())))
            }
            None => Ok(None),
        }
    }

    /// Deletes entries with `from <= index < to`, writing `meta` in the same batch.
    pub fn delete_log_range(&self, from: u64, to: u64, meta: Option<(&[u8], &[u8])>) -> Result<()> {
        let mut wb = WriteBatch::default();
        wb.delete_range_cf(self.cf(CF_LOG)?, from.to_be_bytes(), to.to_be_bytes());
        if let Some((k, v)) = meta {
            wb.put_cf(self.cf(CF_META)?, k, v);
        }
        self.write_synced(wb)
    }

    /// Writes one metadata value.
    pub fn put_meta_synced(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut wb = WriteBatch::default();
        wb.put_cf(self.cf(CF_META)?, key, value);
        self.write_synced(wb)
    }

    fn write_synced(&self, wb: WriteBatch) -> Result<()> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(wb, &opts)?;
        Ok(())
    }
}

fn log_index(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

fn push_part(out: &mut Vec<u8>, part: &str) {
    out.extend_from_slice(part.as_bytes());
    out.push(0);
}

/// `kind \0 namespace \0 [collection \0] name`. Validation keeps NUL out of every part.
fn encode_key(key: &ResourceKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    push_part(&mut out, key.kind.as_str());
    push_part(&mut out, &key.namespace);
    if let Some(c) = &key.collection {
        push_part(&mut out, c);
    }
    out.extend_from_slice(key.name.as_bytes());
    out
}

/// A raw RocksDB entry.
type KeyValue = (Box<[u8]>, Box<[u8]>);

/// A resource's history entries: its key and a NUL, then the big-endian version.
fn history_prefix(key: &ResourceKey) -> Vec<u8> {
    let mut out = encode_key(key);
    out.push(0);
    out
}

fn list_prefix(kind: Kind, namespace: &str, collection: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    push_part(&mut out, kind.as_str());
    push_part(
        &mut out,
        if kind == Kind::Namespace {
            ""
        } else {
            namespace
        },
    );
    if let (Kind::Document, Some(c)) = (kind, collection) {
        push_part(&mut out, c);
    }
    out
}

fn decode(key: &[u8], bytes: &[u8]) -> Result<Resource> {
    serde_json::from_slice(bytes).map_err(|source| StorageError::Decode {
        key: String::from_utf8_lossy(key).replace('\0', "/"),
        source,
    })
}

#[cfg(test)]
mod tests;
