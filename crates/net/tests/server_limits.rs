//! The listener's limits where the CLI tests cannot reach: memory never reserved for an announced message, and a
//! client that stops reading its responses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openkcm_net::pki::DevPki;
use openkcm_net::tls::{self, TlsFiles};
use openkcm_net::{serve, KmipClient, KmipService, PeerIdentity, ServerLimits};
use openkcm_ttlv::{Item, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Answers every request with a fixed Response Message of `len` opaque bytes.
struct Fixed {
    len: usize,
}

#[async_trait::async_trait]
impl KmipService for Fixed {
    async fn handle(&self, _peer: &PeerIdentity, _request: &Item) -> Item {
        Item::structure(
            openkcm_kmip::tags::RESPONSE_MESSAGE,
            vec![Item::new(
                openkcm_kmip::tags::REQUEST_PAYLOAD,
                Value::ByteString(vec![0x5A; self.len]),
            )],
        )
    }
}

struct Server {
    addr: String,
    client: Arc<rustls::ClientConfig>,
    _dir: tempfile::TempDir,
    _shutdown: tokio::sync::watch::Sender<bool>,
}

async fn start(limits: ServerLimits, response_len: usize) -> Server {
    tls::install_default_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = DevPki::open_or_create(dir.path()).unwrap();
    let acceptor =
        tokio_rustls::TlsAcceptor::from(tls::server_config(&pki.server().unwrap()).unwrap());
    let files = pki.client("demo", "default").unwrap();
    let client = tls::client_config(&TlsFiles {
        ca: pki.ca_path(),
        cert: files.cert,
        key: files.key,
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(serve(
        listener,
        acceptor,
        Arc::new(Fixed { len: response_len }),
        limits,
        rx,
    ));
    Server {
        addr,
        client,
        _dir: dir,
        _shutdown: tx,
    }
}

impl Server {
    async fn client(&self) -> KmipClient {
        KmipClient::connect(&self.addr, self.client.clone(), "localhost")
            .await
            .unwrap()
    }
}

fn request() -> Vec<u8> {
    openkcm_ttlv::encode(&Item::structure(
        openkcm_kmip::tags::REQUEST_MESSAGE,
        vec![],
    ))
}

/// The process's peak virtual memory size in bytes (`VmPeak`): a buffer allocated for an announced message would
/// show here even if no byte of it were ever touched.
fn vm_peak() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmPeak:"))
        .expect("VmPeak in /proc/self/status");
    let kb: u64 = line
        .trim_start_matches("VmPeak:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn a_length_field_beyond_the_limit_is_refused_without_reserving_memory_for_it() {
    let limits = ServerLimits {
        // Nothing here may wait for the body that never comes.
        read_timeout: Duration::from_secs(60),
        ..ServerLimits::default()
    };
    let server = start(limits, 16).await;
    // Warm up every thread and buffer of an ordinary exchange before taking the baseline.
    let mut c = server.client().await;
    c.call_raw(&request()).await.unwrap();

    let before = vm_peak();
    // A prefix announcing nearly 4 GiB, and nothing after it.
    let mut c = server.client().await;
    let reply = tokio::time::timeout(
        Duration::from_secs(20),
        c.call_raw(&[0x42, 0x00, 0x78, 0x01, 0xFF, 0xFF, 0xFF, 0xF8]),
    )
    .await
    .expect("the refusal did not wait for the body")
    .unwrap();
    let e = openkcm_kmip::ResponseMessage::parse(&reply)
        .unwrap()
        .items
        .remove(0)
        .result
        .unwrap_err();
    assert_eq!(
        e.reason,
        openkcm_kmip::enums::result_reason::INVALID_MESSAGE
    );
    assert!(e.message.contains("exceeds"), "{e:?}");
    let grown = vm_peak().saturating_sub(before);
    assert!(
        grown < 1 << 31,
        "peak virtual memory grew by {grown} bytes while refusing a 4 GiB announcement"
    );
    // Not drained (far beyond what is worth skipping): the connection is closed.
    assert!(c.call_raw(&request()).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_is_closed_at_the_write_timeout() {
    let limits = ServerLimits {
        write_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(120),
        read_timeout: Duration::from_secs(120),
        ..ServerLimits::default()
    };
    let server = start(limits, 512 << 10).await;

    // Requests keep going out, responses (512 KiB each) are never read. Once the socket buffers are full the server
    // cannot send; within the write timeout it gives up and closes, and the client's writes start failing.
    let tcp = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(server.client.clone())
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let one = request();
    let pushing = async {
        loop {
            if tls.write_all(&one).await.is_err() || tls.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), pushing)
        .await
        .expect("a client that never reads kept its connection");

    // Meanwhile and afterwards, a reading client is served.
    let mut c = server.client().await;
    assert!(c.call_raw(&one).await.is_ok());
}
