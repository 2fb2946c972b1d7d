//! The Core's operator API (DESIGN §3), served over HTTPS with mutual TLS on the operator port:
//!
//! | request | who | what |
//! |---|---|---|
//! | `GET /v1/sys/seal-status` | any OpenKCM identity | `{sealed, initialized, mode, threshold, shares, progress, nonce, cluster_id, region, reason}` |
//! | `POST /v1/sys/init` | operator | Shamir key ceremony: `{shares, threshold, recipients}` → manifest and encrypted shares |
//! | `POST /v1/sys/unseal` | operator | `{share, nonce}` (Shamir), `{reset: true}`, or `{}` (automatic seals) |
//! | `POST /v1/sys/seal` | operator | seal now: the Core drops and zeroizes every key |
//! | `POST /v1/sys/recover` | operator | auto-unseal nodes: `{share, nonce}` of a recovery share, or `{reset: true}` |
//! | `POST /v1/sys/migrate-seal` | operator | `{to: <provider settings>, key_id}`: re-seal the MasterKey under another provider |
//!
//! While sealed every other path answers 503 `{"error":"sealed"}`. Errors are `{"error": "<sentence>"}` with a
//! 4xx status when the caller can fix them (a refused share is 400, never 500).

use crate::seal::node::{NodeError, SealStatus};
use crate::seal::Node;
use openkcm_net::https::{HttpResponse, HttpService};
use openkcm_net::PeerIdentity;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use zeroize::Zeroize;

/// The operator API of one node.
pub struct OperatorApi {
    node: Arc<Node>,
    pkcs11_modules: Vec<std::path::PathBuf>,
}

impl OperatorApi {
    /// The API over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self {
            node,
            pkcs11_modules: Vec::new(),
        }
    }

    /// The PKCS#11 modules a seal migration may name (loading a module runs its code in this process, so an
    /// operator may only choose among the ones the node was configured with).
    pub fn with_pkcs11_modules(mut self, modules: Vec<std::path::PathBuf>) -> Self {
        self.pkcs11_modules = modules;
        self
    }
}

/// `POST /v1/sys/init`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitRequest {
    /// `shamir` (the only mode a running node can be initialised into; automatic seals initialise themselves).
    #[serde(default = "shamir")]
    pub mode: String,
    /// N.
    pub shares: usize,
    /// M.
    pub threshold: usize,
    /// One age or SSH public key per share.
    pub recipients: Vec<String>,
}

fn shamir() -> String {
    "shamir".into()
}

/// One encrypted share in the init response.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitShare {
    /// File name (`share-<i>.age`).
    pub file: String,
    /// The armored age file.
    pub age: String,
}

/// `POST /v1/sys/migrate-seal`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrateRequest {
    /// The new seal provider's settings (`{"provider":"vault-transit", …}`).
    pub to: openkcm_providers::config::ProviderConfig,
    /// The key at the new provider (transit key name, KMS key id, ARN or alias).
    pub key_id: String,
}

/// `POST /v1/sys/unseal`. `Debug` does not show the share.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UnsealRequest {
    /// The decrypted share document (text).
    #[serde(default)]
    pub share: Option<String>,
    /// The current nonce from seal-status.
    #[serde(default)]
    pub nonce: Option<String>,
    /// Clear progress and issue a new nonce.
    #[serde(default)]
    pub reset: bool,
}

impl Drop for UnsealRequest {
    fn drop(&mut self) {
        if let Some(s) = self.share.as_mut() {
            s.zeroize();
        }
    }
}

fn json(status: u16, value: &impl Serialize) -> HttpResponse {
    HttpResponse {
        status,
        body: serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// Logs how an operator action ended: its status, and for a refusal the error sentence (these never hold share or
/// key material; the successful bodies, which may hold encrypted shares, are not logged).
fn log_outcome(peer: &PeerIdentity, path: &str, response: &HttpResponse) {
    if response.status < 300 {
        tracing::info!(peer = %peer, path, status = response.status, "operator request done");
        return;
    }
    let reason = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_default();
    tracing::warn!(peer = %peer, path, status = response.status, reason = %reason, "operator request refused");
}

/// A 400 answer when one of the named fields is not a tenant, system or service name (1 to 63 characters of `a-z`,
/// `0-9` and `-`): such input reaches no lookup and no log line.
fn bad_names(fields: &[(&str, &str)]) -> Option<HttpResponse> {
    fields
        .iter()
        .find(|(_, value)| !openkcm_net::identity::valid_name(value))
        .map(|(field, _)| {
            error(
                400,
                format!(
                    "\"{field}\" must be 1 to 63 characters of a-z, 0-9 and -, not starting with -"
                ),
            )
        })
}

/// A Core refusal as an HTTP answer: no such object 404, a conflict with its state or another node 409, else 500.
fn core_refusal(e: crate::CoreError) -> HttpResponse {
    match e {
        crate::CoreError::NotFound(m) => error(404, format!("not found: {m}")),
        crate::CoreError::Conflict(m) => error(409, m),
        e => error(500, e),
    }
}

fn error(status: u16, message: impl std::fmt::Display) -> HttpResponse {
    json(status, &serde_json::json!({ "error": message.to_string() }))
}

fn refusal(e: NodeError, status: Option<SealStatus>) -> HttpResponse {
    let code = match &e {
        NodeError::Client(_) | NodeError::Unseal(_) => 400,
        NodeError::Conflict(_) => 409,
        NodeError::Server(_) => 500,
        NodeError::Unavailable(_) => 503,
    };
    json(
        code,
        &serde_json::json!({ "error": e.to_string(), "seal_status": status }),
    )
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, HttpResponse> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(error(400, "the request body must be a JSON object"));
    }
    serde_json::from_slice(body).map_err(|e| {
        // serde's message can quote the input, which may hold a share: only field-name messages are passed on.
        let text = e.to_string();
        let what = if text.starts_with("missing field") || text.starts_with("unknown field") {
            text.split(" at line").next().unwrap_or_default().to_owned()
        } else {
            format!("{:?} error", e.classify()).to_lowercase()
        };
        error(
            400,
            format!(
                "the request body is not the expected JSON object: {what} (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

impl OperatorApi {
    async fn init(&self, body: &[u8]) -> HttpResponse {
        let req: InitRequest = match parse(body) {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        if req.mode != "shamir" && req.mode != "recovery" {
            return error(
                400,
                format!(
                    "mode {:?} cannot be initialised through the API: use \"shamir\" (key ceremony of a Shamir node) or \"recovery\" (recovery shares of an auto-unseal node)",
                    req.mode
                ),
            );
        }
        let status = self.node.status().await;
        let expected = if status.mode == "shamir" {
            "shamir"
        } else {
            "recovery"
        };
        if req.mode != expected {
            return error(
                400,
                format!(
                    "this node uses the {} seal: init takes mode {expected:?}, not {:?}",
                    status.mode, req.mode
                ),
            );
        }
        match self
            .node
            .init(req.shares, req.threshold, req.recipients)
            .await
        {
            Ok((manifest, files)) => json(
                200,
                &serde_json::json!({
                    "manifest": manifest,
                    "shares": files
                        .into_iter()
                        .map(|(file, age)| InitShare { file, age })
                        .collect::<Vec<_>>(),
                    "seal_status": self.node.status().await,
                }),
            ),
            Err(e) => refusal(e, Some(self.node.status().await)),
        }
    }

    async fn recover(&self, body: &[u8]) -> HttpResponse {
        let req: UnsealRequest = match parse(body) {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        if req.reset && (req.share.is_some() || req.nonce.is_some()) {
            return error(
                400,
                "reset takes no share or nonce: send {\"reset\": true} alone",
            );
        }
        let result = if req.reset {
            self.node.reset(true).await.map(|s| json(200, &s))
        } else {
            let (Some(share), Some(nonce)) = (&req.share, &req.nonce) else {
                return error(
                    400,
                    "a recovery share needs \"share\" and the current \"nonce\" (from /v1/sys/seal-status)",
                );
            };
            self.node.recover(nonce, share).await.map(|o| json(200, &o))
        };
        match result {
            Ok(resp) => resp,
            Err(e) => refusal(e, Some(self.node.status().await)),
        }
    }

    /// `POST /v1/sys/rotate-ivk` (`{}` or `{"emergency": true}`): a new ACTIVE IVK version; bindings move to it
    /// as they are used, or at once with `emergency`, after which the previous versions are REVOKED.
    async fn rotate_ivk(&self, body: &[u8]) -> HttpResponse {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Rotate {
            #[serde(default)]
            emergency: bool,
        }
        let req: Rotate = if body.is_empty() {
            Rotate { emergency: false }
        } else {
            match parse(body) {
                Ok(r) => r,
                Err(resp) => return resp,
            }
        };
        let Some(core) = self.node.core() else {
            return error(503, "sealed");
        };
        let result = if req.emergency {
            core.rotate_ivk_emergency().await
        } else {
            core.rotate_ivk().await
        };
        match result {
            Ok(version) => json(
                200,
                &serde_json::json!({ "version": version, "versions": core.ivk_versions() }),
            ),
            Err(e) => core_refusal(e),
        }
    }

    /// `POST /v1/sys/delete-ivk` (`{"version": N}`): deletes a DEPRECATED or REVOKED IVK version that no binding
    /// uses any more (409 while one does).
    async fn delete_ivk(&self, body: &[u8]) -> HttpResponse {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Delete {
            version: u32,
        }
        let req: Delete = match parse(body) {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        let Some(core) = self.node.core() else {
            return error(503, "sealed");
        };
        match core.delete_ivk_version(req.version).await {
            Ok(()) => json(
                200,
                &serde_json::json!({ "deleted": req.version, "versions": core.ivk_versions() }),
            ),
            Err(e) => core_refusal(e),
        }
    }

    /// `POST /v1/sys/rotate-l3` (`{"tenant": "…", "service": "…"}`): a new L3 version for the service.
    async fn rotate_l3(&self, body: &[u8]) -> HttpResponse {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Rotate {
            tenant: String,
            service: String,
        }
        let req: Rotate = match parse(body) {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        if let Some(refusal) = bad_names(&[("tenant", &req.tenant), ("service", &req.service)]) {
            return refusal;
        }
        let Some(core) = self.node.core() else {
            return error(503, "sealed");
        };
        match core.rotate_l3(&req.tenant, &req.service).await {
            Ok((uid, version)) => json(
                200,
                &serde_json::json!({ "tenant": req.tenant, "service": req.service, "unique_identifier": uid, "version": version }),
            ),
            Err(e) => core_refusal(e),
        }
    }

    /// The L2 operations of one system: `POST /v1/sys/rotate-l2` and `/v1/sys/rewrap` (`{"tenant", "system"}`),
    /// `/v1/sys/destroy-l2` and `/v1/sys/compromise-l2` (`{"tenant", "system", "version"}`).
    async fn system_key(&self, path: &str, body: &[u8]) -> HttpResponse {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct SystemKey {
            tenant: String,
            system: String,
            #[serde(default)]
            version: Option<u32>,
        }
        let req: SystemKey = match parse(body) {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        if let Some(refusal) = bad_names(&[("tenant", &req.tenant), ("system", &req.system)]) {
            return refusal;
        }
        let Some(core) = self.node.core() else {
            return error(503, "sealed");
        };
        let (tenant, system) = (req.tenant.as_str(), req.system.as_str());
        let result = match path {
            "/v1/sys/rotate-l2" => core.rotate_l2(tenant, system).await.map(
                |v| serde_json::json!({ "tenant": tenant, "system": system, "l2_version": v }),
            ),
            "/v1/sys/rewrap" => core
                .rewrap_system(tenant, system)
                .await
                .map(|n| serde_json::json!({ "tenant": tenant, "system": system, "rewrapped": n })),
            "/v1/sys/compromise-l2" => match req.version {
                None => return error(400, "compromise-l2 needs the \"version\" to mark"),
                Some(v) => core.compromise_l2(tenant, system, v).await.map(|n| {
                    serde_json::json!({ "tenant": tenant, "system": system, "compromised": v, "rewrapped": n })
                }),
            },
            _ => match req.version {
                None => return error(400, "destroy-l2 needs the \"version\" to destroy"),
                Some(v) => core.destroy_l2_version(tenant, system, v).await.map(
                    |()| serde_json::json!({ "tenant": tenant, "system": system, "destroyed": v }),
                ),
            },
        };
        match result {
            Ok(v) => json(200, &v),
            Err(e) => core_refusal(e),
        }
    }

    /// `POST /v1/sys/destroy-l3` (`{"tenant", "service", "version"}`): destroys an old service key version;
    /// `POST /v1/sys/compromise-l3` (same body): marks a version compromised (the current one is rotated first).
    async fn service_key_version(&self, path: &str, body: &[u8]) -> HttpResponse {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Version {
            tenant: String,
            service: String,
            version: u32,
        }
        let req: Version = match parse(body) {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        if let Some(refusal) = bad_names(&[("tenant", &req.tenant), ("service", &req.service)]) {
            return refusal;
        }
        let Some(core) = self.node.core() else {
            return error(503, "sealed");
        };
        let (tenant, service, version) = (&req.tenant, &req.service, req.version);
        let result = if path == "/v1/sys/compromise-l3" {
            match core.compromise_l3(tenant, service, version).await {
                // The service's current version afterwards (a new one when the marked version was current).
                Ok(uid) => core.current_l3_uid(tenant, service).await.map(|current| {
                    serde_json::json!({ "tenant": tenant, "service": service, "compromised": version, "unique_identifier": uid, "current_unique_identifier": current })
                }),
                Err(e) => Err(e),
            }
        } else {
            core.destroy_l3_version(tenant, service, version).await.map(|uid| {
                serde_json::json!({ "tenant": tenant, "service": service, "destroyed": version, "unique_identifier": uid })
            })
        };
        match result {
            Ok(v) => json(200, &v),
            Err(e) => core_refusal(e),
        }
    }

    /// `POST /v1/sys/prewarm` (`{"tenant": "…"}`): hydrates the tenant's L2s and current L3s into memory.
    async fn prewarm(&self, body: &[u8]) -> HttpResponse {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Prewarm {
            tenant: String,
        }
        let req: Prewarm = match parse(body) {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        if let Some(refusal) = bad_names(&[("tenant", &req.tenant)]) {
            return refusal;
        }
        let Some(core) = self.node.core() else {
            return error(503, "sealed");
        };
        match core.prewarm(&req.tenant).await {
            Ok((systems, services)) => {
                let (l2, l3) = core.cached_keys();
                json(
                    200,
                    &serde_json::json!({ "tenant": req.tenant, "systems": systems, "services": services, "cached_l2": l2, "cached_l3": l3 }),
                )
            }
            Err(e) => core_refusal(e),
        }
    }

    async fn migrate_seal(&self, body: &[u8]) -> HttpResponse {
        let req: MigrateRequest = match parse(body) {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        if let Err(e) = req.to.check_remote(&self.pkcs11_modules) {
            return error(400, format!("the new seal's settings are refused: {e}"));
        }
        let provider = match req.to.build() {
            Ok(p) => p,
            Err(e) => return error(400, format!("the new seal provider cannot be used: {e}")),
        };
        let key = openkcm_providers::KeyRef {
            provider: provider.name().to_owned(),
            key_id: req.key_id.clone(),
            region: req.to.region(),
        };
        let seal = Arc::new(crate::seal::ProviderSeal::new(
            provider,
            key,
            self.node.seal_dir(),
        ));
        match self.node.migrate_seal(seal).await {
            Ok(status) => json(200, &status),
            Err(e) => refusal(e, Some(self.node.status().await)),
        }
    }

    async fn unseal(&self, body: &[u8]) -> HttpResponse {
        let req: UnsealRequest = match parse(body) {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        if req.reset && (req.share.is_some() || req.nonce.is_some()) {
            return error(
                400,
                "reset takes no share or nonce: send {\"reset\": true} alone",
            );
        }
        let result = if req.reset {
            self.node.reset(false).await.map(|s| json(200, &s))
        } else if let Some(share) = &req.share {
            let Some(nonce) = &req.nonce else {
                return error(
                    400,
                    "a share must quote the current nonce (\"nonce\" from /v1/sys/seal-status)",
                );
            };
            self.node
                .submit_share(nonce, share)
                .await
                .map(|o| json(200, &o))
        } else {
            self.node.auto_unseal().await.map(|s| json(200, &s))
        };
        match result {
            Ok(resp) => resp,
            Err(e) => refusal(e, Some(self.node.status().await)),
        }
    }
}

#[async_trait::async_trait]
impl HttpService for OperatorApi {
    async fn handle(
        &self,
        peer: Option<&PeerIdentity>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> HttpResponse {
        let Some(peer) = peer else {
            return error(
                403,
                "the client certificate names no OpenKCM identity (an operator has URI SAN spiffe://openkcm/operator/<name>)",
            );
        };
        let operator = matches!(peer, PeerIdentity::Operator { .. });
        let route = (method, path.trim_end_matches('/'));
        if let ("GET", "/v1/sys/seal-status") = route {
            return json(200, &self.node.status().await);
        }
        if route.1 == "/v1/sys" || route.1.starts_with("/v1/sys/") {
            let allowed = matches!(
                route.1,
                "/v1/sys/init"
                    | "/v1/sys/unseal"
                    | "/v1/sys/seal"
                    | "/v1/sys/recover"
                    | "/v1/sys/migrate-seal"
                    | "/v1/sys/rotate-ivk"
                    | "/v1/sys/delete-ivk"
                    | "/v1/sys/prewarm"
                    | "/v1/sys/rotate-l3"
                    | "/v1/sys/rotate-l2"
                    | "/v1/sys/rewrap"
                    | "/v1/sys/destroy-l2"
                    | "/v1/sys/destroy-l3"
                    | "/v1/sys/compromise-l2"
                    | "/v1/sys/compromise-l3"
            );
            if !allowed {
                return error(404, format!("no such endpoint: {path}"));
            }
            if method != "POST" {
                return error(405, format!("{path} takes POST"));
            }
            if !operator {
                tracing::warn!(peer = %peer, path, "operator API refused: not an operator identity");
                return error(
                    403,
                    format!("{peer} is not an operator: {path} needs an operator certificate (spiffe://openkcm/operator/<name>)"),
                );
            }
            tracing::info!(peer = %peer, path, "operator request");
            let response = match route.1 {
                "/v1/sys/init" => self.init(body).await,
                "/v1/sys/unseal" => self.unseal(body).await,
                "/v1/sys/recover" => self.recover(body).await,
                "/v1/sys/migrate-seal" => self.migrate_seal(body).await,
                "/v1/sys/rotate-ivk" => self.rotate_ivk(body).await,
                "/v1/sys/delete-ivk" => self.delete_ivk(body).await,
                "/v1/sys/prewarm" => self.prewarm(body).await,
                "/v1/sys/rotate-l3" => self.rotate_l3(body).await,
                "/v1/sys/destroy-l3" | "/v1/sys/compromise-l3" => {
                    self.service_key_version(route.1, body).await
                }
                "/v1/sys/rotate-l2"
                | "/v1/sys/rewrap"
                | "/v1/sys/destroy-l2"
                | "/v1/sys/compromise-l2" => self.system_key(route.1, body).await,
                _ => json(200, &self.node.seal().await),
            };
            log_outcome(peer, path, &response);
            return response;
        }
        if self.node.is_sealed() {
            return error(503, "sealed");
        }
        error(404, format!("no such endpoint: {path}"))
    }
}
