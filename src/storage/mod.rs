//! RocksDB: the one place that knows column families, key layout and value encoding.
//!
//! Column families: `meta` (small bookkeeping values) and `resources` (every resource, JSON-encoded,
//! keyed `kind \0 namespace \0 [collection \0] name`). Every write is one atomic `WriteBatch` synced
//! to the WAL before it returns, so an acknowledged write survives `kill -9` and a half-applied one
//! never appears. `storage.type: memory` runs the same code on RocksDB's in-memory environment.

use std::path::Path;

use rocksdb::{
    ColumnFamilyDescriptor, DB, Direction, Env, IteratorMode, Options, WriteBatch, WriteOptions,
};

use crate::resources::{Kind, Resource, ResourceKey};

const CF_META: &str = "meta";
const CF_RESOURCES: &str = "resources";

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

/// One write: resources to put and keys to delete, applied atomically.
#[derive(Default)]
pub struct Batch {
    puts: Vec<Resource>,
    deletes: Vec<ResourceKey>,
    meta: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Batch {
    pub fn put(&mut self, r: Resource) {
        self.puts.push(r);
    }
    pub fn delete(&mut self, key: ResourceKey) {
        self.deletes.push(key);
    }
    pub fn put_meta(&mut self, key: &[u8], value: &[u8]) {
        self.meta.push((key.to_vec(), value.to_vec()));
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
        let cfs = [CF_META, CF_RESOURCES]
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

    /// Applies `batch` atomically and waits until it is synced to disk.
    pub fn write(&self, batch: Batch) -> Result<()> {
        let resources = self.cf(CF_RESOURCES)?;
        let meta = self.cf(CF_META)?;
        let mut wb = WriteBatch::default();
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
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(wb, &opts)?;
        Ok(())
    }
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
