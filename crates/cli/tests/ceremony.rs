//! The Shamir key ceremony end to end, through the real binary (DESIGN §3.2, issue 5):
//! `openkcm dev --seal shamir` with three age recipients → sealed → unseal with two decrypted shares → a key made
//! through PyKMIP → restart (sealed again) → unseal with two *other* shares → PyKMIP gets the same key bytes.
//! Also: the operator API's classes of error (a refused share is 4xx, never 500), identities, the 503 while sealed,
//! `openkcm operator init` on an uninitialised node, and no share bytes in any log line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{pykmip_python, Dev};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Three share holders: age identity files and their public keys.
fn holders(dir: &Path, n: usize) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut publics = Vec::new();
    for i in 1..=n {
        let id = age::x25519::Identity::generate();
        let path = dir.join(format!("holder-{i}.txt"));
        use age::secrecy::ExposeSecret;
        std::fs::write(&path, format!("{}\n", id.to_string().expose_secret())).unwrap();
        files.push(path);
        publics.push(id.to_public().to_string());
    }
    (files, publics)
}

/// The decrypted share document of `share` for the holder with identity file `identity`.
fn decrypt(share: &Path, identity: &Path) -> String {
    let ids = age::IdentityFile::from_buffer(std::io::BufReader::new(
        std::fs::File::open(identity).unwrap(),
    ))
    .unwrap()
    .into_identities()
    .unwrap();
    let armored = std::fs::read(share).unwrap();
    let decryptor =
        age::Decryptor::new_buffered(age::armor::ArmoredReader::new(&armored[..])).unwrap();
    let mut out = String::new();
    use std::io::Read;
    decryptor
        .decrypt(ids.iter().map(|i| i.as_ref()))
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out
}

fn shamir_args(publics: &[String], threshold: &str) -> Vec<String> {
    let mut args = vec![
        "--seal".to_owned(),
        "shamir".to_owned(),
        "--threshold".to_owned(),
        threshold.to_owned(),
    ];
    for p in publics {
        args.push("--recipient".into());
        args.push(p.clone());
    }
    args
}

fn start_sealed(data: &Path, log: &Path, extra: &[String]) -> Dev {
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    Dev::spawn_with(data, &["demo"], Some(log), &[], &extra, "OPENKCM SEALED")
}

/// One PyKMIP call (`tests/pykmip/key_once.py`): (exit code, stdout).
fn pykmip(py: &str, dev: &Dev, args: &[&str]) -> (i32, String) {
    let (host, port) = dev.edge.rsplit_once(':').unwrap();
    let (cert, key) = dev.cert("demo");
    let out = Command::new(py)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/pykmip/key_once.py"
        ))
        .args([host, port])
        .arg(&dev.ca)
        .arg(cert)
        .arg(key)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

fn unseal(dev: &Dev, share: &Path, identity: &Path) -> String {
    let (ok, stdout, stderr) = dev.operator(&[
        "unseal",
        "--identity",
        identity.to_str().unwrap(),
        "--share-file",
        share.to_str().unwrap(),
    ]);
    assert!(ok, "unseal failed: {stderr}");
    stdout
}

fn status(dev: &Dev) -> serde_json::Value {
    let (ok, stdout, stderr) = dev.operator(&["seal-status"]);
    assert!(ok, "seal-status failed: {stderr}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn ceremony_restart_and_unseal_with_two_of_three_age_shares_serves_the_old_key_to_pykmip() {
    let Some(py) = pykmip_python("the key-ceremony end-to-end test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("dev.log");
    let (ids, publics) = holders(dir.path(), 3);
    let ceremony = data.join("ceremony");

    // First start: the ceremony, then sealed.
    let mut dev = start_sealed(&data, &log, &shamir_args(&publics, "2"));
    for i in 1..=3 {
        let text = std::fs::read_to_string(ceremony.join(format!("share-{i}.age"))).unwrap();
        assert!(text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ceremony.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["threshold"], 2);
    assert_eq!(manifest["shares"], 3);
    let st = status(&dev);
    assert_eq!(st["sealed"], true);
    assert_eq!(st["initialized"], true);
    assert_eq!(st["mode"], "shamir");
    assert_eq!(
        (st["threshold"].clone(), st["shares"].clone()),
        (2.into(), 3.into())
    );
    assert_eq!(st["progress"], 0);
    assert_eq!(st["cluster_id"], manifest["cluster_id"]);
    assert!(st["nonce"].as_str().is_some_and(|n| !n.is_empty()));

    // Sealed: the application's request fails with a message that says so.
    let (code, out) = pykmip(&py, &dev, &["create"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("sealed"), "{out}");

    // Holders 1 and 2; share 1 twice counts once.
    let share = |i: usize| ceremony.join(format!("share-{i}.age"));
    assert!(unseal(&dev, &share(1), &ids[0]).contains("1/2"));
    assert!(unseal(&dev, &share(1), &ids[0]).contains("counts once"));
    assert!(unseal(&dev, &share(2), &ids[1]).contains("Unsealed"));
    dev.wait_line("OPENKCM READY", Duration::from_secs(10));
    let (code, uid) = pykmip(&py, &dev, &["create"]);
    assert_eq!(code, 0, "{uid}");
    let (code, key_hex) = pykmip(&py, &dev, &["get", &uid]);
    assert_eq!(code, 0, "{key_hex}");
    assert_eq!(key_hex.len(), 64);
    dev.stop();

    // Restart: sealed again, whatever was unsealed before; the ceremony is not repeated.
    let mut dev = start_sealed(
        &data,
        &log.with_extension("2.log"),
        &["--seal".into(), "shamir".into()],
    );
    let (code, out) = pykmip(&py, &dev, &["get", &uid]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("sealed"), "{out}");
    // Holders 3 and 2 this time.
    assert!(unseal(&dev, &share(3), &ids[2]).contains("1/2"));
    let started = std::time::Instant::now();
    assert!(unseal(&dev, &share(2), &ids[1]).contains("Unsealed"));
    let last_share = started.elapsed();
    dev.wait_line("OPENKCM READY", Duration::from_secs(10));
    eprintln!(
        "UNSEAL TIMING shamir 2-of-3: the last `openkcm operator unseal` (decrypt the age share, submit, combine, verify, open the Core) took {} ms",
        last_share.as_millis()
    );
    let (code, again) = pykmip(&py, &dev, &["get", &uid]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(again, key_hex, "the key created before the restart");

    // `operator seal`: key operations stop at once (the edge's cached copy too) until the next unseal.
    let (ok, _, stderr) = dev.operator(&["seal"]);
    assert!(ok, "{stderr}");
    let (code, out) = pykmip(&py, &dev, &["get", &uid]);
    assert_eq!(code, 3, "a sealed node served a key: {out}");
    dev.stop();

    // No share byte, share document or identity in any log line at any level (the logs are at debug level).
    let logs = std::fs::read_to_string(&log).unwrap()
        + &std::fs::read_to_string(log.with_extension("2.log")).unwrap();
    assert!(
        logs.contains("unseal share accepted"),
        "the logs are the ones expected"
    );
    for i in 1..=3 {
        let doc: serde_json::Value =
            serde_json::from_str(&decrypt(&share(i), &ids[i - 1])).unwrap();
        let bytes = doc["share"].as_str().unwrap();
        for window in [&bytes[..16], &bytes[24..40], &bytes[50..66]] {
            assert!(!logs.contains(window), "share {i} bytes in the logs");
        }
        let secret = std::fs::read_to_string(&ids[i - 1]).unwrap();
        assert!(!logs.contains(secret.trim()));
    }
}

/// The operator API over HTTPS with a given certificate: (status, JSON body).
async fn api(
    dev: &Dev,
    cert: &str,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    openkcm_net::tls::install_default_provider();
    let pki = dev.data.join("pki");
    let config = openkcm_net::tls::client_config(&openkcm_net::tls::TlsFiles {
        ca: dev.ca.clone(),
        cert: pki.join(format!("{cert}.crt")),
        key: pki.join(format!("{cert}.key")),
    })
    .unwrap();
    let body = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).unwrap()
    };
    let (status, bytes) = openkcm_net::https::request(
        &dev.operator,
        "localhost",
        config,
        method,
        path,
        body,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_api_init_refusals_are_client_errors_and_only_operators_act() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("dev.log");
    let (ids, publics) = holders(dir.path(), 3);
    // Shamir without recipients: an uninitialised, sealed node waiting for `operator init`.
    let mut dev = start_sealed(&data, &log, &["--seal".into(), "shamir".into()]);
    let (code, st) = api(
        &dev,
        "demo-default",
        "GET",
        "/v1/sys/seal-status",
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(st["initialized"], false);
    assert_eq!(st["sealed"], true);
    assert!(st["nonce"].is_null());

    // While sealed, every non-sys path answers 503 {"error":"sealed"}.
    let (code, body) = api(
        &dev,
        "operator-admin",
        "GET",
        "/v1/tenants/demo/systems/demo-system",
        serde_json::Value::Null,
    )
    .await;
    assert_eq!((code, body), (503, serde_json::json!({"error": "sealed"})));

    // Applications may read the status but never act.
    for path in ["/v1/sys/init", "/v1/sys/unseal", "/v1/sys/seal"] {
        let (code, body) = api(&dev, "demo-default", "POST", path, serde_json::json!({})).await;
        assert_eq!(code, 403, "{path}: {body}");
    }

    // Parameter errors through the CLI: exit non-zero with the reason, nothing written.
    let out_dir = dir.path().join("ceremony");
    let init = |extra: &[&str]| {
        let mut args = vec!["init", "--out-dir", out_dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        dev.operator(&args)
    };
    let (ok, _, err) = init(&[
        "--threshold",
        "3",
        "--shares",
        "2",
        "--recipient",
        &publics[0],
        "--recipient",
        &publics[1],
    ]);
    assert!(!ok && err.contains("below the threshold"), "{err}");
    let (ok, _, err) = init(&["--threshold", "0", "--recipient", &publics[0]]);
    assert!(!ok && err.contains("at least 1"), "{err}");
    let (ok, _, err) = init(&[
        "--threshold",
        "2",
        "--shares",
        "256",
        "--recipient",
        &publics[0],
    ]);
    assert!(!ok && err.contains("at most 255"), "{err}");
    let (ok, _, err) = init(&["--threshold", "1"]);
    assert!(!ok && err.contains("no recipients"), "{err}");
    assert!(!out_dir.join("share-1.age").exists());
    // Duplicate holders, and a private key given as a recipient: refused, and the key is never echoed.
    let (ok, _, err) = init(&[
        "--threshold",
        "2",
        "--recipient",
        &publics[0],
        "--recipient",
        &publics[0],
    ]);
    assert!(!ok && err.contains("same public key"), "{err}");
    let secret = std::fs::read_to_string(&ids[0]).unwrap();
    let (ok, _, err) = init(&["--threshold", "1", "--recipient", ids[0].to_str().unwrap()]);
    assert!(!ok && err.contains("PRIVATE key"), "{err}");
    assert!(
        !err.contains(&secret.trim()[15..35]),
        "the private key was echoed: {err}"
    );
    // An --out-dir that cannot be made: nothing is done on the node.
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let (ok, _, err) = dev.operator(&[
        "init",
        "--threshold",
        "1",
        "--recipient",
        &publics[0],
        "--out-dir",
        blocker.join("sub").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("nothing was done"), "{err}");
    let (_, st) = api(
        &dev,
        "operator-admin",
        "GET",
        "/v1/sys/seal-status",
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(st["initialized"], false);
    // Malformed bodies name the problem (field names only), and /v1/sys itself is no endpoint.
    let (code, body) = api(
        &dev,
        "operator-admin",
        "POST",
        "/v1/sys/init",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("missing field `shares`"),
        "{body}"
    );
    let (code, _) = api(
        &dev,
        "operator-admin",
        "POST",
        "/v1/sys/unseal",
        serde_json::json!([]),
    )
    .await;
    assert_eq!(code, 400);
    let (code, _) = api(
        &dev,
        "operator-admin",
        "GET",
        "/v1/sys",
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(code, 404);

    // The ceremony through the API, with recipients from a file.
    let recipients = dir.path().join("recipients.txt");
    std::fs::write(
        &recipients,
        format!(
            "# holders\n{}\n\n{}\n{}\n",
            publics[0], publics[1], publics[2]
        ),
    )
    .unwrap();
    let (ok, stdout, err) = init(&[
        "--threshold",
        "2",
        "--recipients-file",
        recipients.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("3 shares, 2 needed"), "{stdout}");
    let (code, body) = api(
        &dev,
        "operator-admin",
        "POST",
        "/v1/sys/init",
        serde_json::json!({"shares": 3, "threshold": 2, "recipients": publics}),
    )
    .await;
    assert_eq!(code, 409, "a second ceremony: {body}");

    let (_, st) = api(
        &dev,
        "operator-admin",
        "GET",
        "/v1/sys/seal-status",
        serde_json::Value::Null,
    )
    .await;
    let nonce = st["nonce"].as_str().unwrap().to_owned();
    let doc1 = decrypt(&out_dir.join("share-1.age"), &ids[0]);
    let doc2 = decrypt(&out_dir.join("share-2.age"), &ids[1]);

    // Refusals are 400 with a sentence, never 500.
    let unseal = |share: String, nonce: String| {
        api(
            &dev,
            "operator-admin",
            "POST",
            "/v1/sys/unseal",
            serde_json::json!({"share": share, "nonce": nonce}),
        )
    };
    let (code, body) = unseal(doc1.clone(), "not-the-nonce".into()).await;
    assert_eq!(code, 400);
    assert!(body["error"].as_str().unwrap().contains("nonce"), "{body}");
    let (code, body) = unseal("{\"garbage\":1}".into(), nonce.clone()).await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = api(
        &dev,
        "operator-admin",
        "POST",
        "/v1/sys/unseal",
        serde_json::json!({"share": doc1}),
    )
    .await;
    assert_eq!(code, 400, "a share without its nonce: {body}");
    let (code, body) = api(
        &dev,
        "operator-admin",
        "POST",
        "/v1/sys/unseal",
        serde_json::json!({"bogus": true}),
    )
    .await;
    assert_eq!(code, 400, "unknown fields: {body}");

    // A corrupt second share: the check value fails, 400, progress reset, still sealed, new nonce.
    let (code, body) = unseal(doc1.clone(), nonce.clone()).await;
    assert_eq!((code, body["progress"].clone()), (200, 1.into()), "{body}");
    let mut corrupt: serde_json::Value = serde_json::from_str(&doc2).unwrap();
    let mut bytes = hex_decode(corrupt["share"].as_str().unwrap());
    bytes[3] ^= 0x10;
    corrupt["share"] = hex_encode(&bytes).into();
    let (code, body) = unseal(corrupt.to_string(), nonce.clone()).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("check value"),
        "{body}"
    );
    assert_eq!(body["seal_status"]["sealed"], true);
    assert_eq!(body["seal_status"]["progress"], 0);
    let new_nonce = body["seal_status"]["nonce"].as_str().unwrap().to_owned();
    assert_ne!(new_nonce, nonce);

    // A recovery reset on a Shamir node is refused: it would clear the unseal progress of other holders.
    let (code, body) = api(
        &dev,
        "operator-admin",
        "POST",
        "/v1/sys/recover",
        serde_json::json!({"reset": true}),
    )
    .await;
    assert_eq!(code, 409, "{body}");
    // A share pasted into the nonce field is not echoed back (8 characters at most).
    let (code, body) = unseal(
        doc1.clone(),
        "62fa446248465bf18221ea124a8f9546f6dd059e".into(),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(!body.to_string().contains("62fa446248465bf1"), "{body}");

    // Reset issues yet another nonce; then two good shares unseal.
    let (code, body) = api(
        &dev,
        "operator-admin",
        "POST",
        "/v1/sys/unseal",
        serde_json::json!({"reset": true}),
    )
    .await;
    assert_eq!(code, 200);
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    assert_ne!(nonce, new_nonce);
    unseal(doc2.clone(), nonce.clone()).await;
    let (code, body) = unseal(doc1.clone(), nonce.clone()).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["sealed"], false);
    dev.wait_line("OPENKCM READY", Duration::from_secs(10));
    let uid = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    assert!(dev.kmip("demo", &["attributes", &uid]).is_ok());
    let (code, _) = unseal(doc1, nonce).await;
    assert_eq!(code, 409, "unsealing an unsealed node");
    // Unsealed: unknown paths are 404 now, not 503.
    let (code, _) = api(
        &dev,
        "operator-admin",
        "GET",
        "/v1/tenants/demo",
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(code, 404);
    // Seal (operator only), then the KMIP side reports it.
    let (code, body) = api(
        &dev,
        "operator-admin",
        "POST",
        "/v1/sys/seal",
        serde_json::json!({}),
    )
    .await;
    assert_eq!((code, body["sealed"].clone()), (200, true.into()));
    dev.wait_line("OPENKCM SEALED", Duration::from_secs(10));
    let err = dev.kmip("demo", &["create"]).unwrap_err();
    assert!(err.contains("sealed"), "{err}");
    // Operations the edge could answer from its vault alone are refused too while the Core is sealed.
    for args in [
        vec!["attributes", uid.as_str()],
        vec!["locate", "--name", "nothing"],
        vec!["destroy", uid.as_str()],
    ] {
        let err = dev.kmip("demo", &args).unwrap_err();
        assert!(err.contains("sealed"), "{args:?}: {err}");
    }
    // The Core's own KMIP port: an application is told it has no business there, sealed or not.
    let err = dev
        .kmip_at(&dev.core.clone(), "demo", &["create"])
        .unwrap_err();
    assert!(
        err.contains("Permission Denied") && !err.contains("sealed"),
        "{err}"
    );
    // A seal migration may not make the node read or load its own files for the caller: no PKCS#11 module it was
    // not configured with (loading one runs its code), no token or key file, no local provider.
    for (to, expected) in [
        (
            serde_json::json!({"provider": "pkcs11", "module": "/tmp/not-allowed.so", "token_label": "t", "pin": "1"}),
            "only the PKCS#11 modules it was configured with",
        ),
        (
            serde_json::json!({"provider": "gcp-kms", "token_file": "/etc/passwd"}),
            "not a file name",
        ),
        (
            serde_json::json!({"provider": "kmip", "addr": "127.0.0.1:1", "ca_pem": "x", "cert": "/x.crt", "key": "/x.key"}),
            "not file names",
        ),
        (
            serde_json::json!({"provider": "local", "dir": "/tmp"}),
            "development only",
        ),
    ] {
        let (code, body) = api(
            &dev,
            "operator-admin",
            "POST",
            "/v1/sys/migrate-seal",
            serde_json::json!({"to": to, "key_id": "k"}),
        )
        .await;
        assert_eq!(code, 400, "{to}: {body}");
        assert!(body["error"].as_str().unwrap().contains(expected), "{body}");
    }
    // {"reset": true} with a share is ambiguous: refused.
    let (code, _) = api(
        &dev,
        "operator-admin",
        "POST",
        "/v1/sys/unseal",
        serde_json::json!({"reset": true, "share": "x"}),
    )
    .await;
    assert_eq!(code, 400);
    dev.stop();
}

#[test]
fn dev_refuses_seal_flags_its_seal_would_ignore() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--threshold", "2"],
        vec!["--seal", "file", "--shares", "3"],
        vec![
            "--recipient",
            "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq",
        ],
        vec!["--seal", "shamir", "--recovery-shares", "3"],
    ] {
        let out = Command::new(common::BIN)
            .arg("dev")
            .arg("--data-dir")
            .arg(dir.path())
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
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("belong") || err.contains("would be ignored"),
            "{args:?}: {err}"
        );
    }
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
