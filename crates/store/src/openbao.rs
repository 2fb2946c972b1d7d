//! The OpenBao / Vault backend (DESIGN §5.2): each record is a secret of a KV version 2 engine at
//! `<mount>/data/openkcm/<tenant>/<kind>/<id>/<version>`, holding the metadata (JSON text) and the wrapped key
//! (base64). KV's own version number is the record's revision, and KV check-and-set gives the atomic writes the
//! trait needs: `cas = 0` writes only a new secret ([`KeyStore::put_if_absent`]), `cas = N` only over version N
//! ([`KeyStore::compare_and_set`]). Delete removes the secret with all its versions.
//!
//! Path segments are the hex of the names' UTF-8 bytes: any tenant, kind or id is a valid path, nothing in a name
//! can reach another path, and listing in hex order is listing in bytewise order. The token is sent as
//! `X-Vault-Token` and never appears in an error. Listing a tenant's records costs one request per record: this
//! backend suits deployments that already run OpenBao, not the largest key counts.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use openkcm_crypto::WrappedKey;
use openkcm_net::https::{call, HttpTarget};
use zeroize::Zeroizing;

use crate::{record_name, validate, KeyStore, Record, StoreError};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// The top folder of OpenKCM's secrets in the KV engine.
const ROOT: &str = "openkcm";

/// A [`KeyStore`] in an OpenBao (or Vault) KV version 2 engine.
pub struct OpenBaoStore {
    target: HttpTarget,
    token: Zeroizing<String>,
    mount: String,
    timeout: Duration,
}

impl std::fmt::Debug for OpenBaoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenBaoStore")
            .field("target", &self.target)
            .field("mount", &self.mount)
            .field("token", &"[redacted]")
            .finish()
    }
}

fn seg(name: &str) -> String {
    hex::encode(name.as_bytes())
}

fn unseg(hexed: &str) -> Option<String> {
    String::from_utf8(hex::decode(hexed).ok()?).ok()
}

impl OpenBaoStore {
    /// The KV v2 engine mounted at `mount` (for example `secret`) of the server at `target`, with `token`. Checks
    /// that the engine answers.
    pub async fn open(
        target: HttpTarget,
        token: Zeroizing<String>,
        mount: &str,
    ) -> Result<OpenBaoStore, StoreError> {
        let mount = mount.trim_matches('/').to_owned();
        if mount.is_empty()
            || !mount
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
            || mount
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(StoreError::Invalid(format!(
                "{mount:?} is not a KV mount path"
            )));
        }
        let store = OpenBaoStore {
            target,
            token,
            mount,
            timeout: Duration::from_secs(10),
        };
        // The engine's configuration: fails clearly when the mount is not a KV v2 engine or the token is refused.
        store
            .request("GET", &format!("/v1/{}/config", store.mount), Vec::new())
            .await?
            .ok_or_else(|| {
                StoreError::Backend(format!(
                    "no KV version 2 engine is mounted at {:?} on {:?}",
                    store.mount, store.target
                ))
            })?;
        Ok(store)
    }

    fn data_path(&self, tenant: &str, kind: &str, id: &str, version: u32) -> String {
        format!(
            "/v1/{}/data/{ROOT}/{}/{}/{}/{version}",
            self.mount,
            seg(tenant),
            seg(kind),
            seg(id)
        )
    }

    fn metadata_path(&self, rest: &str) -> String {
        format!("/v1/{}/metadata/{ROOT}/{rest}", self.mount)
    }

    /// One API call: the JSON body of a 2xx answer, `None` for 404, an error otherwise (with the server's own
    /// error sentences, never the token).
    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let (status, bytes) = call(
            &self.target,
            method,
            path,
            &[("X-Vault-Token", self.token.as_str())],
            body,
            self.timeout,
        )
        .await
        .map_err(|e| StoreError::Backend(format!("OpenBao at {:?}: {e}", self.target)))?;
        let value: serde_json::Value = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|_| {
                StoreError::Backend(format!(
                    "OpenBao at {:?} answered HTTP {status} with a body that is not JSON",
                    self.target
                ))
            })?
        };
        match status {
            200..=299 => Ok(Some(value)),
            404 => Ok(None),
            _ => {
                let errors = value["errors"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| e.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or_default();
                Err(StoreError::Backend(format!(
                    "OpenBao at {:?}: {method} answered HTTP {status}: {errors}",
                    self.target
                )))
            }
        }
    }

    /// The raw entries of a folder (`LIST`, without the trailing `/` of sub-folders); empty when the folder does not
    /// exist.
    async fn list_folder(&self, rest: &str) -> Result<Vec<String>, StoreError> {
        let Some(v) = self
            .request(
                "GET",
                &format!("{}?list=true", self.metadata_path(rest)),
                Vec::new(),
            )
            .await?
        else {
            return Ok(Vec::new());
        };
        Ok(v["data"]["keys"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str())
                    .map(|k| k.trim_end_matches('/').to_owned())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The names (tenants or ids) of a folder, decoded from hex and in bytewise order.
    async fn list_names(&self, rest: &str) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self
            .list_folder(rest)
            .await?
            .iter()
            .filter_map(|k| unseg(k))
            .collect();
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        Ok(names)
    }

    /// Writes `record` with KV check-and-set `cas`; false when the check failed.
    async fn write(&self, record: &Record, cas: u64) -> Result<bool, StoreError> {
        validate(record)?;
        let metadata = serde_json::to_string(&record.metadata)
            .map_err(|e| StoreError::Invalid(format!("its metadata cannot be serialised: {e}")))?;
        let body = serde_json::json!({
            "options": { "cas": cas },
            "data": {
                "metadata": metadata,
                "blob": record.blob.as_ref().map(|b| B64.encode(b.as_bytes())),
            },
        });
        let path = self.data_path(&record.tenant, &record.kind, &record.id, record.version);
        match self
            .request("POST", &path, serde_json::to_vec(&body).unwrap_or_default())
            .await
        {
            Ok(_) => Ok(true),
            // KV answers a failed check-and-set with 400 and this sentence.
            Err(StoreError::Backend(m)) if m.contains("check-and-set") => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn decode(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
        v: &serde_json::Value,
    ) -> Result<Record, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            record: record_name(tenant, kind, id, version),
            reason,
        };
        let data = &v["data"]["data"];
        let metadata = data["metadata"]
            .as_str()
            .ok_or_else(|| corrupt("it has no metadata".into()))?;
        let metadata: serde_json::Value = serde_json::from_str(metadata)
            .map_err(|e| corrupt(format!("its metadata is not JSON ({e})")))?;
        let blob = match &data["blob"] {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(
                B64.decode(s)
                    .map_err(|e| corrupt(format!("its wrapped key is not base64 ({e})")))
                    .and_then(|b| {
                        WrappedKey::from_stored(b)
                            .map_err(|e| corrupt(format!("its wrapped key is invalid ({e})")))
                    })?,
            ),
            _ => return Err(corrupt("its wrapped key is not a string".into())),
        };
        let revision = v["data"]["metadata"]["version"]
            .as_u64()
            .ok_or_else(|| corrupt("it has no KV version".into()))?;
        Ok(Record {
            tenant: tenant.to_owned(),
            kind: kind.to_owned(),
            id: id.to_owned(),
            version,
            metadata,
            blob,
            revision,
        })
    }
}

#[async_trait]
impl KeyStore for OpenBaoStore {
    async fn get(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<Option<Record>, StoreError> {
        let Some(v) = self
            .request(
                "GET",
                &self.data_path(tenant, kind, id, version),
                Vec::new(),
            )
            .await?
        else {
            return Ok(None);
        };
        self.decode(tenant, kind, id, version, &v).map(Some)
    }

    async fn put_if_absent(&self, record: &Record) -> Result<bool, StoreError> {
        self.write(record, 0).await
    }

    async fn compare_and_set(
        &self,
        record: &Record,
        expected_revision: u64,
    ) -> Result<bool, StoreError> {
        crate::next_revision(expected_revision)?;
        if expected_revision == 0 {
            // Revision 0 never exists; cas = 0 would create the record.
            return Ok(false);
        }
        self.write(record, expected_revision).await
    }

    async fn list(&self, tenant: &str, kind: &str) -> Result<Vec<Record>, StoreError> {
        let folder = format!("{}/{}", seg(tenant), seg(kind));
        let mut out = Vec::new();
        for id in self.list_names(&format!("{folder}/")).await? {
            let mut versions: Vec<u32> = self
                .list_folder(&format!("{folder}/{}/", seg(&id)))
                .await?
                .iter()
                .filter_map(|v| v.parse().ok())
                .collect();
            versions.sort_unstable();
            for version in versions {
                if let Some(r) = self.get(tenant, kind, &id, version).await? {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    async fn list_tenants(&self) -> Result<Vec<String>, StoreError> {
        self.list_names("").await
    }

    async fn delete(
        &self,
        tenant: &str,
        kind: &str,
        id: &str,
        version: u32,
    ) -> Result<bool, StoreError> {
        if self.get(tenant, kind, id, version).await?.is_none() {
            return Ok(false);
        }
        let path = self.metadata_path(&format!(
            "{}/{}/{}/{version}",
            seg(tenant),
            seg(kind),
            seg(id)
        ));
        self.request("DELETE", &path, Vec::new()).await?;
        Ok(true)
    }
}
