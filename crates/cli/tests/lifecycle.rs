//! End to end through `openkcm dev` with the `openkcm kmip` client: lifecycle, GCM and CBC, tenant isolation,
//! restart persistence.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{s, Dev};

fn cbc_decrypt_outside(key: &[u8], iv: &[u8], ct: &[u8]) -> Vec<u8> {
    use aws_lc_rs::cipher::{
        DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey, AES_256,
    };
    let k =
        PaddedBlockDecryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, key).unwrap()).unwrap();
    let mut buf = ct.to_vec();
    let iv: [u8; 16] = iv.try_into().unwrap();
    k.decrypt(&mut buf, DecryptionContext::Iv128(iv.into()))
        .unwrap()
        .to_vec()
}

fn gcm_decrypt_outside(key: &[u8], iv: &[u8], aad: &[u8], ct: &[u8], tag: &[u8]) -> Vec<u8> {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap());
    let mut buf = [ct, tag].concat();
    let nonce = Nonce::try_assume_unique_for_key(iv).unwrap();
    k.open_in_place(nonce, Aad::from(aad), &mut buf)
        .unwrap()
        .to_vec()
}

#[test]
fn kmip_cli_runs_the_whole_lifecycle_with_gcm_and_cbc() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let created = dev
        .kmip("demo", &["create", "--name", "orders-key"])
        .unwrap();
    let uid = s(&created, "unique_identifier");

    // Pre-Active: no encryption yet, but Get works.
    let err = dev
        .kmip("demo", &["encrypt", &uid, "--text", "hello"])
        .unwrap_err();
    assert!(err.contains("Pre-Active"), "{err}");
    dev.kmip("demo", &["activate", &uid]).unwrap();
    let key = hex::decode(s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex")).unwrap();
    assert_eq!(key.len(), 32);

    // GCM round trip with server-generated IV, tag in its own field, and AAD.
    let enc = dev
        .kmip(
            "demo",
            &["encrypt", &uid, "--text", "attack at dawn", "--aad", "0a0b"],
        )
        .unwrap();
    let (ct, iv, tag) = (s(&enc, "data_hex"), s(&enc, "iv_hex"), s(&enc, "tag_hex"));
    assert_eq!(hex::decode(&iv).unwrap().len(), 12);
    assert_eq!(hex::decode(&tag).unwrap().len(), 16);
    let dec = dev
        .kmip(
            "demo",
            &[
                "decrypt",
                &uid,
                "--data-hex",
                &ct,
                "--iv",
                &iv,
                "--tag",
                &tag,
                "--aad",
                "0a0b",
            ],
        )
        .unwrap();
    assert_eq!(hex::decode(s(&dec, "data_hex")).unwrap(), b"attack at dawn");
    let outside = gcm_decrypt_outside(
        &key,
        &hex::decode(&iv).unwrap(),
        &[0x0a, 0x0b],
        &hex::decode(&ct).unwrap(),
        &hex::decode(&tag).unwrap(),
    );
    assert_eq!(outside, b"attack at dawn");
    // A wrong tag is a cryptographic failure, not a crash.
    let bad_tag = "00".repeat(16);
    let err = dev
        .kmip(
            "demo",
            &[
                "decrypt",
                &uid,
                "--data-hex",
                &ct,
                "--iv",
                &iv,
                "--tag",
                &bad_tag,
                "--aad",
                "0a0b",
            ],
        )
        .unwrap_err();
    assert!(err.contains("0xA"), "expected Cryptographic Failure: {err}");

    // CBC with PKCS5 padding, decrypted outside the product with the fetched key.
    let enc = dev
        .kmip(
            "demo",
            &[
                "encrypt",
                &uid,
                "--mode",
                "cbc",
                "--text",
                "sixteen byte msg plus more",
            ],
        )
        .unwrap();
    let (ct, iv) = (s(&enc, "data_hex"), s(&enc, "iv_hex"));
    assert_eq!(hex::decode(&ct).unwrap().len(), 32);
    assert_eq!(
        cbc_decrypt_outside(&key, &hex::decode(&iv).unwrap(), &hex::decode(&ct).unwrap()),
        b"sixteen byte msg plus more"
    );
    let dec = dev
        .kmip(
            "demo",
            &[
                "decrypt",
                &uid,
                "--mode",
                "cbc",
                "--data-hex",
                &ct,
                "--iv",
                &iv,
            ],
        )
        .unwrap();
    assert_eq!(
        hex::decode(s(&dec, "data_hex")).unwrap(),
        b"sixteen byte msg plus more"
    );

    // Locate by name.
    let found = dev
        .kmip("demo", &["locate", "--name", "orders-key"])
        .unwrap();
    assert_eq!(found["unique_identifiers"], serde_json::json!([uid]));
    let none = dev
        .kmip("demo", &["locate", "--name", "no-such-name"])
        .unwrap();
    assert_eq!(none["unique_identifiers"], serde_json::json!([]));

    // Attributes report the state.
    let attrs = dev.kmip("demo", &["attributes", &uid]).unwrap();
    assert_eq!(attrs["attributes"]["State"], 2);

    // Active keys cannot be destroyed; revoke first. A revoked (Deactivated) key no longer encrypts but, as KMIP
    // defines, still decrypts what it protected and can still be fetched.
    let err = dev.kmip("demo", &["destroy", &uid]).unwrap_err();
    assert!(err.contains("Active"), "{err}");
    dev.kmip("demo", &["revoke", &uid]).unwrap();
    assert_eq!(
        s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex"),
        hex::encode(&key)
    );
    let err = dev
        .kmip("demo", &["encrypt", &uid, "--text", "x"])
        .unwrap_err();
    assert!(err.contains("Deactivated"), "{err}");
    let dec = dev
        .kmip(
            "demo",
            &[
                "decrypt",
                &uid,
                "--mode",
                "cbc",
                "--data-hex",
                &ct,
                "--iv",
                &iv,
            ],
        )
        .unwrap();
    assert_eq!(
        hex::decode(s(&dec, "data_hex")).unwrap(),
        b"sixteen byte msg plus more"
    );
    dev.kmip("demo", &["destroy", &uid]).unwrap();
    let err = dev.kmip("demo", &["get", &uid]).unwrap_err();
    assert!(
        err.contains("Destroyed") || err.contains("destroyed"),
        "{err}"
    );
    let attrs = dev.kmip("demo", &["attributes", &uid]).unwrap();
    assert_eq!(attrs["attributes"]["State"], 5);
    assert!(dev
        .kmip("demo", &["locate", "--name", "orders-key"])
        .unwrap()["unique_identifiers"]
        .as_array()
        .unwrap()
        .is_empty());
    dev.stop();
}

#[test]
fn another_tenant_cannot_see_or_use_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo", "other"]);
    let uid = s(
        &dev.kmip("demo", &["create", "--name", "shared-name", "--activate"])
            .unwrap(),
        "unique_identifier",
    );
    for args in [
        vec!["get", uid.as_str()],
        vec!["encrypt", uid.as_str(), "--text", "x"],
        vec!["attributes", uid.as_str()],
        vec!["revoke", uid.as_str()],
        vec!["destroy", uid.as_str()],
        vec!["activate", uid.as_str()],
    ] {
        let err = dev.kmip("other", &args).unwrap_err();
        assert!(
            err.contains("reason 0x1)") && err.contains("no object"),
            "{args:?}: {err}"
        );
    }
    let found = dev
        .kmip("other", &["locate", "--name", "shared-name"])
        .unwrap();
    assert_eq!(found["unique_identifiers"], serde_json::json!([]));
    // The owner still has it, untouched.
    assert_eq!(
        s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex").len(),
        64
    );
    // Applications cannot use the Core's port directly.
    let err = dev
        .kmip_at(&dev.core.clone(), "demo", &["get", &uid])
        .unwrap_err();
    assert!(
        err.contains("0xC") || err.contains("edges only") || err.contains("not supported"),
        "{err}"
    );
    dev.stop();
}

#[test]
fn keys_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let uid = s(
        &dev.kmip("demo", &["create", "--activate"]).unwrap(),
        "unique_identifier",
    );
    let before = s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex");
    // A second process on the same data directory is refused while the first runs.
    let second = common::dev_refusal(dir.path());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another openkcm process is using the data directory"),
        "{err}"
    );
    // The directory is private to its owner.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    dev.stop();
    // A clean shutdown checkpoints the write-ahead logs: the .db files alone hold the keys.
    for db in ["core.db", "edge-vault.db"] {
        let wal = dir.path().join(format!("{db}-wal"));
        assert!(
            !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
            "{db}-wal left behind"
        );
        assert!(
            std::fs::metadata(dir.path().join(db)).unwrap().len() > 4096,
            "{db} is empty"
        );
    }
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let after = s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex");
    assert_eq!(before, after);
    dev.stop();
}

#[test]
fn the_edge_reconnects_to_the_core_after_idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    // The Core closes connections idle for 1 s; the edge's pooled connections to it must heal unseen.
    let mut dev = Dev::start_env(dir.path(), &["demo"], &[("OPENKCM_IDLE_TIMEOUT", "1")]);
    let uid = s(
        &dev.kmip("demo", &["create", "--activate"]).unwrap(),
        "unique_identifier",
    );
    let key = s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex");
    for round in 0..2 {
        std::thread::sleep(std::time::Duration::from_millis(2500));
        for i in 0..6 {
            let got = dev.kmip("demo", &["get", &uid]);
            assert_eq!(
                got.map(|v| s(&v, "key_hex")),
                Ok(key.clone()),
                "round {round}, get {i}"
            );
        }
        assert!(
            dev.kmip("demo", &["create"]).is_ok(),
            "round {round}: create after idle"
        );
    }
    dev.stop();
}

#[test]
fn lost_or_replaced_state_files_stop_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    dev.kmip("demo", &["create", "--activate"]).unwrap();
    dev.stop();
    let cases: [(&str, &[&str], &str); 4] = [
        (
            "edge vault deleted",
            &["edge-vault.db"],
            "edge-vault.db is missing, empty or was replaced",
        ),
        (
            "sealed MasterKey deleted",
            &["seal/master-key.sealed"],
            "master-key.sealed is missing although this cluster was initialised",
        ),
        ("CA key deleted", &["pki/ca.key"], "ca.key is missing but"),
        (
            "Core database deleted",
            &["core.db"],
            "core.db is missing or empty, although this cluster's Core storage was initialised",
        ),
    ];
    for (what, remove, expected) in cases {
        let copy = tempfile::tempdir().unwrap();
        common::copy_tree(dir.path(), copy.path());
        for f in remove {
            std::fs::remove_file(copy.path().join(f)).unwrap();
        }
        let out = common::dev_refusal(copy.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{what}: {err}");
        // The refused start made no empty database (nor a -wal file a restored copy would be read with).
        for f in remove.iter().filter(|f| f.ends_with(".db")) {
            for side in ["", "-wal", "-shm"] {
                let path = copy.path().join(format!("{f}{side}"));
                assert!(!path.exists(), "{what}: {} was created", path.display());
            }
        }
    }
    // An emptied (truncated) database is refused too, and SQLite is not let near it: no -wal file is made that a
    // backup copied back would be read with.
    for (db, expected) in [
        (
            "edge-vault.db",
            "edge-vault.db is missing, empty or was replaced",
        ),
        ("core.db", "core.db is missing or empty"),
    ] {
        let copy = tempfile::tempdir().unwrap();
        common::copy_tree(dir.path(), copy.path());
        let backup = std::fs::read(copy.path().join(db)).unwrap();
        std::fs::write(copy.path().join(db), b"").unwrap();
        let err = String::from_utf8_lossy(&common::dev_refusal(copy.path()).stderr).into_owned();
        assert!(err.contains(expected), "{err}");
        for side in ["-wal", "-shm"] {
            assert!(
                !copy.path().join(format!("{db}{side}")).exists(),
                "{db}{side}"
            );
        }
        assert_eq!(std::fs::metadata(copy.path().join(db)).unwrap().len(), 0);
        // The backup put back opens.
        std::fs::write(copy.path().join(db), backup).unwrap();
        let mut dev = Dev::start(copy.path(), &["demo"]);
        dev.stop();
    }
}

#[test]
fn a_new_development_ca_reissues_every_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    dev.stop();
    std::fs::remove_file(dir.path().join("pki/ca.key")).unwrap();
    std::fs::remove_file(dir.path().join("pki/ca.crt")).unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    // The reissued client certificate (and server certificate) chain to the new CA.
    assert!(dev.kmip("demo", &["create"]).is_ok());
    dev.stop();
}

#[test]
fn kmip_cli_dumps_messages_as_kmip_xml_with_secrets_redacted_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let uid = s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    let run = |extra: &[&str]| {
        let (cert, key) = dev.cert("demo");
        let out = std::process::Command::new(common::BIN)
            .args(["kmip", "--addr", &dev.edge, "--ca"])
            .arg(&dev.ca)
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .args(extra)
            .args(["get", &uid])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (stdout, xml) = run(&["--xml"]);
    let key_hex = s(&serde_json::from_str(&stdout).unwrap(), "key_hex");
    assert!(
        xml.contains("<!-- request -->") && xml.contains("<!-- response -->"),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<Operation type="Enumeration" value="Get"/>"#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<KeyMaterial type="ByteString" value="[32 bytes redacted]"/>"#),
        "{xml}"
    );
    assert!(
        !xml.contains(&key_hex),
        "the key leaked into the redacted dump"
    );
    let (_, full) = run(&["--xml", "--xml-secrets"]);
    assert!(
        full.contains(&key_hex),
        "--xml-secrets prints the key material"
    );
    // The full dump parses back with the XML decoder of the kmip crate.
    let response_xml = full.split("<!-- response -->").nth(1).unwrap();
    let parsed = openkcm_kmip::xml::from_xml(response_xml).unwrap();
    assert_eq!(parsed[0].tag, openkcm_kmip::tags::RESPONSE_MESSAGE);
    dev.stop();
}

#[test]
fn operator_rotates_the_ivk_and_every_key_stays_readable_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let uid = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    let key = common::s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex");
    let (ok, out, err) = dev.operator(&["rotate-ivk"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], 2, "{v}");
    assert_eq!(v["versions"][0]["state"], "GRACE", "{v}");
    assert_eq!(v["versions"][1]["state"], "ACTIVE", "{v}");
    assert_eq!(
        common::s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex"),
        key
    );
    dev.stop();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    assert_eq!(
        common::s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex"),
        key
    );
    let created = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    assert!(dev.kmip("demo", &["get", &created]).is_ok());
    // Pre-warm loads the tenant's keys.
    let (ok, out, err) = dev.operator(&["prewarm", "--tenant", "demo"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["systems"].clone(), v["services"].clone()),
        (1.into(), 1.into()),
        "{v}"
    );
    // An unknown tenant is not found; a name that is no tenant name is refused before any lookup (or log line).
    let (ok, _, err) = dev.operator(&["prewarm", "--tenant", "nobody"]);
    assert!(!ok && err.contains("404"), "{err}");
    let (ok, _, err) = dev.operator(&[
        "rotate-l3",
        "--tenant",
        "evil\nFORGED line",
        "--service",
        "default",
    ]);
    assert!(
        !ok && err.contains("400") && err.contains("\"tenant\" must be"),
        "{err}"
    );
    // Emergency: version 3, the older versions revoked, every key still readable.
    let (ok, out, err) = dev.operator(&["rotate-ivk", "--emergency"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], 3, "{v}");
    assert_eq!(v["versions"][0]["state"], "REVOKED", "{v}");
    assert_eq!(v["versions"][1]["state"], "REVOKED", "{v}");
    dev.stop();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    assert_eq!(
        common::s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex"),
        key
    );
    dev.stop();
}

#[test]
fn the_edge_follows_a_service_key_rotation_and_old_keys_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let old = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    let old_key = common::s(&dev.kmip("demo", &["get", &old]).unwrap(), "key_hex");
    let (ok, out, err) = dev.operator(&["rotate-l3", "--tenant", "demo", "--service", "default"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], 2, "{v}");
    // The edge's cached L3 is now Deactivated: the Core refuses to wrap under it and the edge moves to version 2.
    let new = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    let new_key = common::s(&dev.kmip("demo", &["get", &new]).unwrap(), "key_hex");
    dev.stop();
    // After a restart (no cached data keys) both unwrap: the old under version 1, the new under version 2.
    let mut dev = Dev::start(dir.path(), &["demo"]);
    assert_eq!(
        common::s(&dev.kmip("demo", &["get", &old]).unwrap(), "key_hex"),
        old_key
    );
    assert_eq!(
        common::s(&dev.kmip("demo", &["get", &new]).unwrap(), "key_hex"),
        new_key
    );
    let (ok, _, err) = dev.operator(&["rotate-l3", "--tenant", "demo", "--service", "nope"]);
    assert!(!ok && err.contains("404"), "{err}");
    dev.stop();
    // Envelope rotation: the old key, read after the rotation, was re-wrapped under the new service key (same
    // bytes, as the Get above showed).
    let l3 = v["unique_identifier"].as_str().unwrap().to_owned();
    let parent = common::wrapping_l3(dir.path(), &old);
    assert_eq!(
        parent, l3,
        "the old key is still wrapped under the rotated service key"
    );
}

#[test]
fn operator_rotates_a_system_key_rewraps_and_destroys_the_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let uid = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    let key = common::s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex");
    let run = |args: &[&str]| {
        let (ok, out, err) = dev.operator(args);
        assert!(ok, "{args:?}: {err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let sys = ["--tenant", "demo", "--system", "demo-system"];
    assert_eq!(run(&[&["rotate-l2"][..], &sys].concat())["l2_version"], 2);
    // The old version holds the service key: not destroyed until the system is re-wrapped.
    let (ok, _, err) = dev.operator(&[&["destroy-l2"][..], &sys, &["--version", "1"]].concat());
    assert!(!ok && err.contains("409"), "{err}");
    assert_eq!(run(&[&["rewrap"][..], &sys].concat())["rewrapped"], 1);
    assert_eq!(
        run(&[&["destroy-l2"][..], &sys, &["--version", "1"]].concat())["destroyed"],
        1
    );
    dev.stop();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    assert_eq!(
        common::s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex"),
        key
    );
    assert!(dev.kmip("demo", &["create"]).is_ok());
    dev.stop();
}

#[test]
fn destroying_a_service_key_version_shreds_its_data_keys_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let old = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    let (ok, _, err) = dev.operator(&["rotate-l3", "--tenant", "demo", "--service", "default"]);
    assert!(ok, "{err}");
    let new = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    let new_key = common::s(&dev.kmip("demo", &["get", &new]).unwrap(), "key_hex");
    // The current version cannot be destroyed; version 1 can.
    let destroy = |v: &str| {
        dev.operator(&[
            "destroy-l3",
            "--tenant",
            "demo",
            "--service",
            "default",
            "--version",
            v,
        ])
    };
    let (ok, _, err) = destroy("2");
    assert!(!ok && err.contains("409"), "{err}");
    let (ok, out, err) = destroy("1");
    assert!(ok, "{err}");
    assert!(out.contains("\"destroyed\": 1"), "{out}");
    dev.stop();
    // After a restart (no cached data keys), the old data key is gone for good; the new one opens.
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let err = dev.kmip("demo", &["get", &old]).unwrap_err();
    assert!(err.contains("key version destroyed"), "{err}");
    // The edge finds the current service key again (the destroyed version is not unwrapped to list it).
    assert!(dev.kmip("demo", &["create"]).is_ok());
    assert_eq!(
        common::s(&dev.kmip("demo", &["get", &new]).unwrap(), "key_hex"),
        new_key
    );
    dev.stop();
}

#[test]
fn an_application_rekeys_its_current_service_key_through_kmip() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo", "other"]);
    let old = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    let old_key = common::s(&dev.kmip("demo", &["get", &old]).unwrap(), "key_hex");
    // The operator hands the service team its current service key id (here from a rotation).
    let (ok, out, err) = dev.operator(&["rotate-l3", "--tenant", "demo", "--service", "default"]);
    assert!(ok, "{err}");
    let v2 = serde_json::from_str::<serde_json::Value>(&out).unwrap()["unique_identifier"]
        .as_str()
        .unwrap()
        .to_owned();
    let attrs = dev.kmip("demo", &["attributes", &v2]).unwrap();
    assert_eq!(attrs["attributes"]["x-openkcm-key-version"], 2, "{attrs}");
    // Another tenant's application cannot see or re-key it.
    for args in [["rekey", v2.as_str()], ["attributes", v2.as_str()]] {
        let err = dev.kmip("other", &args).unwrap_err();
        assert!(err.contains("no object"), "{args:?}: {err}");
    }
    // Re-key of the current service key: a new version, the edge wraps new data keys under it at once.
    let v3 = common::s(
        &dev.kmip("demo", &["rekey", &v2]).unwrap(),
        "unique_identifier",
    );
    assert!(v3.starts_with("l3-") && v3 != v2, "{v3}");
    let attrs = dev.kmip("demo", &["attributes", &v3]).unwrap();
    assert_eq!(attrs["attributes"]["x-openkcm-key-version"], 3, "{attrs}");
    let old_attrs = dev.kmip("demo", &["attributes", &v2]).unwrap();
    assert_ne!(
        old_attrs["attributes"]["State"], attrs["attributes"]["State"],
        "the re-keyed version is no longer Active: {old_attrs}"
    );
    // Only the current version can be re-keyed.
    let err = dev.kmip("demo", &["rekey", &v2]).unwrap_err();
    assert!(err.contains("not its current one"), "{err}");
    let new = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    let new_key = common::s(&dev.kmip("demo", &["get", &new]).unwrap(), "key_hex");
    dev.stop();
    // After a restart (no cached data keys) the old key opens under version 1, the new one under version 3.
    let mut dev = Dev::start(dir.path(), &["demo", "other"]);
    assert_eq!(
        common::s(&dev.kmip("demo", &["get", &old]).unwrap(), "key_hex"),
        old_key
    );
    assert_eq!(
        common::s(&dev.kmip("demo", &["get", &new]).unwrap(), "key_hex"),
        new_key
    );
    dev.stop();
    assert_eq!(
        common::wrapping_l3(dir.path(), &new),
        v3,
        "the new data key is wrapped under the re-keyed version"
    );
}

#[test]
fn a_service_key_rekeyed_with_an_offset_takes_over_at_its_activation_date() {
    // In `core` custody the Core refuses to wrap under a version past its Deactivation Date; in `lease` custody the
    // edge wraps itself and must stop trusting the version as current at that date.
    for custody in ["core", "lease"] {
        rekey_with_offset(custody);
    }
}

fn rekey_with_offset(custody: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start_env(dir.path(), &["demo"], &[("OPENKCM_L3_CUSTODY", custody)]);
    let (ok, out, err) = dev.operator(&["rotate-l3", "--tenant", "demo", "--service", "default"]);
    assert!(ok, "{err}");
    let v2 = serde_json::from_str::<serde_json::Value>(&out).unwrap()["unique_identifier"]
        .as_str()
        .unwrap()
        .to_owned();
    // At most a year ahead (a later date would hold the service's rotation that long).
    let err = dev
        .kmip("demo", &["rekey", &v2, "--offset", "4294967295"])
        .unwrap_err();
    assert!(err.contains("at most 366 days ahead"), "{err}");
    // Re-key with an Offset: version 3 is Pre-Active for 4 seconds, version 2 keeps wrapping until then.
    let v3 = common::s(
        &dev.kmip("demo", &["rekey", &v2, "--offset", "4"]).unwrap(),
        "unique_identifier",
    );
    // The application finds its service keys itself: the current version first, then the newest.
    let located = dev.kmip("demo", &["locate", "--service-keys"]).unwrap();
    let ids: Vec<&str> = located["unique_identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ids.first().copied(), Some(v2.as_str()), "{located}");
    assert!(ids.contains(&v3.as_str()) && ids.len() == 3, "{located}");
    // Its key bytes never leave the Core.
    let err = dev.kmip("demo", &["get", &v2]).unwrap_err();
    assert!(
        err.contains("service keys never leave the Crypto Core"),
        "{err}"
    );
    let pending = dev.kmip("demo", &["attributes", &v3]).unwrap();
    // KMIP State: 1 Pre-Active, 2 Active, 3 Deactivated.
    assert_eq!(pending["attributes"]["State"], 1, "{pending}");
    assert!(
        !pending["attributes"]["Activation Date"].is_null(),
        "{pending}"
    );
    let current = dev.kmip("demo", &["attributes", &v2]).unwrap();
    assert_eq!(current["attributes"]["State"], 2, "{current}");
    assert!(
        !current["attributes"]["Deactivation Date"].is_null(),
        "{current}"
    );
    let before = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    // A second re-key while one waits is refused.
    let err = dev.kmip("demo", &["rekey", &v2]).unwrap_err();
    assert!(err.contains("waiting to become active"), "{err}");
    std::thread::sleep(std::time::Duration::from_secs(5));
    // After the date: version 3 is current and Active, version 2 Deactivated; the edge wraps under version 3
    // without waiting for its cache of the current version to expire.
    let after = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    let now_current = dev.kmip("demo", &["attributes", &v3]).unwrap();
    assert_eq!(now_current["attributes"]["State"], 2, "{now_current}");
    let old = dev.kmip("demo", &["attributes", &v2]).unwrap();
    assert_eq!(old["attributes"]["State"], 3, "{old}");
    dev.stop();
    assert_eq!(common::wrapping_l3(dir.path(), &before), v2, "{custody}");
    assert_eq!(common::wrapping_l3(dir.path(), &after), v3, "{custody}");
}

#[test]
fn operator_marks_a_service_key_compromised_and_old_ivk_versions_in_use_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let old = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    let svc = ["--tenant", "demo", "--service", "default"];
    let (ok, out, err) =
        dev.operator(&[&["compromise-l3"][..], &svc, &["--version", "1"]].concat());
    assert!(ok, "{err}");
    assert!(out.contains("\"compromised\": 1"), "{out}");
    // The service moved to version 2 at once, and the answer names it.
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let current = v["current_unique_identifier"].as_str().unwrap();
    assert!(
        current.starts_with("l3-") && Some(current) != v["unique_identifier"].as_str(),
        "{v}"
    );
    let new = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    let new_key = common::s(&dev.kmip("demo", &["get", &new]).unwrap(), "key_hex");
    let (ok, _, err) = dev.operator(&[&["compromise-l3"][..], &svc, &["--version", "1"]].concat());
    assert!(
        !ok && err.contains("409") && err.contains("already"),
        "{err}"
    );
    // The IVK version every binding uses cannot be deleted (here: still in its grace period).
    let (ok, _, err) = dev.operator(&["rotate-ivk"]);
    assert!(ok, "{err}");
    let (ok, _, err) = dev.operator(&["delete-ivk", "--version", "1"]);
    assert!(!ok && err.contains("409") && err.contains("GRACE"), "{err}");
    dev.stop();
    // After a restart (no cached data keys), the data key under the compromised version is refused.
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let err = dev.kmip("demo", &["get", &old]).unwrap_err();
    assert!(err.contains("key version compromised"), "{err}");
    assert_eq!(
        common::s(&dev.kmip("demo", &["get", &new]).unwrap(), "key_hex"),
        new_key
    );
    dev.stop();
}
