//! The edge's cache of unwrapped L4 keys (DESIGN §6.3): hot keys are served without a Core round trip, but never
//! past their state (a revoked key stops encrypting and a destroyed one is gone at once), and `--l4-cache-ttl 0` turns it off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{s, Dev};

/// (hits, misses) from the line `openkcm dev` logs at shutdown.
fn cache_stats(log: &std::path::Path) -> (u64, u64) {
    let text = std::fs::read_to_string(log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("edge L4 cache"))
        .unwrap_or_else(|| panic!("no cache line in the log:\n{text}"));
    let field = |name: &str| -> u64 {
        let at = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
        line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    };
    (field("hits"), field("misses"))
}

fn exercise(dev: &Dev) {
    let uid = s(
        &dev.kmip("demo", &["create", "--activate"]).unwrap(),
        "unique_identifier",
    );
    let first = dev.kmip("demo", &["get", &uid]).unwrap();
    for _ in 0..3 {
        assert_eq!(dev.kmip("demo", &["get", &uid]).unwrap(), first);
    }
    let sealed = dev
        .kmip("demo", &["encrypt", &uid, "--text", "hello"])
        .unwrap();
    assert!(sealed.get("data_hex").is_some());
    // A cached key follows its state: revoked, it no longer encrypts; destroyed, it is gone at once.
    dev.kmip("demo", &["revoke", &uid]).unwrap();
    let refused = dev
        .kmip("demo", &["encrypt", &uid, "--text", "hello"])
        .unwrap_err();
    assert!(refused.contains("only an Active key encrypts"), "{refused}");
    dev.kmip("demo", &["destroy", &uid]).unwrap();
    let gone = dev.kmip("demo", &["get", &uid]).unwrap_err();
    assert!(gone.contains("destroyed"), "{gone}");
}

#[test]
fn hot_keys_are_served_from_the_cache_and_follow_their_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dev.log");
    let mut dev = Dev::start_logged(&dir.path().join("data"), &["demo"], Some(&log));
    exercise(&dev);
    dev.stop();
    let (hits, misses) = cache_stats(&log);
    // Create fills the cache; the four Gets and the Encrypt are served from it.
    assert_eq!((hits, misses), (5, 0));
}

#[test]
fn a_zero_ttl_turns_the_cache_off() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dev.log");
    let mut dev = Dev::start_logged_env(
        &dir.path().join("data"),
        &["demo"],
        &log,
        &[("OPENKCM_L4_CACHE_TTL", "0")],
    );
    exercise(&dev);
    dev.stop();
    assert_eq!(cache_stats(&log), (0, 0));
}
