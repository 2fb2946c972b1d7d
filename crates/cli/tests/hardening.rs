//! Process hardening of DESIGN §3.1, seen from outside the process: no core dumps, secret memory locked, and
//! `--require-mlock` refusing to start where memory cannot be locked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{in_ci, Dev, BIN};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn proc_file(pid: u32, name: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/{name}")).unwrap()
}

#[test]
fn a_running_node_has_no_core_dumps_and_locked_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(dir.path(), &["demo"]);
    let limits = proc_file(dev.pid(), "limits");
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], &["0", "0"], "{core}");
    // The MasterKey and the Core's keys live in locked pages.
    let status = proc_file(dev.pid(), "status");
    let locked_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    assert!(locked_kb >= 4, "VmLck is {locked_kb} kB");
    dev.stop();
}

/// `openkcm dev` with no lockable memory: a memlock limit of 0 and, for root, no CAP_IPC_LOCK.
fn without_mlock(data: &std::path::Path, extra: &[&str]) -> Option<Command> {
    let have = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !have("prlimit") || !have("setpriv") {
        assert!(
            !in_ci(),
            "prlimit and setpriv (util-linux) are needed for this test in CI"
        );
        eprintln!("*** SKIPPED: prlimit or setpriv (util-linux) not installed ***");
        return None;
    }
    let mut cmd = Command::new("prlimit");
    cmd.arg("--memlock=0:0");
    // Root locks memory whatever the limit, through CAP_IPC_LOCK: drop it for the child.
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|u| u.split_whitespace().next() == Some("0"));
    if root {
        cmd.args([
            "setpriv",
            "--bounding-set=-ipc_lock",
            "--inh-caps=-ipc_lock",
            "--",
        ]);
    }
    cmd.arg(BIN)
        .arg("dev")
        .arg("--data-dir")
        .arg(data)
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
        .args(extra)
        .env("OPENKCM_LOG", "warn");
    Some(cmd)
}

#[test]
fn require_mlock_refuses_to_start_without_lockable_memory() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut refuse) = without_mlock(&dir.path().join("a"), &["--require-mlock"]) else {
        return;
    };
    let out = refuse.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("secret memory cannot be locked") && err.contains("--require-mlock"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("OPENKCM READY"));

    // Without the option the node starts, and says loudly that it could not lock memory.
    let mut start = without_mlock(&dir.path().join("b"), &[]).unwrap();
    let mut child = start
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.starts_with("OPENKCM READY") => break true,
            Ok(_) => continue,
            Err(_) => break false,
        }
    };
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        ready,
        "the node did not start without --require-mlock: {err}"
    );
    assert!(err.contains("mlock failed"), "no warning: {err}");
}
