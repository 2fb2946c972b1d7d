//! The loopback `/metrics` and `/healthz` listener of `openkcm dev` (DESIGN §10, §11): Prometheus text that a
//! Prometheus text parser reads, with the seal state, the IVK version, the Core's cached keys and the IVK scrubber's
//! progress; `/healthz` follows the seal state; nothing but GET of those two paths is served.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;
use common::Dev;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// One plain HTTP/1.1 request: (status, body).
fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// One sample: name, labels (sorted), value.
type Sample = (String, Vec<(String, String)>, f64);

/// `/metrics`, parsed by a Prometheus text parser: the value of every sample, by name and labels.
fn scrape(dev: &Dev) -> Vec<Sample> {
    let (status, body) = http(&dev.metrics, "GET", "/metrics");
    assert_eq!(status, 200, "{body}");
    let parsed = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap();
    parsed
        .samples
        .into_iter()
        .map(|s| {
            let v = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("unexpected sample {other:?}"),
            };
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            labels.sort();
            (s.metric, labels, v)
        })
        .collect()
}

fn value(samples: &[Sample], name: &str) -> f64 {
    samples
        .iter()
        .find(|(n, ..)| n == name)
        .unwrap_or_else(|| panic!("{name} missing from {samples:?}"))
        .2
}

#[test]
fn metrics_show_seal_state_ivk_version_cache_and_scrubber_progress() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("OPENKCM_SCRUB_AGE_DAYS", "0")];
    let mut dev = Dev::start_env(dir.path(), &["demo", "beta"], &env);
    assert!(dev.metrics.starts_with("127.0.0.1:"), "{}", dev.metrics);
    dev.kmip("demo", &["create"]).unwrap();
    let m = scrape(&dev);
    assert_eq!(value(&m, "openkcm_sealed"), 0.0);
    assert_eq!(value(&m, "openkcm_ivk_active_version"), 1.0);
    let l3 = m
        .iter()
        .find(|(n, l, _)| n == "openkcm_core_cached_keys" && l == &[("layer".into(), "l3".into())])
        .unwrap();
    assert!(l3.2 >= 1.0, "{m:?}");
    assert_eq!(
        http(&dev.metrics, "GET", "/healthz"),
        (200, "ready\n".into())
    );
    // GET of the two paths only.
    assert_eq!(http(&dev.metrics, "POST", "/metrics").0, 405);
    assert_eq!(http(&dev.metrics, "GET", "/keys").0, 404);

    // A new IVK version: after a restart the scrubber moves both tenants' bindings at once (scrub age 0).
    let (ok, _, err) = dev.operator(&["rotate-ivk"]);
    assert!(ok, "{err}");
    dev.stop();
    let mut dev = Dev::start_env(dir.path(), &["demo", "beta"], &env);
    let deadline = Instant::now() + Duration::from_secs(20);
    let m = loop {
        let m = scrape(&dev);
        if value(&m, "openkcm_ivk_scrub_passes_total") >= 1.0 || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(value(&m, "openkcm_ivk_active_version"), 2.0);
    assert_eq!(value(&m, "openkcm_ivk_scrub_rewrapped_total"), 2.0, "{m:?}");
    assert_eq!(value(&m, "openkcm_ivk_scrub_failed_total"), 0.0);
    assert_eq!(value(&m, "openkcm_ivk_scrub_remaining"), 0.0);

    // Sealed: the gauge and /healthz say so.
    let (ok, _, err) = dev.operator(&["seal"]);
    assert!(ok, "{err}");
    let m = scrape(&dev);
    assert_eq!(value(&m, "openkcm_sealed"), 1.0);
    assert_eq!(
        http(&dev.metrics, "GET", "/healthz"),
        (503, "sealed\n".into())
    );
    dev.stop();
}
