//! Connection limits and timeouts against a running `openkcm dev`, configured through its flags (here through their
//! `OPENKCM_…` environment forms): silent and half-finished handshakes, idle connections, messages trickling in,
//! the message size limit at its boundary, the per-identity connection limit, and the total limit with its slots
//! freed by the timeouts. `hostile.rs` covers malformed and oversized messages with the default limits.
//!
//! Timing assertions are one-sided where they can be (a timer never fires early) and otherwise generous; whether a
//! client was served before or after a slot was freed is decided from the kernel's view of the sockets, not clocks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{edge_client, Dev, BIN};
use openkcm_kmip::enums::{operation as op, result_reason as rr};
use openkcm_kmip::{tags as t, KmipError, ProtocolVersion, RequestMessage, ResponseMessage};
use openkcm_ttlv::Item;
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_rustls::client::TlsStream;

/// Upper bound for anything that should happen "soon" on a slow, shared machine.
const GENEROUS: Duration = Duration::from_secs(20);

fn discover(version: ProtocolVersion) -> Item {
    RequestMessage::new(
        version,
        vec![(
            op::DISCOVER_VERSIONS,
            Item::structure(t::REQUEST_PAYLOAD, vec![]),
        )],
    )
    .to_item()
}

fn v14() -> ProtocolVersion {
    ProtocolVersion::new(1, 4)
}

fn first_result(resp: &Item) -> Result<Item, KmipError> {
    ResponseMessage::parse(resp)
        .unwrap()
        .items
        .into_iter()
        .next()
        .unwrap()
        .result
}

/// A raw TCP client that never completes a TLS handshake. Kept as a blocking std socket so that "has the server
/// closed it?" is asked of the kernel directly, with no runtime readiness cache in between.
struct Stalled(std::net::TcpStream);

impl Stalled {
    /// Connects and sends nothing.
    fn silent(addr: &str) -> Self {
        Self(std::net::TcpStream::connect(addr).unwrap())
    }

    /// Connects and sends the first half of a genuine ClientHello.
    fn half_client_hello(addr: &str, dev: &Dev) -> Self {
        let mut conn = rustls::ClientConnection::new(
            client_config(dev, "demo"),
            "localhost".try_into().unwrap(),
        )
        .unwrap();
        let mut hello = Vec::new();
        conn.write_tls(&mut hello).unwrap();
        assert!(hello.len() > 100, "a ClientHello record");
        let s = Self::silent(addr);
        (&s.0).write_all(&hello[..hello.len() / 2]).unwrap();
        s
    }

    /// Whether the server has closed the connection (or sent anything, which it must not before a handshake).
    fn hung_up(&self) -> bool {
        hung_up(&self.0)
    }
}

fn hung_up(s: &std::net::TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 64];
    !matches!((&*s).read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Polls until every one of `stalled` has been closed by the server; returns the time since `since`.
async fn all_hung_up(stalled: &[Stalled], since: Instant) -> Duration {
    loop {
        if stalled.iter().all(Stalled::hung_up) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < GENEROUS,
            "{} of {} stalled connections still open after {:?}",
            stalled.iter().filter(|s| !s.hung_up()).count(),
            stalled.len(),
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn client_config(dev: &Dev, tenant: &str) -> std::sync::Arc<rustls::ClientConfig> {
    openkcm_net::tls::install_default_provider();
    let (cert, key) = dev.cert(tenant);
    openkcm_net::tls::client_config(&openkcm_net::tls::TlsFiles {
        ca: dev.ca.clone(),
        cert,
        key,
    })
    .unwrap()
}

/// A TLS connection to the edge whose bytes the test writes itself.
async fn tls(dev: &Dev, tenant: &str) -> TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(&dev.edge).await.unwrap();
    tokio_rustls::TlsConnector::from(client_config(dev, tenant))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

/// Sends `request` on `s` and reads one response.
async fn call(s: &mut TlsStream<tokio::net::TcpStream>, request: &Item) -> Item {
    s.write_all(&openkcm_ttlv::encode(request)).await.unwrap();
    s.flush().await.unwrap();
    let mut prefix = [0u8; 8];
    s.read_exact(&mut prefix).await.unwrap();
    let len = u32::from_be_bytes(prefix[4..8].try_into().unwrap()) as usize;
    let mut message = prefix.to_vec();
    message.resize(8 + len, 0);
    s.read_exact(&mut message[8..]).await.unwrap();
    openkcm_ttlv::decode(&message, &openkcm_ttlv::Limits::default()).unwrap()
}

/// Whether the server has closed a TLS connection the test no longer reads from (asked of the kernel).
fn tls_hung_up(s: TlsStream<tokio::net::TcpStream>) -> bool {
    hung_up(&s.into_inner().0.into_std().unwrap())
}

/// Reads (and ignores) whatever comes until the server closes the connection; returns the time since `since`.
async fn closed_after<R: AsyncRead + Unpin>(mut r: R, since: Instant) -> Duration {
    let mut buf = [0u8; 1024];
    let read_to_end = async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(GENEROUS, read_to_end)
        .await
        .expect("the server did not close the connection");
    since.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_handshakes_are_dropped_at_the_handshake_timeout_and_never_delay_others() {
    let dir = tempfile::tempdir().unwrap();
    let timeout = Duration::from_secs(5);
    let mut dev = Dev::start_env(dir.path(), &["demo"], &[("OPENKCM_HANDSHAKE_TIMEOUT", "5")]);

    let since = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..30 {
        stalled.push(Stalled::silent(&dev.edge));
        stalled.push(Stalled::half_client_hello(&dev.edge, &dev));
    }
    // A well-behaved client queued behind all 60 is served while every one of them is still held open: the accept
    // loop handed each to its own task instead of waiting for its handshake.
    let mut good = edge_client(&dev, "demo").await;
    assert!(first_result(&good.call(&discover(v14())).await.unwrap()).is_ok());
    let open = stalled.iter().filter(|s| !s.hung_up()).count();
    assert_eq!(
        open,
        stalled.len(),
        "stalled handshakes were dropped before the good client was served ({:?}): they delayed it",
        since.elapsed()
    );

    // Each stalled connection is dropped once the handshake timeout has run out, and not before.
    let elapsed = all_hung_up(&stalled, since).await;
    assert!(
        elapsed >= timeout - Duration::from_millis(500),
        "stalled handshakes were dropped after {elapsed:?}, before the 5 s handshake timeout"
    );
    // The good connection, busy, is untouched.
    assert!(first_result(&good.call(&discover(v14())).await.unwrap()).is_ok());
    dev.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_and_trickling_messages_are_closed_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start_env(
        dir.path(),
        &["demo"],
        &[("OPENKCM_IDLE_TIMEOUT", "2"), ("OPENKCM_READ_TIMEOUT", "2")],
    );
    let at_least = Duration::from_millis(1500);

    // A busy client, calling every 100 ms (well inside the idle timeout), for as long as the hostile ones live.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let mut busy = edge_client(&dev, "demo").await;
    let busy = tokio::spawn(async move {
        let mut served = 0;
        loop {
            assert!(
                first_result(&busy.call(&discover(v14())).await.unwrap()).is_ok(),
                "the busy client was refused"
            );
            served += 1;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = stop_rx.changed() => return served,
            }
        }
    });

    // Idle after one message, and silent from the start: closed by the idle timeout.
    let mut idle = tls(&dev, "demo").await;
    assert!(first_result(&call(&mut idle, &discover(v14())).await).is_ok());
    let idle = closed_after(idle, Instant::now());
    let quiet = closed_after(tls(&dev, "demo").await, Instant::now());

    // Half a message prefix, then nothing: closed by the read timeout.
    let mut partial = tls(&dev, "demo").await;
    let since_partial = Instant::now();
    partial.write_all(&[0x42, 0x00, 0x78, 0x01]).await.unwrap();
    partial.flush().await.unwrap();
    let partial = closed_after(partial, since_partial);

    // Slowloris: a 4 KiB message whose body trickles in a byte every 100 ms. Every byte restarts no clock: the whole
    // message is due within the read timeout, so the connection is closed after about 2 s, not 400.
    let (rd, mut wr) = tokio::io::split(tls(&dev, "demo").await);
    let since_trickle = Instant::now();
    wr.write_all(&[0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x10, 0x00])
        .await
        .unwrap();
    wr.flush().await.unwrap();
    let trickler = tokio::spawn(async move {
        for _ in 0..4096 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if wr.write_all(&[0]).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
    });
    let trickle = closed_after(rd, since_trickle);

    let (idle, quiet, partial, trickle) = tokio::join!(idle, quiet, partial, trickle);
    for (what, elapsed) in [
        ("idle after a message", idle),
        ("silent after the handshake", quiet),
        ("half a prefix", partial),
        ("trickling body", trickle),
    ] {
        assert!(
            elapsed >= at_least,
            "{what}: closed after {elapsed:?}, before its 2 s timeout"
        );
    }
    trickler.abort();

    let _ = stop_tx.send(true);
    let served = busy.await.unwrap();
    assert!(served >= 10, "the busy client was served {served} times");
    dev.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn max_message_bytes_refuses_from_the_length_field_and_keeps_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start_env(
        dir.path(),
        &["demo"],
        &[("OPENKCM_MAX_MESSAGE_BYTES", "4096")],
    );
    let mut c = edge_client(&dev, "demo").await;
    let frame = |total: usize| {
        let mut m = vec![0x42, 0x00, 0x78, 0x01];
        m.extend_from_slice(&u32::try_from(total - 8).unwrap().to_be_bytes());
        m.resize(total, 0);
        m
    };

    // Exactly at the limit: read and decoded (and found malformed), not refused for its size.
    let e = first_result(&c.call_raw(&frame(4096)).await.unwrap()).unwrap_err();
    assert_eq!(e.reason, rr::INVALID_MESSAGE);
    assert!(!e.message.contains("exceeds"), "{e:?}");

    // One TTLV step over it: Invalid Message naming both sizes.
    let e = first_result(&c.call_raw(&frame(4104)).await.unwrap()).unwrap_err();
    assert_eq!(e.reason, rr::INVALID_MESSAGE);
    assert!(
        e.message.contains("4104") && e.message.contains("limit of 4096 bytes"),
        "{e:?}"
    );
    // The refused body was skipped, so the connection still works.
    assert!(first_result(&c.call(&discover(v14())).await.unwrap()).is_ok());

    // Ordinary work, edge to Core included, fits comfortably under such a limit.
    dev.kmip("demo", &["create", "--activate"]).unwrap();
    dev.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identity_over_its_connection_limit_is_refused_and_others_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start_env(
        dir.path(),
        &["demo", "other"],
        &[("OPENKCM_MAX_CONNECTIONS_PER_IDENTITY", "4")],
    );

    let mut demo = Vec::new();
    for _ in 0..4 {
        let mut c = edge_client(&dev, "demo").await;
        assert!(first_result(&c.call(&discover(v14())).await.unwrap()).is_ok());
        demo.push(c);
    }
    // The fifth: the handshake succeeds (the identity is only known from it), the first message is refused in the
    // client's own version, and the connection is closed.
    let mut fifth = edge_client(&dev, "demo").await;
    let resp = fifth
        .call(&discover(ProtocolVersion::new(2, 0)))
        .await
        .unwrap();
    assert_eq!(
        ResponseMessage::parse(&resp).unwrap().version,
        ProtocolVersion::new(2, 0)
    );
    let e = first_result(&resp).unwrap_err();
    assert_eq!(e.reason, rr::PERMISSION_DENIED, "{e:?}");
    assert!(
        e.message.contains("demo/default already has 4 open")
            && e.message.contains("per client identity"),
        "{e:?}"
    );
    assert!(fifth.call(&discover(v14())).await.is_err());
    // The four keep working.
    for c in &mut demo {
        assert!(first_result(&c.call(&discover(v14())).await.unwrap()).is_ok());
    }

    // Another identity is unaffected, and the edge's pool to the Core (its own identity there) too.
    let mut other = Vec::new();
    for _ in 0..3 {
        let mut c = edge_client(&dev, "other").await;
        assert!(first_result(&c.call(&discover(v14())).await.unwrap()).is_ok());
        other.push(c);
    }
    dev.kmip("other", &["create", "--activate"]).unwrap();

    // A closed connection gives its place back.
    drop(demo.pop());
    let since = Instant::now();
    loop {
        let mut c = edge_client(&dev, "demo").await;
        match first_result(&c.call(&discover(v14())).await.unwrap()) {
            Ok(_) => break,
            Err(e) if e.reason == rr::PERMISSION_DENIED && since.elapsed() < GENEROUS => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("a freed place was not given back: {e:?}"),
        }
    }
    dev.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_total_limit_stalled_connections_give_their_slots_back_by_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start_env(
        dir.path(),
        &["demo"],
        &[
            ("OPENKCM_MAX_CONNECTIONS", "4"),
            ("OPENKCM_HANDSHAKE_TIMEOUT", "2"),
            ("OPENKCM_IDLE_TIMEOUT", "2"),
        ],
    );

    // Four silent TCP clients fill every slot. A real client queued behind them is served only once the handshake
    // timeout has closed one of them: when it is served, the kernel already shows at least one of them closed.
    let since = Instant::now();
    let stalled: Vec<_> = (0..4).map(|_| Stalled::silent(&dev.edge)).collect();
    let mut good = tokio::time::timeout(GENEROUS, edge_client(&dev, "demo"))
        .await
        .expect("a client waiting for a slot was never served");
    assert!(first_result(&good.call(&discover(v14())).await.unwrap()).is_ok());
    let freed = stalled.iter().filter(|s| s.hung_up()).count();
    assert!(
        freed >= 1,
        "the client was served while all 4 slots were held: the total limit is not enforced"
    );
    all_hung_up(&stalled, since).await;
    drop(good);

    // Four authenticated clients that go idle after one message fill every slot again. The idle timeout frees them.
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut c = tokio::time::timeout(GENEROUS, tls(&dev, "demo"))
            .await
            .unwrap();
        assert!(first_result(&call(&mut c, &discover(v14())).await).is_ok());
        idle.push(c);
    }
    let mut good = tokio::time::timeout(GENEROUS, edge_client(&dev, "demo"))
        .await
        .expect("a client waiting for a slot held by idle connections was never served");
    assert!(first_result(&good.call(&discover(v14())).await.unwrap()).is_ok());
    let freed = idle
        .into_iter()
        .filter(|_| true)
        .map(tls_hung_up)
        .filter(|&h| h)
        .count();
    assert!(
        freed >= 1,
        "the client was served while 4 idle connections held every slot"
    );
    dev.stop();
}

#[test]
fn limit_flags_are_documented_and_inconsistent_ones_refused() {
    let help = Command::new(BIN).args(["dev", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--max-connections ",
        "--max-connections-per-identity",
        "--handshake-timeout",
        "--read-timeout",
        "--idle-timeout",
        "--max-message-bytes",
    ] {
        assert!(help.contains(flag), "`openkcm dev --help` lacks {flag}");
    }

    // The edge's pool to the Core (4 connections by default) must fit the Core's per-identity limit.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("dev")
        .arg("--data-dir")
        .arg(dir.path())
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
        .args(["--max-connections-per-identity", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--core-connections 4 is more than --max-connections-per-identity 2"),
        "{err}"
    );
    // Nonsense values are refused by the parser.
    for bad in [
        ["--max-message-bytes", "10"],
        ["--max-connections", "0"],
        ["--handshake-timeout", "0"],
        ["--core-connections", "0"],
        ["--l4-cache-ttl", "301"],
        ["--metrics-addr", "0.0.0.0:0"],
    ] {
        let out = Command::new(BIN)
            .arg("dev")
            .arg("--data-dir")
            .arg(dir.path())
            .args(bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?} accepted");
        // Refused for that value, not for something else.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(bad[0]) || err.contains(bad[1]),
            "{bad:?}: {err}"
        );
    }
}
