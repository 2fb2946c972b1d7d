//! Crash safety across rotations (DESIGN §5, issue 6): `openkcm dev` is killed with SIGKILL at varying moments while
//! clients create data keys and an operator rotates the IVK and the service key; after every restart each data key
//! whose Create was answered still opens to the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Dev;
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn every_answered_key_survives_kills_during_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let mut known: BTreeMap<String, String> = BTreeMap::new();
    for round in 0..5u64 {
        let mut dev = Dev::start(dir.path(), &["demo"]);
        // Everything answered before this start must open.
        for (uid, key) in &known {
            let got = dev.kmip("demo", &["get", uid]).unwrap();
            assert_eq!(&common::s(&got, "key_hex"), key, "round {round}: {uid}");
        }
        // Rotations from the operator, while keys are created.
        let rotate = std::thread::spawn({
            let data = dev.data.clone();
            move || {
                for i in 0..3 {
                    let what = if i % 2 == 0 {
                        vec!["rotate-ivk"]
                    } else {
                        vec!["rotate-l3", "--tenant", "demo", "--service", "default"]
                    };
                    let _ = std::process::Command::new(common::BIN)
                        .arg("operator")
                        .args(&what)
                        .arg("--data-dir")
                        .arg(&data)
                        .output();
                }
            }
        });
        for _ in 0..4 {
            if let Ok(created) = dev.kmip("demo", &["create"]) {
                let uid = common::s(&created, "unique_identifier");
                if let Ok(got) = dev.kmip("demo", &["get", &uid]) {
                    known.insert(uid, common::s(&got, "key_hex"));
                }
            }
        }
        // Killed a little later each round, possibly in the middle of a rotation.
        std::thread::sleep(Duration::from_millis(20 * round));
        dev.kill_now();
        rotate.join().unwrap();
    }
    let mut dev = Dev::start(dir.path(), &["demo"]);
    for (uid, key) in &known {
        let got = dev.kmip("demo", &["get", uid]).unwrap();
        assert_eq!(&common::s(&got, "key_hex"), key, "{uid}");
    }
    assert!(known.len() >= 10, "only {} keys were made", known.len());
    dev.stop();
}
