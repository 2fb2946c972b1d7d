//! A real, unmodified KMIP client (PyKMIP's ProxyKmipClient) against the edge over mTLS, in every KMIP version the
//! edge speaks (1.0, 1.1, 1.2, 1.3, 1.4 and 2.0), through every operation an application uses.
//! Needs Python with PyKMIP: `scripts/test` prepares it and sets OPENKCM_PYTHON. Outside CI the test is skipped,
//! loudly, when PyKMIP is missing; in CI (CI=true) that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Dev;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every protocol version the edge speaks.
const VERSIONS: [&str; 6] = ["1.0", "1.1", "1.2", "1.3", "1.4", "2.0"];

/// The checks `tests/pykmip/client_lifecycle.py` runs in each version; each must report PASS. Encrypt, Decrypt and
/// MAC exist from KMIP 1.2 on: in 1.0 and 1.1 their check passes when the server refuses them with Operation Not
/// Supported.
const CHECKS: [&str; 16] = [
    "create",
    "get_attributes",
    "get_attribute_list",
    "activate",
    "get",
    "encrypt",
    "decrypt",
    "locate_by_name",
    "register_symmetric_key",
    "register_secret_data",
    "register_opaque_object",
    "locate_by_custom_attribute",
    "mac",
    "rekey",
    "revoke",
    "destroy",
];

/// All versions together get this long (a version takes about a second); a hung client fails the test.
const BUDGET: Duration = Duration::from_secs(50);

fn python() -> Option<String> {
    common::pykmip_python("the PyKMIP interoperability test")
}

/// Runs the client script for one version; returns (finished successfully, stdout, stderr). Output goes to files
/// (no pipe can fill up), and the script is killed at `deadline`.
fn run_client(
    py: &str,
    args: &[&std::ffi::OsStr],
    scratch: &Path,
    version: &str,
    deadline: Instant,
) -> (bool, String, String) {
    let out_path = scratch.join(format!("pykmip-{version}.out"));
    let err_path = scratch.join(format!("pykmip-{version}.err"));
    let mut child = Command::new(py)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/pykmip/client_lifecycle.py"
        ))
        .args(args)
        .arg(version)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let mut stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!(
            "\n(killed: the PyKMIP runs exceeded their {} s budget)",
            BUDGET.as_secs()
        ));
    }
    (status.is_some_and(|s| s.success()), stdout, stderr)
}

#[test]
fn pykmip_proxy_client_runs_every_operation_in_kmip_1_0_to_2_0() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(&dir.path().join("data"), &["demo"]);
    let (host, port) = dev.edge.rsplit_once(':').unwrap();
    let (cert, key) = dev.cert("demo");
    let args = [
        host.as_ref(),
        port.as_ref(),
        dev.ca.as_os_str(),
        cert.as_os_str(),
        key.as_os_str(),
    ];
    let deadline = Instant::now() + BUDGET;
    let mut failures = Vec::new();
    for version in VERSIONS {
        let (ok, stdout, stderr) = run_client(&py, &args, dir.path(), version, deadline);
        eprintln!("PyKMIP {version}:\n{stdout}");
        // Every check must have reported PASS: a check that did not run (the script stopped early) fails too.
        let missing: Vec<String> = CHECKS
            .iter()
            .filter(|c| {
                !stdout
                    .lines()
                    .any(|l| l.starts_with(&format!("RESULT {version} {c} PASS")))
            })
            .map(|c| {
                match stdout
                    .lines()
                    .find(|l| l.starts_with(&format!("RESULT {version} {c} ")))
                {
                    Some(line) => line.to_owned(),
                    None => format!("RESULT {version} {c} FAIL did not run"),
                }
            })
            .collect();
        if !ok || !stdout.contains("PYKMIP LIFECYCLE OK") || !missing.is_empty() {
            failures.push(format!("{}\n{}", missing.join("\n"), stderr.trim()));
        }
    }
    dev.stop();
    assert!(
        failures.is_empty(),
        "PyKMIP checks failed:\n{}",
        failures.join("\n")
    );
}
