//! The node's seal state (DESIGN §3): a Core node starts **sealed**, holding no MasterKey; it becomes unsealed when
//! the MasterKey comes back (from M Shamir shares, or from an automatic seal), at which point the [`CoreOpener`]
//! opens the Crypto Core with it; sealing drops the Core and zeroizes every key it held.
//!
//! The KMIP listener asks [`Node::core`] on every request (one uncontended read lock) and answers "sealed" while
//! it is `None`; the operator API drives [`Node::init`], [`Node::submit_share`], [`Node::reset`] and [`Node::seal`].

use super::shamir::{self, CeremonyRequest, Manifest, Submitted, UnsealError, Unsealer};
use super::{is_initialised, mark_initialised, write_private, SealError};
use crate::Core;
use openkcm_crypto::SecretKey;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio::sync::{watch, Mutex};

/// File name of the ceremony manifest in the seal directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the recovery-share manifest (auto-unseal mode) in the seal directory.
pub const RECOVERY_MANIFEST_FILE: &str = "recovery-manifest.json";
const CLUSTER_ID_FILE: &str = "cluster-id";

/// Who the node is, as bound into a sealed MasterKey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealContext {
    /// Cluster id.
    pub cluster_id: String,
    /// Region.
    pub region: String,
}

/// An automatic seal: gives back the MasterKey without people (the dev `file` seal; KMS/HSM seal providers).
#[async_trait::async_trait]
pub trait AutoSeal: Send + Sync {
    /// The seal's name as shown in seal-status (`file`, `aws-kms` …).
    fn name(&self) -> String;
    /// Unseals the MasterKey, creating one on first use when `allow_create` (the cluster was never initialised
    /// and its storage holds no keys). Returns it and whether it was newly created.
    async fn unseal(
        &self,
        ctx: &SealContext,
        allow_create: bool,
    ) -> Result<(SecretKey, bool), SealError>;
}

#[async_trait::async_trait]
impl AutoSeal for super::FileSeal {
    fn name(&self) -> String {
        "file".into()
    }
    async fn unseal(
        &self,
        _ctx: &SealContext,
        allow_create: bool,
    ) -> Result<(SecretKey, bool), SealError> {
        if !allow_create && !self.dir().join(super::file::BLOB_FILE).exists() {
            return Err(SealError::Invalid(format!(
                "{} is missing although this cluster was initialised or its storage holds keys: restore the seal directory from a backup (a new MasterKey would not open them)",
                self.dir().join(super::file::BLOB_FILE).display()
            )));
        }
        self.init_or_unseal()
    }
}

/// How the node gets its MasterKey back.
#[derive(Clone)]
pub enum SealMode {
    /// Without people, through an [`AutoSeal`].
    Auto(Arc<dyn AutoSeal>),
    /// From M of N Shamir shares (DESIGN §3.2).
    Shamir,
}

/// Opens the Crypto Core once the MasterKey is back (storage, L1 provider and settings are the opener's).
#[async_trait::async_trait]
pub trait CoreOpener: Send + Sync {
    /// Opens the Core under `mk`. `first_start` is true until the Core storage of this cluster has been
    /// initialised once: only then may an empty store be given a new IVK.
    async fn open(&self, mk: &SecretKey, first_start: bool) -> Result<Arc<Core>, String>;

    /// Whether the Core storage already holds keys of a MasterKey (then no new MasterKey may ever be made).
    async fn storage_holds_keys(&self) -> bool {
        false
    }
}

/// `GET /v1/sys/seal-status`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SealStatus {
    /// Whether the node is sealed (no MasterKey, no key operations).
    pub sealed: bool,
    /// Whether the cluster has a MasterKey (a ceremony was held, or the automatic seal holds one).
    pub initialized: bool,
    /// `shamir`, or the automatic seal's name.
    pub mode: String,
    /// M (Shamir), else 0.
    pub threshold: usize,
    /// N (Shamir), else 0.
    pub shares: usize,
    /// Distinct shares submitted under the current nonce.
    pub progress: usize,
    /// The nonce every unseal submission must quote (Shamir while sealed and initialized), else null.
    pub nonce: Option<String>,
    /// Cluster id.
    pub cluster_id: String,
    /// Region.
    pub region: String,
    /// Why the node is still sealed when it should not be (a failed automatic unseal, a Core that would not open).
    pub reason: Option<String>,
}

/// A refusal of the operator API, with its class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The caller's request is wrong (HTTP 400).
    #[error("{0}")]
    Client(String),
    /// The request conflicts with the node's state (HTTP 409): already initialised, already unsealed …
    #[error("{0}")]
    Conflict(String),
    /// An unseal share was refused (HTTP 400).
    #[error("{0}")]
    Unseal(#[from] UnsealError),
    /// The node failed (HTTP 500).
    #[error("{0}")]
    Server(String),
    /// A service the node needs is unreachable for now (HTTP 503): the seal provider.
    #[error("{0}")]
    Unavailable(String),
}

/// The result of an unseal submission.
#[derive(Debug, Clone, Serialize)]
pub struct SubmitOutcome {
    /// Seal status after the submission.
    #[serde(flatten)]
    pub status: SealStatus,
    /// Whether the share had been submitted already (counted once).
    pub duplicate: bool,
}

struct State {
    /// Shamir mode: the ceremony manifest. Auto mode: the recovery-share manifest, if recovery shares exist.
    manifest: Option<Manifest>,
    /// Progress of the shares against `manifest` (unseal shares, or recovery shares).
    unsealer: Option<Unsealer>,
    reason: Option<String>,
    /// The MasterKey while unsealed (locked memory), for seal migration and recovery shares; `None` while sealed.
    mk: Option<SecretKey>,
    /// Whether the node was unsealed with recovery shares (its seal could not unseal it: migrate the seal).
    recovered: bool,
}

/// One Core node's root of trust and the Core it opened.
pub struct Node {
    dir: PathBuf,
    mode: RwLock<SealMode>,
    cluster_id: String,
    region: String,
    state: Mutex<State>,
    core: RwLock<Option<Arc<Core>>>,
    opener: Arc<dyn CoreOpener>,
    sealed: watch::Sender<bool>,
    on_seal: std::sync::Mutex<Vec<SealHook>>,
}

/// Work done when the node seals, before [`Node::seal`] returns (e.g. an in-process edge forgetting its keys).
pub type SealHook = Box<dyn Fn() + Send + Sync>;

fn load_or_create_cluster_id(dir: &Path) -> Result<String, SealError> {
    let path = dir.join(CLUSTER_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        Ok(_) => Err(SealError::Invalid(format!(
            "{} is empty; restore it from a backup",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = uuid::Uuid::new_v4().to_string();
            write_private(&path, id.as_bytes())?;
            Ok(id)
        }
        Err(e) => Err(SealError::Io {
            context: format!("cannot read {}", path.display()),
            source: e,
        }),
    }
}

impl Node {
    /// The node whose seal files live in `dir`, sealed. With a ceremony manifest in `dir`, the cluster id and
    /// region are the manifest's (and `region` must agree); otherwise they are `cluster-id` (created on first use)
    /// and `region`.
    pub fn new(
        dir: &Path,
        mode: SealMode,
        region: &str,
        opener: Arc<dyn CoreOpener>,
    ) -> Result<Self, SealError> {
        std::fs::create_dir_all(dir)
            .map_err(super::io(format!("cannot create {}", dir.display())))?;
        let read_manifest = |name: &str| -> Result<Option<Manifest>, SealError> {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => Manifest::parse_verified(&bytes)
                    .map(Some)
                    .map_err(|e| SealError::Invalid(format!("{}: {e}", path.display()))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(SealError::Io {
                    context: format!("cannot read {}", path.display()),
                    source: e,
                }),
            }
        };
        let shamir_manifest = read_manifest(MANIFEST_FILE)?;
        let blob = super::auto::ProviderSeal::read_blob(dir)?;
        let manifest = match &mode {
            SealMode::Shamir => {
                if let Some(b) = &blob {
                    return Err(SealError::Invalid(format!(
                        "the MasterKey of this cluster is sealed with the {:?} provider ({}): start the node with that seal",
                        b.provider,
                        dir.join(super::auto::BLOB_FILE).display()
                    )));
                }
                if shamir_manifest.is_none() && is_initialised(dir) {
                    return Err(SealError::Invalid(format!(
                        "{} is missing although this cluster was initialised: if it uses Shamir shares, restore it \
                         from the ceremony's manifest.json (for `openkcm dev`: <data-dir>/ceremony/manifest.json); \
                         if it uses another seal, start it with that seal",
                        dir.join(MANIFEST_FILE).display()
                    )));
                }
                shamir_manifest
            }
            SealMode::Auto(seal) => {
                if shamir_manifest.is_some() {
                    return Err(SealError::Invalid(format!(
                        "{} holds a Shamir ceremony manifest, but the node was started with the {} seal; start it with --seal shamir (or migrate the seal)",
                        dir.join(MANIFEST_FILE).display(),
                        seal.name()
                    )));
                }
                if let Some(b) = &blob {
                    if b.provider != seal.name() {
                        return Err(SealError::Invalid(format!(
                            "the MasterKey of this cluster is sealed with the {:?} provider, but the node was started with the {} seal: start it with --seal {}",
                            b.provider,
                            seal.name(),
                            b.provider
                        )));
                    }
                }
                read_manifest(RECOVERY_MANIFEST_FILE)?
            }
        };
        let cluster_id = match (&mode, &manifest) {
            (SealMode::Shamir, Some(m)) => {
                // The id file is written before the ceremony; a manifest of another cluster copied in is refused.
                let path = dir.join(CLUSTER_ID_FILE);
                if let Ok(id) = std::fs::read_to_string(&path) {
                    if id.trim() != m.body.cluster_id {
                        return Err(SealError::Invalid(format!(
                            "{} belongs to cluster {:?}, but this data directory is cluster {:?} ({}): restore this cluster's own manifest",
                            dir.join(MANIFEST_FILE).display(),
                            m.body.cluster_id,
                            id.trim(),
                            path.display()
                        )));
                    }
                }
                m.body.cluster_id.clone()
            }
            _ => {
                let path = dir.join(CLUSTER_ID_FILE);
                let hint = blob
                    .as_ref()
                    .map(|b| b.cluster_id.clone())
                    .or_else(|| manifest.as_ref().map(|m| m.body.cluster_id.clone()));
                // Seal files of a cluster without its id: a new id would orphan them.
                if !path.exists() && (is_initialised(dir) || hint.is_some()) {
                    return Err(SealError::Invalid(format!(
                        "{} is missing although this cluster was initialised (its seal files are here): restore it from a backup{}",
                        path.display(),
                        hint.map(|id| format!(" (the sealed MasterKey names cluster {id:?})"))
                            .unwrap_or_default()
                    )));
                }
                load_or_create_cluster_id(dir)?
            }
        };
        if let Some(m) = &manifest {
            if m.body.cluster_id != cluster_id {
                return Err(SealError::Invalid(format!(
                    "the share manifest is for cluster {:?}, this node is cluster {cluster_id:?}",
                    m.body.cluster_id
                )));
            }
            if m.body.region != region {
                return Err(SealError::Invalid(format!(
                    "the share manifest is for region {:?}, this node is configured for region {region:?}",
                    m.body.region
                )));
            }
        }
        let unsealer = manifest.clone().map(Unsealer::new);
        let (sealed, _) = watch::channel(true);
        Ok(Self {
            dir: dir.to_path_buf(),
            mode: RwLock::new(mode),
            cluster_id,
            region: region.to_owned(),
            state: Mutex::new(State {
                manifest,
                unsealer,
                reason: None,
                mk: None,
                recovered: false,
            }),
            core: RwLock::new(None),
            opener,
            sealed,
            on_seal: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The Core while unsealed; `None` while sealed.
    pub fn core(&self) -> Option<Arc<Core>> {
        self.core.read().ok().and_then(|c| c.clone())
    }

    /// Whether the node is sealed.
    pub fn is_sealed(&self) -> bool {
        self.core().is_none()
    }

    /// Notifies every seal (`true`) and unseal (`false`).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.sealed.subscribe()
    }

    /// Runs `hook` on every seal, before the seal call returns.
    pub fn on_seal(&self, hook: SealHook) {
        if let Ok(mut hooks) = self.on_seal.lock() {
            hooks.push(hook);
        }
    }

    /// The directory of the seal files.
    pub fn seal_dir(&self) -> &Path {
        &self.dir
    }

    /// Cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    fn mode(&self) -> SealMode {
        match self.mode.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn mode_name(&self) -> String {
        match &self.mode() {
            SealMode::Auto(a) => a.name(),
            SealMode::Shamir => "shamir".into(),
        }
    }

    fn status_of(&self, state: &State) -> SealStatus {
        let sealed = self.is_sealed();
        let (threshold, shares) = state
            .manifest
            .as_ref()
            .map(|m| (m.body.threshold, m.body.shares))
            .unwrap_or((0, 0));
        let initialized = match &self.mode() {
            SealMode::Shamir => state.manifest.is_some(),
            SealMode::Auto(_) => !sealed || is_initialised(&self.dir),
        };
        SealStatus {
            sealed,
            initialized,
            mode: self.mode_name(),
            threshold,
            shares,
            progress: state.unsealer.as_ref().map_or(0, Unsealer::progress),
            nonce: state
                .unsealer
                .as_ref()
                .filter(|_| sealed)
                .map(|u| u.nonce().to_owned()),
            cluster_id: self.cluster_id.clone(),
            region: self.region.clone(),
            reason: if sealed {
                state.reason.clone()
            } else if state.recovered {
                Some("unsealed with recovery shares: if the seal cannot give back the MasterKey at the next start (its key is lost or refused), migrate the seal now (openkcm operator migrate-seal)".into())
            } else {
                None
            },
        }
    }

    /// The seal status.
    pub async fn status(&self) -> SealStatus {
        let state = self.state.lock().await;
        self.status_of(&state)
    }

    /// The ceremony manifest (Shamir mode, once initialised).
    pub async fn manifest(&self) -> Option<Manifest> {
        self.state.lock().await.manifest.clone()
    }

    /// Opens the Core under `mk` and marks the node unsealed. On failure the node stays sealed with the reason.
    async fn open_core(&self, state: &mut State, mk: SecretKey) -> Result<(), NodeError> {
        let first_start = !is_initialised(&self.dir);
        match self.opener.open(&mk, first_start).await {
            Ok(core) => {
                state.mk = Some(mk);
                if let Err(e) = mark_initialised(&self.dir) {
                    tracing::warn!(error = %e, "cannot record the initialised cluster");
                }
                if let Ok(mut slot) = self.core.write() {
                    *slot = Some(core);
                }
                state.reason = None;
                let _ = self.sealed.send(false);
                tracing::info!(cluster_id = %self.cluster_id, mode = %self.mode_name(), "unsealed: the Crypto Core is serving keys");
                Ok(())
            }
            Err(e) => {
                let reason = format!(
                    "the MasterKey was obtained, but the Crypto Core could not be opened with it: {e} (check that \
                     the seal files and the Core storage belong to the same cluster)"
                );
                tracing::error!(reason = %reason, "the node stays sealed");
                state.reason = Some(reason.clone());
                Err(NodeError::Server(reason))
            }
        }
    }

    /// Automatic modes: unseal through the seal (at start, and on `POST /v1/sys/unseal` while sealed).
    pub async fn auto_unseal(&self) -> Result<SealStatus, NodeError> {
        if !self.is_sealed() {
            return Err(NodeError::Conflict("the node is already unsealed".into()));
        }
        let SealMode::Auto(seal) = &self.mode() else {
            return Err(NodeError::Client(
                "this node uses Shamir shares: submit a share with its nonce".into(),
            ));
        };
        let mut state = self.state.lock().await;
        if !self.is_sealed() {
            return Ok(self.status_of(&state));
        }
        let ctx = SealContext {
            cluster_id: self.cluster_id.clone(),
            region: self.region.clone(),
        };
        let allow_create = !is_initialised(&self.dir) && !self.opener.storage_holds_keys().await;
        match seal.unseal(&ctx, allow_create).await {
            Ok((mk, created)) => {
                if created {
                    tracing::info!(seal = %seal.name(), "initialised a new cluster MasterKey");
                }
                self.open_core(&mut state, mk).await?;
                Ok(self.status_of(&state))
            }
            Err(e) => {
                let reason = format!(
                    "the {} seal could not give back the MasterKey: {e}",
                    seal.name()
                );
                let reason = match &e {
                    SealError::Provider(_, p) if p.is_revocation() && state.manifest.is_some() => format!(
                        "{reason}; if the seal's key is lost for good, rebuild the MasterKey from the recovery shares (openkcm operator recover), then migrate the seal"
                    ),
                    _ => reason,
                };
                state.reason = Some(reason.clone());
                // The seal provider is outside this node: its outages and refusals (a key its owner may re-enable)
                // are 503, and can pass. A request the provider rejects, a blob that does not authenticate, or seal
                // files of another cluster cannot: those are the node's to fix.
                Err(
                    if matches!(&e, SealError::Provider(_, p) if p.is_retryable() || p.is_revocation())
                    {
                        NodeError::Unavailable(reason)
                    } else {
                        NodeError::Server(reason)
                    },
                )
            }
        }
    }

    /// Shamir mode: holds the key ceremony (DESIGN §3.2) for an uninitialised node, stores the manifest, and
    /// returns it with the encrypted share files. The node stays sealed: M holders unseal it.
    pub async fn init(
        &self,
        shares: usize,
        threshold: usize,
        recipients: Vec<String>,
    ) -> Result<(Manifest, Vec<(String, String)>), NodeError> {
        if !matches!(self.mode(), SealMode::Shamir) {
            return self.init_recovery(shares, threshold, recipients).await;
        }
        let mut state = self.state.lock().await;
        if state.manifest.is_some() {
            return Err(NodeError::Conflict(
                "the cluster is already initialised: its shares exist (see the ceremony manifest)"
                    .into(),
            ));
        }
        shamir::check_parameters(shares, threshold, &recipients)
            .map_err(|e| NodeError::Client(e.to_string()))?;
        let request = CeremonyRequest {
            cluster_id: self.cluster_id.clone(),
            region: self.region.clone(),
            shares,
            threshold,
            recipients,
            purpose: "shamir".into(),
        };
        // ssh-rsa encryption and key generation take milliseconds each: off the async threads.
        let output = tokio::task::spawn_blocking(move || shamir::run_ceremony(&request))
            .await
            .map_err(|e| NodeError::Server(format!("the ceremony task failed: {e}")))?
            .map_err(|e| match e {
                SealError::Invalid(m) => NodeError::Client(m),
                other => NodeError::Server(other.to_string()),
            })?;
        let manifest_json = serde_json::to_vec_pretty(&output.manifest)
            .map_err(|e| NodeError::Server(format!("cannot encode the manifest: {e}")))?;
        write_private(&self.dir.join(MANIFEST_FILE), &manifest_json)
            .map_err(|e| NodeError::Server(e.to_string()))?;
        drop(output.mk);
        state.unsealer = Some(Unsealer::new(output.manifest.clone()));
        state.manifest = Some(output.manifest.clone());
        tracing::info!(
            cluster_id = %self.cluster_id,
            threshold,
            shares,
            "key ceremony complete: the MasterKey exists only as shares now; the node stays sealed until {threshold} holders unseal it"
        );
        Ok((output.manifest, output.share_files))
    }

    /// Shamir mode: submits one share (the decrypted share document) under `nonce`.
    pub async fn submit_share(&self, nonce: &str, share: &str) -> Result<SubmitOutcome, NodeError> {
        if !matches!(self.mode(), SealMode::Shamir) {
            return Err(NodeError::Client(format!(
                "this node uses the {} seal: POST /v1/sys/unseal with an empty body unseals it; if the seal cannot, submit recovery shares to /v1/sys/recover (openkcm operator recover)",
                self.mode_name()
            )));
        }
        self.submit(nonce, share, false).await
    }

    /// Auto mode: submits one recovery share. The M-th rebuilds the MasterKey without the seal provider and
    /// unseals the node; the seal must then be migrated ([`Node::migrate_seal`]).
    pub async fn recover(&self, nonce: &str, share: &str) -> Result<SubmitOutcome, NodeError> {
        if matches!(self.mode(), SealMode::Shamir) {
            return Err(NodeError::Client(
                "this node uses Shamir shares: submit them to /v1/sys/unseal (openkcm operator unseal)".into(),
            ));
        }
        self.submit(nonce, share, true).await
    }

    async fn submit(
        &self,
        nonce: &str,
        share: &str,
        recovery: bool,
    ) -> Result<SubmitOutcome, NodeError> {
        let mut state = self.state.lock().await;
        if !self.is_sealed() {
            return Err(NodeError::Conflict("the node is already unsealed".into()));
        }
        let Some(unsealer) = state.unsealer.as_mut() else {
            return Err(NodeError::Conflict(if recovery {
                "this cluster has no recovery shares (they are made with `--recovery-shares` at first start, or `openkcm operator init --mode recovery` while unsealed)".into()
            } else {
                "the cluster is not initialised yet: hold the key ceremony first (openkcm operator init)".into()
            }));
        };
        let what = if recovery {
            "recovery share"
        } else {
            "unseal share"
        };
        let result = unsealer.submit(nonce, share);
        let progress = unsealer.progress();
        let threshold = unsealer.manifest().body.threshold;
        match result {
            Ok(Submitted::Progress { duplicate, .. }) => {
                tracing::info!(progress, threshold, duplicate, "{what} accepted");
                Ok(SubmitOutcome {
                    status: self.status_of(&state),
                    duplicate,
                })
            }
            Ok(Submitted::Complete(mk)) => {
                self.open_core(&mut state, mk).await?;
                if recovery {
                    state.recovered = true;
                    tracing::warn!("unsealed with recovery shares: the seal provider could not give back the MasterKey; migrate the seal (openkcm operator migrate-seal) before the next restart");
                }
                Ok(SubmitOutcome {
                    status: self.status_of(&state),
                    duplicate: false,
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, progress, threshold, "{what} refused");
                Err(NodeError::Unseal(e))
            }
        }
    }

    /// Auto mode: makes recovery shares of the MasterKey in memory (the node must be unsealed, and have none yet).
    async fn init_recovery(
        &self,
        shares: usize,
        threshold: usize,
        recipients: Vec<String>,
    ) -> Result<(Manifest, Vec<(String, String)>), NodeError> {
        let mut state = self.state.lock().await;
        if state.manifest.is_some() {
            return Err(NodeError::Conflict(
                "this cluster already has recovery shares (see seal/recovery-manifest.json)".into(),
            ));
        }
        let Some(mk) = state.mk.as_ref() else {
            return Err(NodeError::Conflict(
                "recovery shares are made from the MasterKey in memory: unseal the node first"
                    .into(),
            ));
        };
        shamir::check_parameters(shares, threshold, &recipients)
            .map_err(|e| NodeError::Client(e.to_string()))?;
        let mk = mk
            .try_clone()
            .map_err(|e| NodeError::Server(e.to_string()))?;
        let request = CeremonyRequest {
            cluster_id: self.cluster_id.clone(),
            region: self.region.clone(),
            shares,
            threshold,
            recipients,
            purpose: "recovery".into(),
        };
        let output = tokio::task::spawn_blocking(move || shamir::run_ceremony_for(&request, mk))
            .await
            .map_err(|e| NodeError::Server(format!("the ceremony task failed: {e}")))?
            .map_err(|e| match e {
                SealError::Invalid(m) => NodeError::Client(m),
                other => NodeError::Server(other.to_string()),
            })?;
        let json = serde_json::to_vec_pretty(&output.manifest)
            .map_err(|e| NodeError::Server(format!("cannot encode the manifest: {e}")))?;
        write_private(&self.dir.join(RECOVERY_MANIFEST_FILE), &json)
            .map_err(|e| NodeError::Server(e.to_string()))?;
        state.unsealer = Some(Unsealer::new(output.manifest.clone()));
        state.manifest = Some(output.manifest.clone());
        tracing::info!(threshold, shares, "recovery shares made: {threshold} of them rebuild the MasterKey without the seal provider");
        Ok((output.manifest, output.share_files))
    }

    /// Re-seals the MasterKey in memory under `seal` (a new provider key), replacing the previous seal: the new
    /// blob is written first, then the previous seal's files are retired. The node stays unsealed and from now on
    /// unseals through `seal`; restart it with that seal's settings.
    pub async fn migrate_seal(
        &self,
        seal: Arc<super::ProviderSeal>,
    ) -> Result<SealStatus, NodeError> {
        let mut state = self.state.lock().await;
        let Some(mk) = state.mk.as_ref() else {
            return Err(NodeError::Conflict(
                "the seal is migrated from the MasterKey in memory: unseal the node first (with recovery shares if the old seal is gone)".into(),
            ));
        };
        let ctx = SealContext {
            cluster_id: self.cluster_id.clone(),
            region: self.region.clone(),
        };
        let blob = seal.seal(mk, &ctx).await.map_err(|e| {
            let m = format!("the new seal could not seal the MasterKey: {e}");
            if e.is_retryable() {
                NodeError::Unavailable(m)
            } else {
                NodeError::Client(m)
            }
        })?;
        // Check the new blob opens before anything old is retired.
        let back = super::auto::unseal_master_key(&blob, seal.provider(), &ctx)
            .await
            .map_err(|e| {
                let m = format!("the new seal's blob does not open again: {e}");
                // The provider failing on the second call is the provider's state, not a fault of this node.
                if matches!(e, SealError::Provider(..)) {
                    NodeError::Unavailable(m)
                } else {
                    NodeError::Server(m)
                }
            })?;
        if back.expose() != mk.expose() {
            return Err(NodeError::Server(
                "the new seal's blob does not give back the same MasterKey".into(),
            ));
        }
        let previous = self.mode_name();
        super::ProviderSeal::write_blob(&self.dir, &blob)
            .map_err(|e| NodeError::Server(e.to_string()))?;
        let stamp = crate::now();
        for old in [
            MANIFEST_FILE,
            super::file::SEAL_KEY_FILE,
            super::file::BLOB_FILE,
        ] {
            let path = self.dir.join(old);
            if path.exists() {
                let retired = self.dir.join(format!("{old}.replaced-{stamp}"));
                if old == super::file::SEAL_KEY_FILE {
                    // The old seal key would still open the old sealed MasterKey: destroy it, do not keep it.
                    let _ = std::fs::remove_file(&path);
                } else {
                    std::fs::rename(&path, &retired).map_err(|e| {
                        NodeError::Server(format!("cannot retire {}: {e}", path.display()))
                    })?;
                }
            }
        }
        if matches!(self.mode(), SealMode::Shamir) {
            state.manifest = None;
            state.unsealer = None;
        }
        let recovery_path = self.dir.join(RECOVERY_MANIFEST_FILE);
        if state.manifest.is_none() {
            if let Ok(bytes) = std::fs::read(&recovery_path) {
                if let Ok(m) = Manifest::parse_verified(&bytes) {
                    state.unsealer = Some(Unsealer::new(m.clone()));
                    state.manifest = Some(m);
                }
            }
        }
        if let Ok(mut mode) = self.mode.write() {
            *mode = SealMode::Auto(seal.clone());
        }
        state.recovered = false;
        tracing::warn!(from = %previous, to = %seal.name(), "seal migrated: the MasterKey is now sealed by the new provider; restart the node with that seal's settings");
        Ok(self.status_of(&state))
    }

    /// Clears the share progress and issues a new nonce: the unseal progress of a Shamir node (`recovery` false),
    /// or the recovery progress of an auto-unseal node (`recovery` true). The other combination is refused, so
    /// that a reset meant for one never clears shares others submitted for the other.
    pub async fn reset(&self, recovery: bool) -> Result<SealStatus, NodeError> {
        match (self.mode(), recovery) {
            (SealMode::Shamir, true) => {
                return Err(NodeError::Conflict(
                    "this node unseals with Shamir shares and has no recovery shares: reset the unseal progress with `openkcm operator unseal --reset`".into(),
                ))
            }
            (SealMode::Auto(_), false) => {
                return Err(NodeError::Conflict(
                    "this node unseals through its seal, not with unseal shares: reset the recovery progress with `openkcm operator recover --reset`".into(),
                ))
            }
            _ => {}
        }
        let mut state = self.state.lock().await;
        if let Some(u) = state.unsealer.as_mut() {
            u.reset();
            tracing::info!("unseal progress reset; a new nonce was issued");
        }
        Ok(self.status_of(&state))
    }

    /// Seals the node: drops the Core and zeroizes every key it held; a new unseal nonce is issued.
    pub async fn seal(&self) -> SealStatus {
        let mut state = self.state.lock().await;
        let core = self.core.write().ok().and_then(|mut slot| slot.take());
        if let Some(core) = core {
            core.evict_all();
            drop(core);
            tracing::warn!(cluster_id = %self.cluster_id, "sealed: key operations are refused until the node is unsealed");
        }
        if let Some(u) = state.unsealer.as_mut() {
            u.reset();
        }
        state.mk = None;
        state.recovered = false;
        if let Ok(hooks) = self.on_seal.lock() {
            hooks.iter().for_each(|hook| hook());
        }
        let _ = self.sealed.send(true);
        self.status_of(&state)
    }
}
