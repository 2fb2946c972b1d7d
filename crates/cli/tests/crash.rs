//! Crash safety across rotations (DESIGN §5, issue 6): `openkcm dev` is killed with SIGKILL at varying moments while
//! clients create data keys and an operator rotates the IVK (plain and emergency, which re-wraps every binding the
//! way the scrubber does), the service key and the system key, and re-wraps the system's service keys (deep
//! re-key); the scrubber itself runs at every start (scrub age 0). After every restart each data key whose Create
//! was answered still opens to the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Dev;
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn every_answered_key_survives_kills_during_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let mut known: BTreeMap<String, String> = BTreeMap::new();
    let tenants = ["demo", "t2", "t3"];
    let env = [("OPENKCM_SCRUB_AGE_DAYS", "0")];
    let succeeded = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    for round in 0..6u64 {
        let mut dev = Dev::start_env(dir.path(), &tenants, &env);
        // Everything answered before this start must open.
        for (uid, key) in &known {
            let got = dev.kmip("demo", &["get", uid]).unwrap();
            assert_eq!(&common::s(&got, "key_hex"), key, "round {round}: {uid}");
        }
        // Rotations from the operator, while keys are created.
        let rotate = std::thread::spawn({
            let data = dev.data.clone();
            let succeeded = succeeded.clone();
            move || {
                let system = ["--tenant", "demo", "--system", "demo-system"];
                let actions: [Vec<&str>; 5] = [
                    vec!["rotate-ivk"],
                    vec!["rotate-l3", "--tenant", "demo", "--service", "default"],
                    [&["rotate-l2"][..], &system].concat(),
                    [&["rewrap"][..], &system].concat(),
                    vec!["rotate-ivk", "--emergency"],
                ];
                for i in 0..3 {
                    let what = &actions[(usize::try_from(round).unwrap() + i) % 5];
                    let done = std::process::Command::new(common::BIN)
                        .arg("operator")
                        .args(what)
                        .arg("--data-dir")
                        .arg(&data)
                        .output()
                        .is_ok_and(|o| o.status.success());
                    if done {
                        succeeded.lock().unwrap().insert(what.join(" "));
                    }
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
    let mut dev = Dev::start_env(dir.path(), &tenants, &env);
    for (uid, key) in &known {
        let got = dev.kmip("demo", &["get", uid]).unwrap();
        assert_eq!(&common::s(&got, "key_hex"), key, "{uid}");
    }
    assert!(known.len() >= 10, "only {} keys were made", known.len());
    // Every kind of operation ran to completion at least once between the kills.
    assert_eq!(
        succeeded.lock().unwrap().len(),
        5,
        "{:?}",
        succeeded.lock().unwrap()
    );
    dev.stop();
}
