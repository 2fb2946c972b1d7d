//! A real, unmodified KMIP client (PyKMIP's ProxyKmipClient) against the edge over mTLS, in KMIP 1.2, 1.4 and 2.0.
//! Needs Python with PyKMIP: `scripts/test` prepares it and sets OPENKCM_PYTHON. Outside CI the test is skipped,
//! loudly, when PyKMIP is missing; in CI (CI=true) that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{in_ci, Dev};
use std::process::Command;

fn python() -> Option<String> {
    let py = std::env::var("OPENKCM_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import kmip, cryptography"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(py);
    }
    if in_ci() {
        panic!("PyKMIP is not importable with {py}; CI must run it (scripts/test installs it)");
    }
    eprintln!("\n*** SKIPPING the PyKMIP interoperability test: PyKMIP is not importable with {py}. Run scripts/test. ***\n");
    None
}

#[test]
fn pykmip_proxy_client_runs_the_lifecycle_in_1_2_1_4_and_2_0() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let (host, port) = dev.edge.rsplit_once(':').unwrap();
    let (cert, key) = dev.cert("demo");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/pykmip/client_lifecycle.py"
    );
    for version in ["1.2", "1.4", "2.0"] {
        let out = Command::new(&py)
            .arg(script)
            .args([host, port])
            .arg(&dev.ca)
            .arg(&cert)
            .arg(&key)
            .arg(version)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("PYKMIP LIFECYCLE OK"),
            "PyKMIP {version} failed:\n{stdout}\n{stderr}"
        );
        eprintln!("PyKMIP {version}:\n{stdout}");
    }
    dev.stop();
}
