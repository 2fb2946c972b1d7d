//! `openkcm dev --core-store openbao+http://…/secret`: the Core keeps its keys in a real OpenBao dev server's KV v2
//! engine, and a key created before a restart is served after it. Outside CI the test is skipped, loudly, when the
//! `bao` binary is missing; in CI (CI=true) that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::services::{bao, free_port, Bao};
use common::Dev;

#[test]
fn dev_keeps_core_keys_in_openbao_across_a_restart() {
    let Some(bin) = bao() else { return };
    let bao = Bao::start(&bin, free_port());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = format!("openbao+http://{}/secret", bao.addr);
    let extra = ["--core-store", store.as_str()];
    let env = [("OPENKCM_CORE_STORE_TOKEN", bao.token.as_str())];
    let mut dev = Dev::spawn_with(&data, &["demo"], None, &env, &extra, "OPENKCM READY");
    let uid = common::s(&dev.kmip("demo", &["create"]).unwrap(), "unique_identifier");
    let key = common::s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex");
    dev.stop();
    assert!(!data.join("core.db").exists(), "the Core used SQLite");
    // The Core's records are in the KV engine under openkcm/.
    let (ok, out) = bao.cli(&["kv", "list", "secret/openkcm"]);
    assert!(ok && !out.trim().is_empty(), "{out}");

    let mut dev = Dev::spawn_with(&data, &["demo"], None, &env, &extra, "OPENKCM READY");
    assert_eq!(
        common::s(&dev.kmip("demo", &["get", &uid]).unwrap(), "key_hex"),
        key
    );
    dev.stop();

    // Without the token the start is refused with the reason.
    let out = common::dev_refusal_with(&data, &extra, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("OPENKCM_CORE_STORE_TOKEN"), "{err}");
}
