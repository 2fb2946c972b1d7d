//! The `gcp-kms` and `azure-keyvault` providers against HTTP fakes of their documented REST contracts (no emulator
//! of either service exists): the fakes check each request's method, path, query, headers and JSON fields exactly,
//! and answer like the services, errors included. Then `openkcm dev --seal gcp-kms` / `--seal azure-keyvault`
//! start, restart and serve the same key. Not tested against the real clouds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use base64::Engine;
use common::rest_fake::{FakeRequest, RestFake};
use common::{s, Dev};
use openkcm_providers::{KeyProvider, KeyRef, ProviderError};
use std::sync::Arc;

const STD: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const GCP_KEY: &str = "projects/p1/locations/europe-west3/keyRings/openkcm/cryptoKeys/seal";

fn gcp_error(code: u16, status: &str, message: &str) -> (u16, serde_json::Value) {
    (
        code,
        serde_json::json!({"error": {"code": code, "status": status, "message": message}}),
    )
}

/// Cloud KMS v1, as documented: the fake "encrypts" by framing the AAD and plaintext (enough to check that the
/// driver sends and binds them).
fn gcp_fake(req: &FakeRequest) -> (u16, serde_json::Value) {
    if req.header("authorization") != Some("Bearer gcp-token") {
        return gcp_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        );
    }
    assert_eq!(req.header("content-type"), Some("application/json"));
    let path = req.target.strip_prefix("/v1/").expect("a v1 path");
    let (name, verb) = match path.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (path, None),
    };
    let key = name.rsplit('/').next().unwrap();
    match key {
        "denied" => return gcp_error(403, "PERMISSION_DENIED", "Permission 'cloudkms.cryptoKeyVersions.useToEncrypt' denied"),
        "missing" => return gcp_error(404, "NOT_FOUND", "CryptoKey not found."),
        "disabled" => return gcp_error(400, "FAILED_PRECONDITION", "The request cannot be fulfilled. Resource projects/…/cryptoKeyVersions/1 has value DISABLED in field crypto_key_version.state."),
        _ => {}
    }
    match (req.method.as_str(), verb) {
        ("GET", None) => (
            200,
            serde_json::json!({"name": name, "primary": {"name": format!("{name}/cryptoKeyVersions/1"), "state": "ENABLED"}, "purpose": "ENCRYPT_DECRYPT"}),
        ),
        ("POST", Some("encrypt")) => {
            let obj = req.body.as_object().unwrap();
            assert_eq!(
                obj.len(),
                2,
                "exactly plaintext and additionalAuthenticatedData: {:?}",
                req.body
            );
            let pt = STD.decode(req.body["plaintext"].as_str().unwrap()).unwrap();
            let aad = STD
                .decode(req.body["additionalAuthenticatedData"].as_str().unwrap())
                .unwrap();
            let mut ct = b"FAKE".to_vec();
            ct.extend_from_slice(&(aad.len() as u32).to_be_bytes());
            ct.extend_from_slice(&aad);
            ct.extend_from_slice(&pt);
            (
                200,
                serde_json::json!({"name": format!("{name}/cryptoKeyVersions/1"), "ciphertext": STD.encode(ct)}),
            )
        }
        ("POST", Some("decrypt")) => {
            let obj = req.body.as_object().unwrap();
            assert_eq!(
                obj.len(),
                2,
                "exactly ciphertext and additionalAuthenticatedData: {:?}",
                req.body
            );
            let ct = STD
                .decode(req.body["ciphertext"].as_str().unwrap())
                .unwrap();
            let aad = STD
                .decode(req.body["additionalAuthenticatedData"].as_str().unwrap())
                .unwrap();
            let n = u32::from_be_bytes(ct[4..8].try_into().unwrap()) as usize;
            if &ct[..4] != b"FAKE" || ct[8..8 + n] != aad[..] {
                return gcp_error(
                    400,
                    "INVALID_ARGUMENT",
                    "Decryption failed: the ciphertext is invalid.",
                );
            }
            (
                200,
                serde_json::json!({"plaintext": STD.encode(&ct[8 + n..])}),
            )
        }
        other => panic!("unexpected Cloud KMS request {other:?} {}", req.target),
    }
}

fn azure_error(code: u16, err: &str, message: &str) -> (u16, serde_json::Value) {
    (
        code,
        serde_json::json!({"error": {"code": err, "message": message}}),
    )
}

/// Key Vault 7.4 wrapkey/unwrapkey/get, as documented.
fn azure_fake(req: &FakeRequest) -> (u16, serde_json::Value) {
    if req.header("authorization") != Some("Bearer az-token") {
        return azure_error(
            401,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
        );
    }
    let (path, query) = req.target.split_once('?').expect("a query");
    assert_eq!(query, "api-version=7.4");
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    assert_eq!(parts[0], "keys");
    match parts[1] {
        "disabled" => {
            return azure_error(
                403,
                "Forbidden",
                "Operation is not allowed on a disabled key.",
            )
        }
        "missing" => {
            return azure_error(
                404,
                "KeyNotFound",
                "A key with (name/id) missing was not found in this key vault.",
            )
        }
        _ => {}
    }
    let kid = format!("https://vault.example/keys/{}/0123abcd", parts[1]);
    match (req.method.as_str(), parts.get(2).copied()) {
        ("GET", None) => (
            200,
            serde_json::json!({"key": {"kid": kid, "kty": "RSA"}, "attributes": {"enabled": true}}),
        ),
        ("POST", Some("wrapkey")) => {
            assert_eq!(req.body["alg"], "RSA-OAEP-256");
            assert_eq!(req.body.as_object().unwrap().len(), 2);
            let value = URL.decode(req.body["value"].as_str().unwrap()).unwrap();
            let mut wrapped = b"AZ".to_vec();
            wrapped.extend_from_slice(&value);
            (
                200,
                serde_json::json!({"kid": kid, "value": URL.encode(wrapped)}),
            )
        }
        ("POST", Some("unwrapkey")) => {
            assert_eq!(req.body["alg"], "RSA-OAEP-256");
            let value = URL.decode(req.body["value"].as_str().unwrap()).unwrap();
            if !value.starts_with(b"AZ") {
                return azure_error(400, "BadParameter", "The parameter value is invalid.");
            }
            (
                200,
                serde_json::json!({"kid": kid, "value": URL.encode(&value[2..])}),
            )
        }
        other => panic!("unexpected Key Vault request {other:?} {}", req.target),
    }
}

fn ctx(c: &str) -> Vec<(String, String)> {
    vec![
        ("cluster_id".into(), c.into()),
        ("region".into(), "eu".into()),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn gcp_kms_driver_speaks_the_documented_rest_contract() {
    let fake = RestFake::start(Arc::new(gcp_fake));
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "gcp-token\n").unwrap();
    let target = openkcm_providers::http_target(&format!("http://{}", fake.addr), None).unwrap();
    let p = openkcm_providers::gcp_kms::GcpKms::new(
        target.clone(),
        openkcm_providers::TokenSource::File(token.clone()),
    );
    let key = |k: &str| KeyRef {
        provider: "gcp-kms".into(),
        key_id: GCP_KEY.replace("/seal", &format!("/{k}")),
        region: None,
    };
    let d = p.describe(&key("seal")).await.unwrap();
    assert!(d.enabled);
    assert!(d.version.unwrap().ends_with("/cryptoKeyVersions/1"));
    let ct = p
        .encrypt(&key("seal"), &[5u8; 32], &ctx("c1"))
        .await
        .unwrap();
    assert_eq!(
        p.decrypt(&key("seal"), &ct, &ctx("c1"))
            .await
            .unwrap()
            .expose(),
        &[5u8; 32]
    );
    let e = p.decrypt(&key("seal"), &ct, &ctx("c2")).await.unwrap_err();
    assert!(matches!(e, ProviderError::Invalid(_)), "{e:?}");
    {
        let log = fake.requests.lock().unwrap();
        let enc = log.iter().find(|r| r.target.ends_with(":encrypt")).unwrap();
        assert_eq!(enc.method, "POST");
        assert_eq!(enc.target, format!("/v1/{GCP_KEY}:encrypt"));
        assert_eq!(
            STD.decode(enc.body["additionalAuthenticatedData"].as_str().unwrap())
                .unwrap(),
            openkcm_providers::canonical_context(&ctx("c1")).unwrap()
        );
    }
    for (k, class) in [
        ("denied", "Denied"),
        ("missing", "NotFound"),
        ("disabled", "Disabled"),
    ] {
        let e = p.encrypt(&key(k), b"x", &ctx("c1")).await.unwrap_err();
        assert!(format!("{e:?}").starts_with(class), "{k}: {e:?}");
    }
    std::fs::write(&token, "expired").unwrap();
    let e = p.encrypt(&key("seal"), b"x", &ctx("c1")).await.unwrap_err();
    assert!(matches!(e, ProviderError::Denied(_)), "{e:?}");
    assert!(!e.to_string().contains("expired"), "the token leaked: {e}");
    let e = p
        .encrypt(
            &KeyRef {
                key_id: "seal".into(),
                ..key("seal")
            },
            b"x",
            &ctx("c1"),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not a Cloud KMS key name"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_keyvault_driver_speaks_the_documented_rest_contract() {
    let fake = RestFake::start(Arc::new(azure_fake));
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "az-token").unwrap();
    let target = openkcm_providers::http_target(&format!("http://{}", fake.addr), None).unwrap();
    let p = openkcm_providers::azure_keyvault::AzureKeyVault::new(
        target,
        openkcm_providers::TokenSource::File(token.clone()),
        "RSA-OAEP-256",
    )
    .unwrap();
    let key = |k: &str| KeyRef {
        provider: "azure-keyvault".into(),
        key_id: k.into(),
        region: None,
    };
    let d = p.describe(&key("seal")).await.unwrap();
    assert!(d.enabled);
    let ct = p
        .encrypt(&key("seal"), &[6u8; 32], &ctx("c1"))
        .await
        .unwrap();
    assert_eq!(
        p.decrypt(&key("seal"), &ct, &ctx("c1"))
            .await
            .unwrap()
            .expose(),
        &[6u8; 32]
    );
    let e = p.decrypt(&key("seal"), &ct, &ctx("c2")).await.unwrap_err();
    assert!(matches!(e, ProviderError::Invalid(_)), "{e:?}");
    let e = p
        .decrypt(&key("seal"), b"tampered", &ctx("c1"))
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Invalid(_)), "{e:?}");
    {
        let log = fake.requests.lock().unwrap();
        let wrap = log.iter().find(|r| r.target.contains("/wrapkey")).unwrap();
        assert_eq!(wrap.target, "/keys/seal/wrapkey?api-version=7.4");
        // The context is bound by a 32-byte digest prefix of the wrapped value.
        assert_eq!(
            URL.decode(wrap.body["value"].as_str().unwrap())
                .unwrap()
                .len(),
            64
        );
    }
    for (k, class) in [("missing", "NotFound"), ("disabled", "Disabled")] {
        let e = p.encrypt(&key(k), b"x", &ctx("c1")).await.unwrap_err();
        assert!(format!("{e:?}").starts_with(class), "{k}: {e:?}");
    }
    std::fs::write(&token, "stale").unwrap();
    let e = p.encrypt(&key("seal"), b"x", &ctx("c1")).await.unwrap_err();
    assert!(matches!(e, ProviderError::Denied(_)), "{e:?}");
    assert!(openkcm_providers::azure_keyvault::AzureKeyVault::new(
        openkcm_providers::http_target("http://127.0.0.1:1", None).unwrap(),
        openkcm_providers::TokenSource::File(token),
        "RSA1_5"
    )
    .is_err());
}

#[test]
fn dev_auto_unseals_through_the_gcp_and_azure_fakes_across_a_restart() {
    let gcp = RestFake::start(Arc::new(gcp_fake));
    let azure = RestFake::start(Arc::new(azure_fake));
    let dir = tempfile::tempdir().unwrap();
    let gcp_token = dir.path().join("gcp-token");
    std::fs::write(&gcp_token, "gcp-token").unwrap();
    let az_token = dir.path().join("az-token");
    std::fs::write(&az_token, "az-token").unwrap();
    let gcp_args = vec![
        "--seal".to_owned(),
        "gcp-kms".into(),
        "--gcp-endpoint".into(),
        format!("http://{}", gcp.addr),
        "--gcp-token-file".into(),
        gcp_token.display().to_string(),
        "--seal-key".into(),
        GCP_KEY.into(),
    ];
    let az_args = vec![
        "--seal".to_owned(),
        "azure-keyvault".into(),
        "--azure-vault".into(),
        format!("http://{}", azure.addr),
        "--azure-token-file".into(),
        az_token.display().to_string(),
        "--seal-key".into(),
        "seal".into(),
    ];
    for (name, args) in [("gcp-kms", gcp_args), ("azure-keyvault", az_args)] {
        let data = dir.path().join(name);
        let extra: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut dev = Dev::spawn_with(&data, &["demo"], None, &[], &extra, "OPENKCM READY");
        let blob: serde_json::Value = serde_json::from_slice(
            &std::fs::read(data.join("seal/master-key.provider-sealed.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(blob["provider"], name);
        let uid = s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
        let key = s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex");
        dev.stop();
        let mut dev = Dev::spawn_with(&data, &["demo"], None, &[], &extra, "OPENKCM READY");
        assert_eq!(
            s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex"),
            key,
            "{name}"
        );
        dev.stop();
    }
    // Every request the node made carried the bearer token and the documented paths.
    assert!(gcp
        .requests
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.target == format!("/v1/{GCP_KEY}:decrypt")));
    assert!(azure
        .requests
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.target == "/keys/seal/unwrapkey?api-version=7.4"));
}
