//! Auto-unseal (seal wrapping, DESIGN §3.3): the MasterKey sealed into a blob through an external key provider.
//!
//! A fresh data key encrypts MK with AES-256-GCM, the authenticated data being cluster id ‖ region ‖ seal format
//! version; the data key is encrypted by the provider's key with `{cluster_id, region}` as its encryption context.
//! The blob (`seal/master-key.provider-sealed.json`, no secret in clear) records the provider, the key reference,
//! the provider's key version and the time. Restoring it into a cluster with another id or region fails before the
//! provider is asked, and would fail at the provider and at AES-GCM anyway.

use super::node::{AutoSeal, SealContext};
use super::{write_private, SealError};
use openkcm_crypto::{aes, SecretKey};
use openkcm_providers::{KeyProvider, KeyRef, ProviderError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File name of the provider-sealed MasterKey in the seal directory.
pub const BLOB_FILE: &str = "master-key.provider-sealed.json";
/// Format tag of the blob.
pub const BLOB_FORMAT: &str = "openkcm-sealed-master-key";
/// Seal format version, part of the authenticated data.
pub const SEAL_FORMAT_VERSION: u32 = 1;

/// The sealed MasterKey as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealedBlob {
    /// [`BLOB_FORMAT`].
    pub format: String,
    /// [`SEAL_FORMAT_VERSION`].
    pub version: u32,
    /// Cluster id (bound into the AAD and the provider context).
    pub cluster_id: String,
    /// Region (likewise).
    pub region: String,
    /// Provider driver name.
    pub provider: String,
    /// The provider's key identifier.
    pub key_id: String,
    /// The provider's region, where it has one.
    pub key_region: Option<String>,
    /// The provider's key version when the blob was sealed, where it reports one.
    pub provider_key_version: Option<String>,
    /// When the blob was sealed (RFC 3339).
    pub sealed_at: String,
    /// The data key as encrypted by the provider (hex).
    pub wrapped_data_key: String,
    /// AES-GCM nonce (hex).
    pub nonce: String,
    /// AES-256-GCM(data key, MK) ciphertext and tag (hex).
    pub ciphertext: String,
}

/// The authenticated data of the MK encryption: cluster id ‖ 0 ‖ region ‖ 0 ‖ version (big endian).
fn aad(cluster_id: &str, region: &str, version: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(cluster_id.as_bytes());
    out.push(0);
    out.extend_from_slice(region.as_bytes());
    out.push(0);
    out.extend_from_slice(&version.to_be_bytes());
    out
}

fn context(ctx: &SealContext) -> Vec<(String, String)> {
    vec![
        ("cluster_id".to_owned(), ctx.cluster_id.clone()),
        ("region".to_owned(), ctx.region.clone()),
    ]
}

fn provider_error(what: &str, e: ProviderError) -> SealError {
    SealError::Provider(format!("{what}: {e}"), e)
}

/// Seals a new MasterKey under `key` of `provider`. Returns the blob.
pub async fn seal_master_key(
    mk: &SecretKey,
    provider: &dyn KeyProvider,
    key: &KeyRef,
    ctx: &SealContext,
) -> Result<SealedBlob, SealError> {
    let data_key = SecretKey::generate()?;
    let nonce = aes::random_bytes::<12>()?;
    let (ct, tag) = aes::gcm_seal(
        &data_key,
        &nonce,
        &aad(&ctx.cluster_id, &ctx.region, SEAL_FORMAT_VERSION),
        mk.expose(),
    )?;
    let wrapped = provider
        .encrypt(key, data_key.expose(), &context(ctx))
        .await
        .map_err(|e| provider_error("the seal provider could not encrypt the data key", e))?;
    let version = provider.describe(key).await.ok().and_then(|d| d.version);
    let mut ciphertext = ct;
    ciphertext.extend_from_slice(&tag);
    Ok(SealedBlob {
        format: BLOB_FORMAT.into(),
        version: SEAL_FORMAT_VERSION,
        cluster_id: ctx.cluster_id.clone(),
        region: ctx.region.clone(),
        provider: provider.name().to_owned(),
        key_id: key.key_id.clone(),
        key_region: key.region.clone(),
        provider_key_version: version,
        sealed_at: crate::rfc3339_now(),
        wrapped_data_key: hex::encode(wrapped),
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(ciphertext),
    })
}

/// Opens a blob through `provider`. The blob must belong to this cluster and region.
pub async fn unseal_master_key(
    blob: &SealedBlob,
    provider: &dyn KeyProvider,
    ctx: &SealContext,
) -> Result<SecretKey, SealError> {
    let bad = |what: &str| SealError::Invalid(format!("the sealed MasterKey {what}"));
    if blob.format != BLOB_FORMAT || blob.version != SEAL_FORMAT_VERSION {
        return Err(bad(&format!(
            "has format {:?} version {}, this node reads {BLOB_FORMAT:?} version {SEAL_FORMAT_VERSION}",
            blob.format, blob.version
        )));
    }
    if blob.cluster_id != ctx.cluster_id || blob.region != ctx.region {
        return Err(SealError::Invalid(format!(
            "the sealed MasterKey belongs to cluster {:?} in region {:?}, this node is cluster {:?} in region {:?}: a blob cannot be restored into another cluster or region",
            blob.cluster_id, blob.region, ctx.cluster_id, ctx.region
        )));
    }
    if blob.provider != provider.name() {
        return Err(SealError::Invalid(format!(
            "the MasterKey was sealed with the {:?} provider, this node is configured for {:?}; migrate the seal instead",
            blob.provider,
            provider.name()
        )));
    }
    let wrapped =
        hex::decode(&blob.wrapped_data_key).map_err(|_| bad("has a malformed wrapped data key"))?;
    let nonce = hex::decode(&blob.nonce).map_err(|_| bad("has a malformed nonce"))?;
    let ct = hex::decode(&blob.ciphertext).map_err(|_| bad("has a malformed ciphertext"))?;
    let split = ct
        .len()
        .checked_sub(16)
        .ok_or_else(|| bad("ciphertext is truncated"))?;
    let (ct, tag) = ct.split_at(split);
    let key = KeyRef {
        provider: blob.provider.clone(),
        key_id: blob.key_id.clone(),
        region: blob.key_region.clone(),
    };
    let data_key = provider
        .decrypt(&key, &wrapped, &context(ctx))
        .await
        .map_err(|e| provider_error("the seal provider could not decrypt the data key", e))?;
    let data_key = SecretKey::from_slice(data_key.expose())
        .map_err(|_| bad("data key returned by the provider has the wrong length"))?;
    let mk = aes::gcm_open(
        &data_key,
        &nonce,
        &aad(&ctx.cluster_id, &ctx.region, blob.version),
        ct,
        tag,
    )
    .map_err(|_| {
        bad("does not authenticate: it was altered, or sealed for another cluster or region")
    })?;
    Ok(SecretKey::from_slice(mk.expose())?)
}

/// An automatic seal through an external key provider.
pub struct ProviderSeal {
    provider: Arc<dyn KeyProvider>,
    key: KeyRef,
    dir: PathBuf,
}

impl ProviderSeal {
    /// The seal through `key` of `provider`, its blob in `dir`.
    pub fn new(provider: Arc<dyn KeyProvider>, key: KeyRef, dir: &Path) -> Self {
        Self {
            provider,
            key,
            dir: dir.to_path_buf(),
        }
    }

    /// The provider.
    pub fn provider(&self) -> &dyn KeyProvider {
        self.provider.as_ref()
    }

    /// Seals `mk` under this seal's key (does not write the blob).
    pub async fn seal(&self, mk: &SecretKey, ctx: &SealContext) -> Result<SealedBlob, SealError> {
        seal_master_key(mk, self.provider.as_ref(), &self.key, ctx).await
    }

    /// Reads the blob, if any.
    pub fn read_blob(dir: &Path) -> Result<Option<SealedBlob>, SealError> {
        let path = dir.join(BLOB_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                SealError::Invalid(format!("{} is not a sealed MasterKey: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SealError::Io {
                context: format!("cannot read {}", path.display()),
                source: e,
            }),
        }
    }

    /// Writes the blob (atomically).
    pub fn write_blob(dir: &Path, blob: &SealedBlob) -> Result<(), SealError> {
        let json = serde_json::to_vec_pretty(blob)
            .map_err(|e| SealError::Invalid(format!("cannot encode the sealed MasterKey: {e}")))?;
        write_private(&dir.join(BLOB_FILE), &json)
    }
}

#[async_trait::async_trait]
impl AutoSeal for ProviderSeal {
    fn name(&self) -> String {
        self.provider.name().to_owned()
    }

    async fn unseal(
        &self,
        ctx: &SealContext,
        allow_create: bool,
    ) -> Result<(SecretKey, bool), SealError> {
        match Self::read_blob(&self.dir)? {
            Some(blob) => {
                if blob.key_id != self.key.key_id {
                    tracing::warn!(
                        configured = %self.key.key_id,
                        sealed_with = %blob.key_id,
                        "the seal key given differs from the key the MasterKey is sealed with; the latter is used (migrate-seal changes keys)"
                    );
                }
                Ok((unseal_master_key(&blob, self.provider.as_ref(), ctx).await?, false))
            }
            None if !allow_create => Err(SealError::Invalid(format!(
                "{} is missing, but this cluster was initialised or its Core storage holds keys: restore it from a backup, or rebuild the MasterKey from the recovery shares (openkcm operator recover) and migrate the seal; a new MasterKey would open nothing",
                self.dir.join(BLOB_FILE).display()
            ))),
            None => {
                let mk = SecretKey::generate()?;
                let blob = seal_master_key(&mk, self.provider.as_ref(), &self.key, ctx).await?;
                Self::write_blob(&self.dir, &blob)?;
                Ok((mk, true))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use openkcm_providers::local::LocalProvider;

    fn ctx(cluster: &str, region: &str) -> SealContext {
        SealContext {
            cluster_id: cluster.into(),
            region: region.into(),
        }
    }

    #[tokio::test]
    async fn sealed_blob_round_trips_and_binds_cluster_and_region() {
        let dir = tempfile::tempdir().unwrap();
        let provider = LocalProvider::new(dir.path().join("kms"));
        let key = provider.create("seal").await.unwrap();
        let mk = SecretKey::generate().unwrap();
        let blob = seal_master_key(&mk, &provider, &key, &ctx("c1", "eu"))
            .await
            .unwrap();
        assert_eq!(blob.provider, "local");
        assert!(!serde_json::to_string(&blob)
            .unwrap()
            .contains(&hex::encode(mk.expose())));
        let back = unseal_master_key(&blob, &provider, &ctx("c1", "eu"))
            .await
            .unwrap();
        assert_eq!(back.expose(), mk.expose());

        // Another cluster or region: refused by name …
        for other in [ctx("c2", "eu"), ctx("c1", "us")] {
            let e = unseal_master_key(&blob, &provider, &other)
                .await
                .unwrap_err();
            assert!(e.to_string().contains("another cluster or region"), "{e}");
        }
        // … and by cryptography, if the names in the blob are edited to match.
        let mut moved = blob.clone();
        moved.cluster_id = "c2".into();
        let e = unseal_master_key(&moved, &provider, &ctx("c2", "eu"))
            .await
            .unwrap_err();
        assert!(matches!(e, SealError::Provider(..)), "{e}");
        // An altered ciphertext never yields a key.
        let mut altered = blob.clone();
        let mut ct = hex::decode(&altered.ciphertext).unwrap();
        ct[0] ^= 1;
        altered.ciphertext = hex::encode(ct);
        let e = unseal_master_key(&altered, &provider, &ctx("c1", "eu"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("does not authenticate"), "{e}");
    }

    #[tokio::test]
    async fn provider_seal_creates_once_then_reopens_and_refuses_a_lost_blob() {
        let dir = tempfile::tempdir().unwrap();
        let provider = Arc::new(LocalProvider::new(dir.path().join("kms")));
        let key = provider.create("seal").await.unwrap();
        let seal = ProviderSeal::new(provider.clone(), key, dir.path());
        let c = ctx("c1", "eu");
        let (mk, created) = seal.unseal(&c, true).await.unwrap();
        assert!(created);
        let (again, created) = seal.unseal(&c, true).await.unwrap();
        assert!(!created);
        assert_eq!(again.expose(), mk.expose());
        super::super::mark_initialised(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join(BLOB_FILE)).unwrap();
        let e = seal.unseal(&c, false).await.unwrap_err();
        assert!(e.to_string().contains("is missing, but"), "{e}");
    }
}
