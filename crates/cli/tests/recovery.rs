//! Auto-unseal through AWS KMS (the moto server), recovery shares and seal migration (DESIGN §3.3, issue 5):
//! the `aws-kms` driver's context binding and error classes; then end to end — `openkcm dev --seal aws-kms` with
//! recovery shares → keys made → the customer's KMS key is lost (scheduled for deletion) → the node stays sealed
//! and says why → `openkcm operator recover` with two of three shares → `openkcm operator migrate-seal --to
//! vault-transit` (a real OpenBao) → restart on OpenBao → every key made before still decrypts.
//! Outside CI the tests are skipped, loudly, when moto or OpenBao is missing; in CI that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::ctx;
use common::services::{bao, free_port, moto, Bao, Moto};
use common::{s, Dev};
use openkcm_providers::{KeyProvider, ProviderError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn aws_kms_driver_binds_the_encryption_context_and_normalises_errors_on_moto() {
    let Some(bin) = moto() else { return };
    let moto = Moto::start(&bin);
    let p = moto.provider();
    let key = p.create("openkcm-test").await.unwrap();
    let d = p.describe(&key).await.unwrap();
    assert!(d.enabled);
    let a = ctx(&[("cluster_id", "c1"), ("region", "eu")]);
    let ct = p.encrypt(&key, &[7u8; 32], &a).await.unwrap();
    assert_eq!(p.decrypt(&key, &ct, &a).await.unwrap().expose(), &[7u8; 32]);
    // The alias names the same key.
    let alias = openkcm_providers::KeyRef {
        key_id: "alias/openkcm-test".into(),
        ..key.clone()
    };
    assert_eq!(
        p.decrypt(&alias, &ct, &a).await.unwrap().expose(),
        &[7u8; 32]
    );
    // Another context, or none, does not decrypt.
    for other in [ctx(&[("cluster_id", "c2"), ("region", "eu")]), ctx(&[])] {
        let e = p.decrypt(&key, &ct, &other).await.unwrap_err();
        assert!(matches!(e, ProviderError::Invalid(_)), "{e:?}");
    }
    // A missing key, a disabled key, an unreachable endpoint. (moto reports a disabled key in DescribeKey but, unlike
    // AWS, still encrypts and decrypts with it, so the Disabled class cannot be shown against it.)
    let missing = openkcm_providers::KeyRef {
        key_id: "alias/nope".into(),
        ..key.clone()
    };
    let e = p.encrypt(&missing, b"x", &a).await.unwrap_err();
    assert!(matches!(e, ProviderError::NotFound(_)), "{e:?}");
    p.disable(&key).await.unwrap();
    assert!(!p.describe(&key).await.unwrap().enabled);
    let down = openkcm_providers::aws_kms::AwsKms::new(&openkcm_providers::aws_kms::AwsKmsConfig {
        region: "eu-central-1".into(),
        endpoint: Some(format!("http://127.0.0.1:{}", free_port())),
        access_key_id: "testing".into(),
        secret_access_key: "testing".to_owned().into(),
        session_token: None,
    });
    let e = down.encrypt(&key, b"x", &a).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
}

/// Three share holders (age identity files) and their public keys.
fn holders(dir: &Path) -> (Vec<PathBuf>, Vec<String>) {
    use age::secrecy::ExposeSecret;
    (1..=3)
        .map(|i| {
            let id = age::x25519::Identity::generate();
            let path = dir.join(format!("holder-{i}.txt"));
            std::fs::write(&path, id.to_string().expose_secret()).unwrap();
            (path, id.to_public().to_string())
        })
        .unzip()
}

fn status(dev: &Dev) -> serde_json::Value {
    let (ok, out, err) = dev.operator(&["seal-status"]);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn lost_kms_key_is_recovered_with_shares_and_migrated_to_openbao_keeping_every_key() {
    let (Some(moto_bin), Some(bao_bin)) = (moto(), bao()) else {
        return;
    };
    let moto = Moto::start(&moto_bin);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kms = moto.provider();
    let seal_key = rt.block_on(kms.create("openkcm-seal")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ids, publics) = holders(dir.path());
    let mut aws_args: Vec<String> = [
        "--seal",
        "aws-kms",
        "--aws-endpoint",
        &moto.endpoint,
        "--seal-key",
        "alias/openkcm-seal",
        "--recovery-shares",
        "3",
        "--recovery-threshold",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for p in &publics {
        aws_args.extend(["--recipient".to_owned(), p.clone()]);
    }
    let extra: Vec<&str> = aws_args.iter().map(String::as_str).collect();
    let env = Moto::env();

    // First start: zero-touch through AWS KMS, recovery shares written.
    let started = Instant::now();
    let mut dev = Dev::spawn_with(&data, &["demo"], None, &env, &extra, "OPENKCM READY");
    let first_boot = started.elapsed();
    let ceremony = data.join("ceremony");
    for i in 1..=3 {
        assert!(ceremony.join(format!("recovery-share-{i}.age")).is_file());
    }
    let st = status(&dev);
    assert_eq!(st["mode"], "aws-kms");
    assert_eq!(
        (st["threshold"].clone(), st["shares"].clone()),
        (2.into(), 3.into())
    );
    let blob: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.join("seal/master-key.provider-sealed.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(blob["provider"], "aws-kms");
    assert_eq!(blob["key_region"], "eu-central-1");
    let mut keys = Vec::new();
    for _ in 0..3 {
        let uid = s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
        dev.kmip("demo", &["activate", &uid]).unwrap();
        let key = s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex");
        keys.push((uid, key));
    }
    dev.stop();
    let started = Instant::now();
    let mut dev = Dev::spawn_with(&data, &["demo"], None, &env, &extra, "OPENKCM READY");
    let restart = started.elapsed();
    dev.stop();
    eprintln!(
        "AUTO-UNSEAL TIMING aws-kms (moto): first boot (new MasterKey, recovery shares) {} ms, restart {} ms (process start to OPENKCM READY)",
        first_boot.as_millis(),
        restart.as_millis()
    );

    // The customer's KMS key is lost (moto restarted empty: no key of any id exists any more; moto would still
    // decrypt with a key pending deletion): the node comes up sealed and says why.
    let _ = seal_key;
    let _moto = moto.restart();
    let dev = Dev::spawn_with(&data, &["demo"], None, &env, &extra, "OPENKCM SEALED");
    let st = status(&dev);
    assert_eq!(st["sealed"], true);
    let reason = st["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("no such key"), "{st}");
    assert!(dev
        .kmip("demo", &["get", &keys[0].0])
        .unwrap_err()
        .contains("sealed"));
    // `unseal` is not the way for an auto-unseal node's shares.
    let share = |i: usize| ceremony.join(format!("recovery-share-{i}.age"));
    let (ok, _, err) = dev.operator(&[
        "unseal",
        "--identity",
        ids[0].to_str().unwrap(),
        "--share-file",
        share(1).to_str().unwrap(),
    ]);
    assert!(
        !ok,
        "unseal with a recovery share on an auto node must be refused"
    );
    assert!(err.contains("openkcm operator recover"), "{err}");
    // Asking the seal again: 503 with the reason and the way out.
    let (ok, _, err) = dev.operator(&["unseal", "--auto"]);
    assert!(
        !ok && err.contains("HTTP 503") && err.contains("operator recover"),
        "{err}"
    );

    // Two holders recover the MasterKey without AWS.
    let recover = |i: usize| {
        let (ok, out, err) = dev.operator(&[
            "recover",
            "--identity",
            ids[i - 1].to_str().unwrap(),
            "--share-file",
            share(i).to_str().unwrap(),
        ]);
        assert!(ok, "recover failed: {err}");
        out
    };
    assert!(recover(3).contains("1/2"));
    let out = recover(1);
    assert!(
        out.contains("Recovered") && out.contains("migrate-seal"),
        "{out}"
    );
    dev.wait_line("OPENKCM READY", Duration::from_secs(10));
    let st = status(&dev);
    assert!(
        st["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("migrate the seal"),
        "{st}"
    );
    for (uid, key) in &keys {
        assert_eq!(
            &s(&dev.kmip("demo", &["get", uid]).unwrap(), "key_hex"),
            key
        );
    }

    // Migrate the seal to a transit key in OpenBao.
    let bao = Bao::start(&bao_bin, free_port());
    let out = std::process::Command::new(common::BIN)
        .args(["operator", "migrate-seal", "--to", "vault-transit"])
        .arg("--data-dir")
        .arg(&data)
        .args(["--vault-addr", &format!("http://{}", bao.addr)])
        .args(["--seal-key", "openkcm-seal"])
        .env("OPENKCM_VAULT_TOKEN", &bao.token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let blob: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.join("seal/master-key.provider-sealed.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(blob["provider"], "vault-transit");
    let mut dev = dev;
    dev.stop();

    // Started with the old seal, the node says where the MasterKey is now.
    let refused = std::process::Command::new(common::BIN)
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
        .args(&extra)
        .envs(env)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("start it with --seal vault-transit"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Restart on OpenBao: zero-touch again, every key made under the old seal decrypts.
    let args = bao.dev_args();
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [("OPENKCM_VAULT_TOKEN", bao.token.as_str())];
    let mut dev = Dev::spawn_with(&data, &["demo"], None, &env, &extra, "OPENKCM READY");
    let st = status(&dev);
    assert_eq!(
        (st["mode"].clone(), st["sealed"].clone()),
        ("vault-transit".into(), false.into())
    );
    // The recovery shares still belong to this MasterKey.
    assert_eq!(st["threshold"], 2);
    for (uid, key) in &keys {
        assert_eq!(
            &s(&dev.kmip("demo", &["get", uid]).unwrap(), "key_hex"),
            key
        );
        let ct = dev
            .kmip("demo", &["encrypt", uid, "--data-hex", "00112233"])
            .unwrap();
        let pt = dev
            .kmip(
                "demo",
                &[
                    "decrypt",
                    uid,
                    "--data-hex",
                    &s(&ct, "data_hex"),
                    "--iv",
                    &s(&ct, "iv_hex"),
                    "--tag",
                    &s(&ct, "tag_hex"),
                ],
            )
            .unwrap();
        assert_eq!(s(&pt, "data_hex"), "00112233");
    }
    dev.stop();
}
