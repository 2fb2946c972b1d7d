//! The `kmip` seal provider (issue 5): this project's KMIP client against a second `openkcm` (its edge) and against
//! PyKMIP's server — AES-256-GCM with the context as additional authenticated data — and `openkcm dev --seal kmip`
//! starting and restarting through another node's key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::services::PyKmipServer;
use common::{s, Dev};
use openkcm_providers::kmip::KmipProvider;
use openkcm_providers::{KeyProvider, ProviderError};

fn client(ca: &std::path::Path, pki: &std::path::Path) -> std::sync::Arc<rustls::ClientConfig> {
    openkcm_net::tls::install_default_provider();
    openkcm_net::tls::client_config(&openkcm_net::tls::TlsFiles {
        ca: ca.to_path_buf(),
        cert: pki.join("demo-default.crt"),
        key: pki.join("demo-default.key"),
    })
    .unwrap()
}

fn ctx(c: &str) -> Vec<(String, String)> {
    vec![
        ("cluster_id".into(), c.into()),
        ("region".into(), "eu".into()),
    ]
}

async fn exercise(p: &KmipProvider) {
    let key = p.create("openkcm-seal").await.unwrap();
    assert!(p.describe(&key).await.unwrap().enabled);
    let ct = p.encrypt(&key, &[3u8; 32], &ctx("c1")).await.unwrap();
    assert_eq!(ct.len(), 12 + 16 + 32);
    assert_eq!(
        p.decrypt(&key, &ct, &ctx("c1")).await.unwrap().expose(),
        &[3u8; 32]
    );
    let e = p.decrypt(&key, &ct, &ctx("c2")).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Invalid(_)),
        "another context: {e:?}"
    );
    let mut altered = ct.clone();
    altered[40] ^= 1;
    assert!(p.decrypt(&key, &altered, &ctx("c1")).await.is_err());
    let missing = openkcm_providers::KeyRef {
        key_id: "no-such-uid".into(),
        ..key.clone()
    };
    let e = p.encrypt(&missing, b"x", &ctx("c1")).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::NotFound(_) | ProviderError::Denied(_)),
        "{e:?}"
    );
}

#[test]
fn kmip_provider_works_against_another_openkcm_and_pykmip_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Dev::start(&dir.path().join("server"), &["demo"]);
    let pki = server.data.join("pki");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let p = KmipProvider::new(&server.edge, "localhost", client(&server.ca, &pki));
    rt.block_on(exercise(&p));
    if let Some(pykmip) = PyKmipServer::start(&pki) {
        let p = KmipProvider::new(&pykmip.addr, "localhost", client(&server.ca, &pki));
        rt.block_on(exercise(&p));
    }
    server.stop();
}

#[test]
fn dev_auto_unseals_through_another_openkcm_over_kmip() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Dev::start(&dir.path().join("server"), &["demo"]);
    let uid = s(
        &server.kmip("demo", &["create", "--activate"]).unwrap(),
        "unique_identifier",
    );
    let pki = server.data.join("pki");
    let args = [
        "--seal".to_owned(),
        "kmip".into(),
        "--kmip-addr".into(),
        server.edge.clone(),
        "--kmip-ca".into(),
        server.ca.display().to_string(),
        "--kmip-cert".into(),
        pki.join("demo-default.crt").display().to_string(),
        "--kmip-key".into(),
        pki.join("demo-default.key").display().to_string(),
        "--seal-key".into(),
        uid.clone(),
    ];
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    let data = dir.path().join("node");
    let started = std::time::Instant::now();
    let mut node = Dev::spawn_with(&data, &["demo"], None, &[], &extra, "OPENKCM READY");
    let first = started.elapsed();
    let l4 = s(
        &node.kmip("demo", &["create"]).unwrap(),
        "unique_identifier",
    );
    let key = s(&node.kmip("demo", &["get", &l4]).unwrap(), "key_hex");
    node.stop();
    let started = std::time::Instant::now();
    let mut node = Dev::spawn_with(&data, &["demo"], None, &[], &extra, "OPENKCM READY");
    let restart = started.elapsed();
    eprintln!(
        "AUTO-UNSEAL TIMING kmip (another openkcm): first boot (new MasterKey) {} ms, restart {} ms (process start to OPENKCM READY)",
        first.as_millis(),
        restart.as_millis()
    );
    assert_eq!(
        s(&node.kmip("demo", &["get", &l4]).unwrap(), "key_hex"),
        key
    );
    node.stop();
    // The seal key destroyed at the KMIP server (revoked first; KMIP lets a revoked key still decrypt): the node
    // starts sealed and says why.
    server.kmip("demo", &["revoke", &uid]).unwrap();
    server.kmip("demo", &["destroy", &uid]).unwrap();
    let node = Dev::spawn_with(&data, &["demo"], None, &[], &extra, "OPENKCM SEALED");
    let (_, out, _) = node.operator(&["seal-status"]);
    let st: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(st["sealed"], true);
    assert!(
        st["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("kmip seal"),
        "{st}"
    );
    drop(node);
    server.stop();
}
