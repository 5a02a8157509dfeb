//! The state machine: applies one [`ChangeCommand`] to the store, checking every rule that depends
//! on the rest of the state (references must exist, referenced things cannot be deleted) inside the
//! same critical section as the write, so two concurrent commands can never break an invariant.
//!
//! `apply` is deterministic given the store's contents: it reads no clock and no environment, which
//! is what a replicated log needs.

use std::sync::{Mutex, OnceLock};

use crate::resources::validate::{self, Invalid};
use crate::resources::{
    Applied, ChangeCommand, ChangeOutcome, Kind, REDACTED, Resource, ResourceKey, Route, SERVED,
    Stamp,
};
use crate::storage::{Batch, StorageError, Store, Version};

/// Why the state machine refused a command: decided the same way on every node, and carried
/// back over Raft to the node that proposed it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
pub enum Refusal {
    /// A field breaks a rule of its own.
    #[error("{0}")]
    Invalid(String),
    /// The command names something that does not exist (the resource itself, for a delete).
    #[error("{0}")]
    NotFound(String),
    /// The command refers to something that does not exist (a route's service, say).
    #[error("{0}")]
    MissingReference(String),
    /// The resource is still used by another one.
    #[error("{0}")]
    Conflict(String),
}

/// Why a change did not happen: refused by the rules, or the cluster could not take it.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("internal error: {0}")]
    Internal(String),
    /// The cluster cannot take writes now (no leader, no quorum).
    #[error("{0}")]
    Unavailable(String),
}

impl From<Invalid> for Rejected {
    fn from(e: Invalid) -> Self {
        Rejected::Refused(Refusal::Invalid(e.to_string()))
    }
}

/// Called after every change this node applies, with what it applied (and with every served
/// resource when it starts observing and when a snapshot is installed), inside the write's
/// critical section: when a write returns, what the observer built from it is already published.
pub type Observer = Box<dyn Fn(Applied<'_>) + Send + Sync>;

pub struct StateMachine {
    store: Store,
    write_lock: Mutex<()>,
    observer: OnceLock<Observer>,
    /// Versions kept of each module and route, the current one included (0: none).
    history: usize,
}

/// The kinds whose writes are kept as versions: what `dgate rollback` undoes.
pub const VERSIONED: [Kind; 2] = [Kind::Module, Kind::Route];

impl StateMachine {
    pub fn new(store: Store) -> Self {
        Self::with_history(store, crate::config::defaults::HISTORY)
    }

    /// A state machine that keeps `history` versions of each module and route.
    pub fn with_history(store: Store, history: usize) -> Self {
        Self {
            store,
            write_lock: Mutex::new(()),
            observer: OnceLock::new(),
            history,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Applies `cmd` and syncs it to disk. Blocking: call it off the async runtime's workers.
    pub fn apply(&self, cmd: ChangeCommand) -> Result<ChangeOutcome, Rejected> {
        self.apply_with_meta(cmd, Vec::new())
    }

    /// Like [`StateMachine::apply`], and writes `meta` (the Raft log position, say) in the same
    /// atomic batch; also when the command is refused, since a refused entry is still applied.
    pub fn apply_with_meta(
        &self,
        cmd: ChangeCommand,
        meta: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<ChangeOutcome, Rejected> {
        // A poisoned lock only means another apply panicked; the store itself is still consistent
        // because each write is one atomic batch.
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let meta_batch = || {
            let mut batch = Batch::default();
            for (k, v) in &meta {
                batch.put_meta(k, v);
            }
            batch
        };
        let result = match cmd {
            ChangeCommand::Put { resource, stamp } => self.put(resource, stamp, meta_batch()),
            ChangeCommand::Delete { key, stamp } => self.delete(key, stamp, meta_batch()),
            ChangeCommand::PutAll { resources, stamp } => {
                self.put_all(resources, stamp, meta_batch())
            }
            ChangeCommand::DeleteDocuments {
                namespace,
                collection,
            } => self.delete_documents(namespace, collection, meta_batch()),
        };
        if result.is_err() && !meta.is_empty() {
            self.store.write(meta_batch())?;
        }
        let outcome = result?;
        if let Some(observe) = self.observer.get() {
            tell(observe, &outcome);
        }
        Ok(outcome)
    }

    /// Runs `f` inside the write critical section: reads in it see one consistent state.
    pub fn read_locked<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        f(&self.store)
    }

    /// Writes `batch` inside the write critical section and publishes the result.
    pub fn write_batch(&self, batch: Batch) -> Result<(), Rejected> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.store.write(batch)?;
        if let Some(observe) = self.observer.get() {
            observe(Applied::All(&self.served()?));
        }
        Ok(())
    }

    /// Installs the observer (once; a second one is ignored) and runs it on the current state.
    pub fn observe(&self, observer: Observer) -> Result<(), Rejected> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        observer(Applied::All(&self.served()?));
        let _ = self.observer.set(observer);
        Ok(())
    }

    /// Every resource of the [`SERVED`] kinds, namespaces first.
    fn served(&self) -> Result<Vec<Resource>, StorageError> {
        let namespaces = self.store.list(Kind::Namespace, "", None)?;
        let mut all = Vec::new();
        for ns in &namespaces {
            let ns = ns.key().name;
            for kind in &SERVED[1..] {
                all.extend(self.store.list(*kind, &ns, None)?);
            }
        }
        all.splice(0..0, namespaces);
        Ok(all)
    }

    fn put(
        &self,
        resource: Resource,
        stamp: Option<Stamp>,
        mut batch: Batch,
    ) -> Result<ChangeOutcome, Rejected> {
        let outcome = self.check_put(resource, &[])?;
        if let ChangeOutcome::Created(r) | ChangeOutcome::Updated(r) = &outcome {
            self.keep_version(&mut batch, r.key(), Some(r), stamp.as_ref())?;
            batch.put(r.clone());
        }
        self.store.write(batch)?;
        Ok(outcome)
    }

    /// Adds to `batch` the next version of `key` (`None`: deleted) to its history, and drops
    /// the versions that fall out of the kept window. Only [`VERSIONED`] kinds keep any.
    fn keep_version(
        &self,
        batch: &mut Batch,
        key: ResourceKey,
        resource: Option<&Resource>,
        stamp: Option<&Stamp>,
    ) -> Result<(), Rejected> {
        if self.history == 0 || !VERSIONED.contains(&key.kind) {
            return Ok(());
        }
        // A change that writes the resource twice counts both.
        let last = match batch.last_version(&key) {
            Some(v) => v,
            None => match self.store.newest_version(&key)? {
                // Written again as it is (init_resources at each start): no new version.
                Some(newest) if same_version(newest.resource.as_ref(), resource) => return Ok(()),
                Some(newest) => newest.version,
                None => 0,
            },
        };
        let version = last + 1;
        let keep = self.history as u64;
        if version > keep {
            batch.forget_versions(key.clone(), version - keep);
        }
        // A JS/TS module's component is built again from its source on a rollback: the
        // history keeps the source only (a component is megabytes).
        let kept = resource.cloned().map(|r| match r {
            Resource::Module(mut m) if m.module_type != crate::resources::ModuleType::Wasm => {
                m.component = None;
                Resource::Module(m)
            }
            other => other,
        });
        batch.put_version(Version {
            key,
            version,
            at: stamp.map(|s| s.at.clone()),
            by: stamp.map(|s| s.by.clone()),
            resource: kept,
        });
        Ok(())
    }

    /// Every put of `resources` checked as [`StateMachine::put`] checks one, then all written in
    /// one batch: all or nothing. Each is checked against the state before the batch.
    fn put_all(
        &self,
        resources: Vec<Resource>,
        stamp: Option<Stamp>,
        mut batch: Batch,
    ) -> Result<ChangeOutcome, Rejected> {
        let mut outcomes = Vec::with_capacity(resources.len());
        // A resource may refer to one written earlier in the same change (a route to the
        // module deployed with it).
        let mut earlier: Vec<Resource> = Vec::with_capacity(resources.len());
        for resource in resources {
            let outcome = self.check_put(resource, &earlier)?;
            if let ChangeOutcome::Created(r) | ChangeOutcome::Updated(r) = &outcome {
                earlier.push(r.clone());
                self.keep_version(&mut batch, r.key(), Some(r), stamp.as_ref())?;
                batch.put(r.clone());
            }
            outcomes.push(outcome);
        }
        self.store.write(batch)?;
        Ok(ChangeOutcome::All(outcomes))
    }

    /// The checks of a put, and the resource as it will be stored (Created or Updated);
    /// `earlier` are the resources written before it in the same change.
    fn check_put(
        &self,
        mut resource: Resource,
        earlier: &[Resource],
    ) -> Result<ChangeOutcome, Rejected> {
        validate::resource(&mut resource)?;
        let key = resource.key();
        if key.kind != Kind::Namespace {
            self.require(
                &ResourceKey::namespace(&key.namespace),
                format!("namespace {:?} does not exist", key.namespace),
                earlier,
            )?;
        }
        let existing = self.store.get(&key)?;
        match &mut resource {
            Resource::Route(route) => self.check_route_references(route, earlier)?,
            Resource::Document(doc) => {
                let coll_key = ResourceKey::new(Kind::Collection, &doc.namespace, &doc.collection);
                // The collection may come earlier in the same change.
                let pending = earlier.iter().rev().find(|r| r.key() == coll_key).cloned();
                let coll = match pending {
                    Some(r) => Some(r),
                    None => self.store.get(&coll_key)?,
                };
                let Some(Resource::Collection(coll)) = coll else {
                    return Err(Refusal::MissingReference(format!(
                        "collection {:?} does not exist in namespace {:?}",
                        doc.collection, doc.namespace
                    ))
                    .into());
                };
                validate::document_data(&coll.schema, &doc.data)?;
                if let Some(Resource::Document(old)) = &existing {
                    doc.created_at = old.created_at.clone();
                }
            }
            Resource::Secret(secret) => {
                let old = match &existing {
                    Some(Resource::Secret(old)) => Some(old),
                    _ => None,
                };
                if secret.data == REDACTED {
                    secret.data = old.map(|o| o.data.clone()).ok_or_else(|| {
                        Invalid::new("data", "is the redacted placeholder; send the secret value")
                    })?;
                }
                if let Some(old) = old {
                    secret.created_at = old.created_at.clone();
                }
            }
            Resource::Domain(domain) if domain.key.as_deref() == Some(REDACTED) => {
                let old_key = match &existing {
                    Some(Resource::Domain(old)) => old.key.clone(),
                    _ => None,
                };
                let key = old_key.ok_or_else(|| {
                    Invalid::new(
                        "key",
                        "is the redacted placeholder; send the PEM private key",
                    )
                })?;
                if let Some(cert) = &domain.cert {
                    validate::certified_key(cert.as_bytes(), key.as_bytes())?;
                }
                domain.key = Some(key);
            }
            _ => {}
        }
        Ok(match existing {
            Some(_) => ChangeOutcome::Updated(resource),
            None => ChangeOutcome::Created(resource),
        })
    }

    fn check_route_references(&self, route: &Route, earlier: &[Resource]) -> Result<(), Rejected> {
        if let Some(service) = &route.service {
            self.require(
                &ResourceKey::new(Kind::Service, &route.namespace, service),
                format!(
                    "service {service:?} does not exist in namespace {:?}",
                    route.namespace
                ),
                earlier,
            )?;
        }
        for module in &route.modules {
            self.require(
                &ResourceKey::new(Kind::Module, &route.namespace, module),
                format!(
                    "module {module:?} does not exist in namespace {:?}",
                    route.namespace
                ),
                earlier,
            )?;
        }
        Ok(())
    }

    fn require(
        &self,
        key: &ResourceKey,
        message: String,
        earlier: &[Resource],
    ) -> Result<(), Rejected> {
        if earlier.iter().any(|r| &r.key() == key) {
            return Ok(());
        }
        match self.store.get(key)? {
            Some(_) => Ok(()),
            None => Err(Refusal::MissingReference(message).into()),
        }
    }

    fn delete(
        &self,
        mut key: ResourceKey,
        stamp: Option<Stamp>,
        mut batch: Batch,
    ) -> Result<ChangeOutcome, Rejected> {
        validate::key(&mut key)?;
        if self.store.get(&key)?.is_none() {
            return Err(Refusal::NotFound(format!("{key} not found")).into());
        }
        if let Some(referrer) = self.referrer(&key)? {
            return Err(Refusal::Conflict(format!("{key} is still used by {referrer}")).into());
        }
        self.keep_version(&mut batch, key.clone(), None, stamp.as_ref())?;
        batch.delete(key.clone());
        self.store.write(batch)?;
        Ok(ChangeOutcome::Deleted(key))
    }

    fn delete_documents(
        &self,
        mut namespace: String,
        collection: String,
        mut batch: Batch,
    ) -> Result<ChangeOutcome, Rejected> {
        let mut key = ResourceKey::new(Kind::Collection, &namespace, &collection);
        validate::key(&mut key)?;
        namespace = key.namespace.clone();
        if self.store.get(&key)?.is_none() {
            return Err(Refusal::NotFound(format!("{key} not found")).into());
        }
        let keys: Vec<ResourceKey> = self
            .store
            .list(Kind::Document, &namespace, Some(&collection))?
            .iter()
            .map(Resource::key)
            .collect();
        for k in &keys {
            batch.delete(k.clone());
        }
        self.store.write(batch)?;
        Ok(ChangeOutcome::DeletedDocuments(keys))
    }

    /// The first resource that still refers to `key`, if any.
    fn referrer(&self, key: &ResourceKey) -> Result<Option<ResourceKey>, Rejected> {
        let ns = key.namespace.as_str();
        let found = match key.kind {
            Kind::Namespace => {
                let mut first = None;
                for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Namespace) {
                    if let Some(r) = self.store.first(kind, &key.name, None)? {
                        first = Some(r.key());
                        break;
                    }
                }
                first
            }
            Kind::Service => self.routes_where(ns, |r| r.service.as_deref() == Some(&key.name))?,
            Kind::Module => self.routes_where(ns, |r| r.modules.contains(&key.name))?,
            Kind::Collection => self
                .store
                .first(Kind::Document, ns, Some(&key.name))?
                .map(|r| r.key()),
            Kind::Route | Kind::Domain | Kind::Document | Kind::Secret => None,
        };
        Ok(found)
    }

    fn routes_where(
        &self,
        namespace: &str,
        uses: impl Fn(&Route) -> bool,
    ) -> Result<Option<ResourceKey>, Rejected> {
        Ok(self
            .store
            .list(Kind::Route, namespace, None)?
            .into_iter()
            .find(|r| matches!(r, Resource::Route(route) if uses(route)))
            .map(|r| r.key()))
    }
}

/// Whether `new` is what the kept version `kept` holds (a JS/TS module's component aside: the
/// history does not keep it).
fn same_version(kept: Option<&Resource>, new: Option<&Resource>) -> bool {
    match (kept, new) {
        (Some(Resource::Module(k)), Some(Resource::Module(n))) => {
            let mut n = n.clone();
            if n.module_type != crate::resources::ModuleType::Wasm {
                n.component = None;
            }
            *k == n
        }
        (k, n) => k == n,
    }
}

/// Tells `observe` what `outcome` changed.
fn tell(observe: &Observer, outcome: &ChangeOutcome) {
    match outcome {
        ChangeOutcome::Created(r) | ChangeOutcome::Updated(r) => observe(Applied::Put(r)),
        ChangeOutcome::Deleted(key) => observe(Applied::Deleted(key)),
        ChangeOutcome::DeletedDocuments(keys) => {
            keys.iter().for_each(|k| observe(Applied::Deleted(k)))
        }
        ChangeOutcome::All(outcomes) => outcomes.iter().for_each(|o| tell(observe, o)),
    }
}
