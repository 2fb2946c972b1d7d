//! `openkcm bench` and `openkcm bench-floor` as scripts use them: the JSON contract, the floor, and what a load
//! generator must never do (hang on a silent server, report a failed run as a clean one, listen or connect beyond
//! loopback).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{Dev, BIN};
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bench(dev: &Dev, addr: &str, args: &[&str]) -> Output {
    let (cert, key) = dev.cert("demo");
    Command::new(BIN)
        .arg("bench")
        .args(["--addr", addr])
        .arg("--ca")
        .arg(&dev.ca)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args(if args.contains(&"--warmup") {
            &["--quiet"][..]
        } else {
            &["--warmup", "0", "--quiet"][..]
        })
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON object ({e}): stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Starts `openkcm bench-floor` on a free loopback port with the dev PKI; returns the child and its address.
fn floor(dev: &Dev) -> (std::process::Child, String) {
    let pki = dev.data.join("pki");
    let mut child = Command::new(BIN)
        .args(["bench-floor", "--addr", "127.0.0.1:0"])
        .arg("--ca")
        .arg(pki.join("ca.crt"))
        .arg("--cert")
        .arg(pki.join("server.crt"))
        .arg("--key")
        .arg(pki.join("server.key"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("OPENKCM FLOOR READY addr=")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, addr)
}

#[test]
fn the_json_contract_holds_for_every_operation() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    for op in ["get", "create", "encrypt", "decrypt", "mixed"] {
        let out = bench(
            &dev,
            &dev.edge,
            &[
                "--op",
                op,
                "--connections",
                "2",
                "--requests",
                "40",
                "--json",
            ],
        );
        assert!(out.status.success(), "{op}: {}", stderr(&out));
        let r = json(&out);
        for field in ["ops_per_sec", "p50_us", "p99_us", "p999_us"] {
            assert!(r[field].as_f64().unwrap() > 0.0, "{op}: {field} in {r}");
        }
        assert_eq!(r["errors"], 0, "{op}: {r}");
        assert_eq!(r["connections_failed"], 0, "{op}: {r}");
        assert_eq!(r["requests"], 40, "{op}: {r}");
    }
    // Get and Create need no AES-GCM, so they run with KMIP 1.2 too.
    for op in ["get", "create"] {
        let out = bench(
            &dev,
            &dev.edge,
            &[
                "--op",
                op,
                "--kmip-version",
                "1.2",
                "--requests",
                "10",
                "--json",
            ],
        );
        assert!(out.status.success(), "{op} 1.2: {}", stderr(&out));
    }
    dev.stop();
}

#[test]
fn the_floor_echoes_and_is_not_mistaken_for_a_kmip_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let (mut floor, addr) = floor(&dev);
    let out = bench(&dev, &addr, &["--floor", "--requests", "50", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = json(&out);
    assert_eq!(r["label"], "floor");
    assert_eq!(r["errors"], 0);
    // Without --floor: the echo is no KMIP response, and the error says what to do.
    let out = bench(&dev, &addr, &["--requests", "5", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("add --floor"), "{}", stderr(&out));
    // --floor against a real KMIP server: its responses are not echoes, so nothing counts as a success.
    let out = bench(&dev, &dev.edge, &["--floor", "--requests", "5", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let r = json(&out);
    assert_eq!(r["connections_failed"], 1, "{r}");
    assert!(
        r["first_error"].as_str().unwrap().contains("not an echo"),
        "{r}"
    );
    floor.kill().unwrap();
    floor.wait().unwrap();
    dev.stop();
}

#[test]
fn a_server_that_stops_answering_ends_the_run_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    // Accepts TCP and never speaks.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    for extra in [&["--floor"][..], &[][..]] {
        let started = Instant::now();
        let mut args = vec!["--timeout", "1", "--duration", "1", "--json"];
        args.extend_from_slice(extra);
        let out = bench(&dev, &addr, &args);
        assert!(!out.status.success(), "{extra:?}: {}", stderr(&out));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{extra:?}: took {:?}",
            started.elapsed()
        );
        // Both modes name the handshake that did not complete, after one --timeout.
        assert!(
            stderr(&out).contains("(TCP and TLS handshake) took more than 1 s"),
            "{extra:?}: {}",
            stderr(&out)
        );
    }
    drop(silent);
    dev.stop();
}

#[test]
fn a_server_that_freezes_mid_run_fails_the_run_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let (cert, key) = dev.cert("demo");
    let run = Command::new(BIN)
        .arg("bench")
        .args(["--addr", &dev.edge])
        .arg("--ca")
        .arg(&dev.ca)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args([
            "--warmup",
            "0",
            "--duration",
            "30",
            "--timeout",
            "1",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    dev.signal("STOP");
    let started = Instant::now();
    let out = run.wait_with_output().unwrap();
    let waited = started.elapsed();
    dev.signal("CONT");
    // It gave up about a second after the server froze, not at the end of the 30 s run.
    assert!(waited < Duration::from_secs(20), "took {waited:?}");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let r = json(&out);
    assert_eq!(r["connections_failed"], 1, "{r}");
    assert_eq!(r["errors"], 1, "the request in flight is lost: {r}");
    assert!(
        r["first_error"]
            .as_str()
            .unwrap()
            .contains("no response within 1 s"),
        "{r}"
    );
    dev.stop();
}

#[test]
fn refused_connections_make_a_failed_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start_env(
        dir.path(),
        &["demo"],
        &[("OPENKCM_MAX_CONNECTIONS_PER_IDENTITY", "6")],
    );
    // Six connections per identity: of ten, at least four are refused (five if the setup connection's slot is not
    // given back yet when the run connects).
    // With a warm-up, the refusal arrives before measuring starts; it must still be what the report names.
    let out = bench(
        &dev,
        &dev.edge,
        &[
            "--connections",
            "10",
            "--duration",
            "1",
            "--warmup",
            "0.5",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let r = json(&out);
    let failed = r["connections_failed"].as_u64().unwrap();
    assert!((4..=5).contains(&failed), "{r}");
    // The refusals came during the warm-up, so no measured request failed; the failed connections still fail the
    // run (exit 3 above).
    assert_eq!(r["errors"], 0, "{r}");
    assert!(
        r["first_error"]
            .as_str()
            .unwrap()
            .contains("too many connections"),
        "{r}"
    );
    dev.stop();
}

#[test]
fn only_loopback_is_listened_on_or_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let out = bench(&dev, "192.0.2.1:5696", &["--requests", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a loopback address"),
        "{}",
        stderr(&out)
    );
    let pki = dev.data.join("pki");
    for addr in ["0.0.0.0:0", "192.0.2.1:5699"] {
        let out = Command::new(BIN)
            .args(["bench-floor", "--addr", addr])
            .arg("--ca")
            .arg(pki.join("ca.crt"))
            .arg("--cert")
            .arg(pki.join("server.crt"))
            .arg("--key")
            .arg(pki.join("server.key"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{addr}");
        // Refused before binding: the error is the loopback rule, not a bind failure.
        assert!(
            stderr(&out).contains("not a loopback address"),
            "{addr}: {}",
            stderr(&out)
        );
    }
    dev.stop();
}
