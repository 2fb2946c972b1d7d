//! Zero knowledge at rest: no plaintext key of any layer in the data directory, and wrapped keys bound to their
//! tenant and key id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{s, Dev};
use openkcm_crypto::unwrap_unchecked_header;
use openkcm_store::{KeyStore, SqliteStore};
use std::path::Path;

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_plaintext_key_of_any_layer_reaches_the_data_directory_or_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("openkcm.log");
    let mut dev = Dev::start_logged(dir.path(), &["demo"], Some(&log));
    let mut l4s = Vec::new();
    let mut uids = Vec::new();
    for i in 0..3 {
        let uid = s(
            &dev.kmip(
                "demo",
                &["create", "--activate", "--name", &format!("k{i}")],
            )
            .unwrap(),
            "unique_identifier",
        );
        l4s.push(hex::decode(s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex")).unwrap());
        let enc = dev
            .kmip("demo", &["encrypt", &uid, "--text", "log probe"])
            .unwrap();
        assert!(!s(&enc, "data_hex").is_empty());
        uids.push(uid);
    }
    // Errors on the way must not leak either.
    assert!(dev
        .kmip(
            "demo",
            &["decrypt", &uids[0], "--data-hex", "00", "--iv", "00"]
        )
        .is_err());
    dev.stop();
    // Scan exactly what the server left behind (opening the databases below creates SQLite side files).
    let snapshot_dir = tempfile::tempdir().unwrap();
    let snapshot = snapshot_dir.path().join("data");
    common::copy_tree(dir.path(), &snapshot);

    // Rebuild every layer from the files, through the chain, as only the holder of the dev seal key could.
    let data = dir.path();
    let mk = common::dev_master_key(data);
    let core_db = std::sync::Arc::new(SqliteStore::open(&data.join("core.db")).await.unwrap());
    // Names and metadata are sealed in the database (zero-knowledge metadata): read it as the Core does.
    let core = openkcm_core::sealed_store::open(core_db.clone(), &mk)
        .await
        .unwrap();
    let ivk_rec = core
        .get("_cluster", "ivk", "ivk", 1)
        .await
        .unwrap()
        .unwrap();
    let ivk = unwrap_unchecked_header(&mk, ivk_rec.blob.as_ref().unwrap()).unwrap();
    let l2_rec = core
        .get("demo", "l2-active", "demo-system", 1)
        .await
        .unwrap()
        .unwrap();
    let l2 = unwrap_unchecked_header(&ivk, l2_rec.blob.as_ref().unwrap()).unwrap();
    let l3_recs = core.list("demo", "l3").await.unwrap();
    assert_eq!(l3_recs.len(), 1);
    let l3 = unwrap_unchecked_header(&l2, l3_recs[0].blob.as_ref().unwrap()).unwrap();
    core_db.close().await;
    // The vault's wrapped L4s open under that L3 to exactly the bytes Get returned: the chain is real.
    let (vault_db, vault) = common::dev_edge_vault(data).await;
    for (uid, bytes) in uids.iter().zip(&l4s) {
        let rec = vault.get("demo", "l4", uid, 0).await.unwrap().unwrap();
        let blob = rec.blob.unwrap();
        assert_eq!(blob.header().parent_id, l3_recs[0].id);
        assert_eq!(
            unwrap_unchecked_header(&l3, &blob)
                .unwrap()
                .expose()
                .as_slice(),
            bytes.as_slice()
        );
    }
    vault_db.close().await;

    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("MasterKey".into(), mk.expose().to_vec()),
        ("IVK".into(), ivk.expose().to_vec()),
        ("L2".into(), l2.expose().to_vec()),
        ("L3".into(), l3.expose().to_vec()),
    ];
    secrets.extend(
        l4s.iter()
            .enumerate()
            .map(|(i, k)| (format!("L4 #{i}"), k.clone())),
    );
    let mut all = vec![log.clone()];
    files(&snapshot, &mut all);
    let mut scanned = 0;
    for f in all {
        let rel = f
            .strip_prefix(&snapshot)
            .unwrap_or(&f)
            .to_string_lossy()
            .to_string();
        // The two documented development-only plaintext keys: the file seal's key and the local L1 keys.
        if rel == "seal/file-seal.key" || (rel.starts_with("l1/") && rel.ends_with(".key")) {
            continue;
        }
        let bytes =
            std::fs::read(&f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
        scanned += 1;
        for (name, secret) in &secrets {
            assert!(
                !contains(&bytes, secret),
                "{name} appears in plaintext in {rel}"
            );
            let hex_lower = hex::encode(secret);
            assert!(
                !contains(&bytes, hex_lower.as_bytes()),
                "{name} appears as hex in {rel}"
            );
            assert!(
                !contains(&bytes, hex_lower.to_uppercase().as_bytes()),
                "{name} appears as HEX in {rel}"
            );
        }
    }
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("created data key"),
        "the debug log was captured"
    );
    assert!(
        scanned >= 5,
        "expected the databases and sealed blobs to be scanned, scanned {scanned} files"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrapped_key_moved_to_another_record_fails_to_unwrap_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo", "other"]);
    let a = s(
        &dev.kmip("demo", &["create", "--activate"]).unwrap(),
        "unique_identifier",
    );
    let c = s(
        &dev.kmip("demo", &["create", "--activate"]).unwrap(),
        "unique_identifier",
    );
    let b = s(
        &dev.kmip("other", &["create", "--activate"]).unwrap(),
        "unique_identifier",
    );
    let a_key = s(&dev.kmip("demo", &["get", &a]).unwrap(), "key_hex");
    dev.stop();

    let (vault_db, vault) = common::dev_edge_vault(dir.path()).await;
    let a_rec = vault.get("demo", "l4", &a, 0).await.unwrap().unwrap();
    for (tenant, uid) in [("other", &b), ("demo", &c)] {
        let mut victim = vault.get(tenant, "l4", uid, 0).await.unwrap().unwrap();
        let rev = victim.revision;
        victim.blob = a_rec.blob.clone();
        assert!(vault.compare_and_set(&victim, rev).await.unwrap());
    }
    vault_db.close().await;

    let mut dev = Dev::start(dir.path(), &["demo", "other"]);
    let err = dev.kmip("other", &["get", &b]).unwrap_err();
    assert!(err.contains("belongs to another tenant or key"), "{err}");
    let err = dev.kmip("demo", &["get", &c]).unwrap_err();
    assert!(err.contains("belongs to another tenant or key"), "{err}");
    // The server is unharmed and the original still opens.
    assert_eq!(
        s(&dev.kmip("demo", &["get", &a]).unwrap(), "key_hex"),
        a_key
    );
    dev.stop();
}

/// Zero-knowledge metadata in the edge vault (DESIGN §5.2, ADR-015): a dump of the SQLite vault (and of the Core's
/// store) shows no tenant name, key name or label; the vault still opens with the key the Core derives for the edge;
/// a vault an earlier release wrote in clear is sealed at the next start and its keys still open.
#[tokio::test(flavor = "multi_thread")]
async fn the_edge_vault_names_no_tenant_key_or_label_and_a_clear_vault_is_sealed_once() {
    use openkcm_kmip::attributes::Attribute;
    use openkcm_kmip::enums::operation as op;
    use openkcm_ttlv::{Item, Value};
    const TENANT: &str = "acme-sovereign-bank";
    const NAME: &str = "payroll-ledger-key";
    const LABEL: &str = "customer-label-7f3a";
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &[TENANT]);
    let uid = s(
        &dev.kmip(TENANT, &["create", "--name", NAME, "--activate"])
            .unwrap(),
        "unique_identifier",
    );
    let key = s(&dev.kmip(TENANT, &["get", &uid]).unwrap(), "key_hex");
    let mut c = common::edge_client(&dev, TENANT).await;
    let add = Item::structure(
        openkcm_kmip::tags::REQUEST_PAYLOAD,
        vec![
            Item::new(
                openkcm_kmip::tags::UNIQUE_IDENTIFIER,
                Value::TextString(uid.clone()),
            ),
            Attribute::new("x-label", Value::TextString(LABEL.into())).to_v1(),
        ],
    );
    common::one_op(
        &mut c,
        openkcm_kmip::ProtocolVersion::new(1, 4),
        op::ADD_ATTRIBUTE,
        add,
    )
    .await
    .unwrap();
    drop(c);
    dev.stop();

    // Every byte of both databases (and their side files): no tenant name, key name, label or key identifier.
    let dump = |needle: &str| {
        let mut all = Vec::new();
        files(dir.path(), &mut all);
        all.into_iter()
            .filter(|f| {
                let n = f.file_name().unwrap().to_string_lossy().to_string();
                n.starts_with("edge-vault.db") || n.starts_with("core.db")
            })
            // (a -shm or -journal side file may go away between the listing and the read)
            .filter(|f| std::fs::read(f).is_ok_and(|bytes| contains(&bytes, needle.as_bytes())))
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
    };
    let label_hex = hex::encode(LABEL);
    for needle in [TENANT, NAME, LABEL, &label_hex, uid.as_str()] {
        assert_eq!(dump(needle), Vec::<String>::new(), "{needle:?} in clear");
    }
    // With the key the Core derives for this edge, the record is all there.
    let (raw, vault) = common::dev_edge_vault(dir.path()).await;
    let rec = vault.get(TENANT, "l4", &uid, 0).await.unwrap().unwrap();
    let meta = rec.metadata.to_string();
    // (custom attribute values are kept as their TTLV, in hex)
    assert!(
        meta.contains(NAME) && meta.contains(&hex::encode(LABEL)),
        "{meta}"
    );
    // The same key under another edge's name opens nothing.
    let other_key =
        openkcm_core::hierarchy::edge_vault_key(&common::dev_master_key(dir.path()), "other-edge")
            .unwrap();
    let other = openkcm_edge::SealedVault::sealed_view(raw.clone(), &other_key).unwrap();
    assert!(other.get(TENANT, "l4", &uid, 0).await.unwrap().is_none());

    // An earlier release's vault: the same record in clear, under the clear tenant name and id.
    assert!(vault.delete(TENANT, "l4", &uid, 0).await.unwrap());
    let mut clear = rec.clone();
    clear.revision = 0;
    assert!(raw.put_if_absent(&clear).await.unwrap());
    raw.close().await;
    assert!(!dump(TENANT).is_empty(), "the clear record is in the dump");

    let mut dev = Dev::start(dir.path(), &[TENANT]);
    assert_eq!(
        s(&dev.kmip(TENANT, &["get", &uid]).unwrap(), "key_hex"),
        key
    );
    let located = dev.kmip(TENANT, &["locate", "--name", NAME]).unwrap();
    assert!(located.to_string().contains(&uid), "{located}");
    dev.stop();
    for needle in [TENANT, NAME, LABEL, &label_hex, uid.as_str()] {
        assert_eq!(
            dump(needle),
            Vec::<String>::new(),
            "{needle:?} in clear after the move"
        );
    }

    // This vault in another cluster's data directory: its start is refused with the reason (not a node that
    // answers "the key vault failed" to every request).
    let other = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(other.path(), &[TENANT]);
    dev.stop();
    for side in ["edge-vault.db-wal", "edge-vault.db-shm"] {
        let _ = std::fs::remove_file(other.path().join(side));
    }
    std::fs::copy(
        dir.path().join("edge-vault.db"),
        other.path().join("edge-vault.db"),
    )
    .unwrap();
    let out = common::dev_refusal(other.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sealed under another vault key"), "{err}");
}
