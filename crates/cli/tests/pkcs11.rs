//! The `pkcs11` provider against a real SoftHSM2 token (DESIGN §7, issue 5): AES key wrap with padding, the context
//! bound, errors normalised, the key handle cached; and `openkcm dev --seal pkcs11` starting, restarting and serving
//! the same keys. Outside CI the tests are skipped, loudly, when SoftHSM2 is missing; in CI that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::ctx;
use common::services::{SoftHsm, SOFTHSM_PIN, SOFTHSM_TOKEN};
use common::{s, Dev};
use openkcm_providers::pkcs11::Pkcs11Provider;
use openkcm_providers::{KeyProvider, ProviderError};
use std::time::Instant;

/// One test on purpose: a PKCS#11 module is initialised once per process, reads its configuration from the
/// process environment, and shares one login among all sessions, so two tests in this process could not each have
/// their own token. The driver is checked in-process; `openkcm dev` runs in child processes.
#[test]
fn pkcs11_driver_and_dev_seal_against_softhsm() {
    let Some(hsm) = SoftHsm::init() else { return };
    std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(driver(&hsm));
    dev_seal(&hsm);
}

async fn driver(hsm: &SoftHsm) {
    let p = Pkcs11Provider::open(&hsm.config(SOFTHSM_PIN)).unwrap();
    let key = p.create("openkcm-seal").await.unwrap();
    assert!(p.describe(&key).await.unwrap().enabled);
    let a = ctx(&[("cluster_id", "c1"), ("region", "eu")]);
    let ct = p.encrypt(&key, &[9u8; 32], &a).await.unwrap();
    // RFC 5649: (32-byte context digest + 32 bytes) padded to 64, plus the 8-byte integrity block.
    assert_eq!(ct.len(), 72);
    for _ in 0..20 {
        assert_eq!(p.decrypt(&key, &ct, &a).await.unwrap().expose(), &[9u8; 32]);
    }
    assert_eq!(
        p.lookups(),
        1,
        "the key handle is looked up once, then cached"
    );
    let e = p
        .decrypt(&key, &ct, &ctx(&[("cluster_id", "c2"), ("region", "eu")]))
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Invalid(_)), "{e:?}");
    let mut altered = ct.clone();
    altered[10] ^= 1;
    let e = p.decrypt(&key, &altered, &a).await.unwrap_err();
    assert!(matches!(e, ProviderError::Invalid(_)), "{e:?}");
    let missing = openkcm_providers::KeyRef {
        key_id: "no-such-label".into(),
        ..key.clone()
    };
    let e = p.encrypt(&missing, b"x", &a).await.unwrap_err();
    assert!(matches!(e, ProviderError::NotFound(_)), "{e:?}");
    // The dev seal's key, made on the token first, as an HSM administrator would.
    p.create("dev-seal").await.unwrap();
}

fn dev_seal(hsm: &SoftHsm) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let extra = [
        "--seal",
        "pkcs11",
        "--pkcs11-module",
        &hsm.module,
        "--pkcs11-token",
        SOFTHSM_TOKEN,
        "--seal-key",
        "dev-seal",
    ];
    let conf = hsm.conf.display().to_string();
    let env = [
        ("SOFTHSM2_CONF", conf.as_str()),
        ("OPENKCM_PKCS11_PIN", SOFTHSM_PIN),
    ];
    let started = Instant::now();
    let mut dev = Dev::spawn_with(&data, &["demo"], None, &env, &extra, "OPENKCM READY");
    let first = started.elapsed();
    let blob: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.join("seal/master-key.provider-sealed.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (blob["provider"].clone(), blob["key_id"].clone()),
        ("pkcs11".into(), "dev-seal".into())
    );
    let uid = s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    let key = s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex");
    dev.stop();
    let started = Instant::now();
    let mut dev = Dev::spawn_with(&data, &["demo"], None, &env, &extra, "OPENKCM READY");
    let restart = started.elapsed();
    assert_eq!(
        s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex"),
        key
    );
    dev.stop();
    eprintln!(
        "AUTO-UNSEAL TIMING pkcs11 (SoftHSM2): first boot (new MasterKey) {} ms, restart {} ms (process start to OPENKCM READY)",
        first.as_millis(),
        restart.as_millis()
    );

    // A wrong PIN (in a fresh process, where no login exists yet): the node refuses to start and says why, without
    // the PIN.
    let out = std::process::Command::new(common::BIN)
        .arg("dev")
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--edge-addr",
            "127.0.0.1:0",
            "--core-addr",
            "127.0.0.1:0",
            "--operator-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env("SOFTHSM2_CONF", &conf)
        .env("OPENKCM_PKCS11_PIN", "9999")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("denied access") && err.contains("PIN is incorrect"),
        "{err}"
    );
    assert!(!err.contains("9999"), "{err}");
}
