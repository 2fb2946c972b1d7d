//! KMIP clients over mTLS: a single connection for tools and tests ([`KmipClient`]), and a pool of long-lived,
//! pipelined connections for the edge's traffic to the Core ([`KmipPool`]).

use crate::server::{read_frame, Frame, IdleDeadline, ServerLimits};
use crate::NetError;
use openkcm_ttlv::{decode, encode, Item};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn connect_tls(
    addr: &str,
    config: Arc<ClientConfig>,
    server_name: &str,
) -> Result<TlsStream<TcpStream>, NetError> {
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|_| NetError::Pki(format!("{server_name:?} is not a valid server name")))?;
    let connect = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| NetError::io(format!("cannot connect to {addr}"), e))?;
        let _ = tcp.set_nodelay(true);
        TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| NetError::io(format!("TLS handshake with {addr} failed"), e))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| NetError::Timeout("connecting"))?
}

fn client_limits() -> ServerLimits {
    ServerLimits {
        read_timeout: RESPONSE_TIMEOUT,
        ..ServerLimits::default()
    }
}

async fn read_response<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> Result<Item, NetError> {
    let limits = client_limits();
    match read_frame(
        r,
        &limits,
        openkcm_kmip::tags::RESPONSE_MESSAGE,
        &mut IdleDeadline::new(RESPONSE_TIMEOUT),
    )
    .await
    {
        Ok(Frame::Message(mut bytes)) => {
            let item = decode(&bytes, &limits.ttlv).map_err(|e| NetError::Protocol(e.to_string()));
            // Responses can carry key material (an unwrapped data key).
            zeroize::Zeroize::zeroize(&mut bytes);
            item
        }
        Ok(Frame::Closed) => Err(NetError::Protocol(
            "the server closed the connection".into(),
        )),
        Ok(Frame::Fatal(m) | Frame::Oversized { reason: m, .. }) => Err(NetError::Protocol(m)),
        Err(e) => Err(NetError::io("reading the response failed", e)),
    }
}

/// One KMIP connection: send a request, wait for its response.
pub struct KmipClient {
    stream: TlsStream<TcpStream>,
}

impl KmipClient {
    /// Connects to `addr` (host:port), verifying the server certificate against `server_name`.
    pub async fn connect(
        addr: &str,
        config: Arc<ClientConfig>,
        server_name: &str,
    ) -> Result<Self, NetError> {
        Ok(Self {
            stream: connect_tls(addr, config, server_name).await?,
        })
    }

    /// Sends raw bytes (for tests of hostile input) and reads one response.
    pub async fn call_raw(&mut self, bytes: &[u8]) -> Result<Item, NetError> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| NetError::io("sending the request failed", e))?;
        self.stream
            .flush()
            .await
            .map_err(|e| NetError::io("sending the request failed", e))?;
        read_response(&mut self.stream).await
    }

    /// Sends `request` and returns the Response Message.
    pub async fn call(&mut self, request: &Item) -> Result<Item, NetError> {
        let mut bytes = encode(request);
        let result = self.call_raw(&bytes).await;
        zeroize::Zeroize::zeroize(&mut bytes);
        result
    }
}

type Reply = oneshot::Sender<Result<Item, NetError>>;

struct Pipelined {
    tx: mpsc::Sender<(Vec<u8>, Reply)>,
}

impl Pipelined {
    fn start(stream: TlsStream<TcpStream>) -> Self {
        let (read, write) = tokio::io::split(stream);
        let (tx, rx) = mpsc::channel::<(Vec<u8>, Reply)>(1024);
        let (pending_tx, pending_rx) = mpsc::unbounded_channel::<Reply>();
        let (dead_tx, dead_rx) = oneshot::channel::<()>();
        tokio::spawn(Self::writer(write, rx, pending_tx, dead_rx));
        tokio::spawn(Self::reader(read, pending_rx, dead_tx));
        Self { tx }
    }

    /// Writes requests in order, registering each reply slot with the reader *before* the bytes go out. Stops when
    /// the reader reports the connection dead, so the pool sees the channel closed and reconnects; a request it
    /// drops unwritten has its reply slot dropped, which callers may safely retry.
    async fn writer(
        mut w: WriteHalf<TlsStream<TcpStream>>,
        mut rx: mpsc::Receiver<(Vec<u8>, Reply)>,
        pending: mpsc::UnboundedSender<Reply>,
        mut dead: oneshot::Receiver<()>,
    ) {
        loop {
            let (mut bytes, reply) = tokio::select! {
                biased;
                _ = &mut dead => break,
                next = rx.recv() => match next { Some(n) => n, None => break },
            };
            if pending.send(reply).is_err() {
                break;
            }
            let written = w.write_all(&bytes).await;
            // Requests can carry key material (a data key being wrapped).
            zeroize::Zeroize::zeroize(&mut bytes);
            if written.is_err() || w.flush().await.is_err() {
                break;
            }
        }
        rx.close();
    }

    /// Reads responses in order. While nothing is outstanding it still watches the socket, so a connection the
    /// server closed (idle timeout, restart) is noticed at once instead of failing the next request.
    async fn reader(
        mut r: ReadHalf<TlsStream<TcpStream>>,
        mut pending: mpsc::UnboundedReceiver<Reply>,
        dead: oneshot::Sender<()>,
    ) {
        let mut probe = [0u8; 1];
        loop {
            let reply = tokio::select! {
                biased;
                reply = pending.recv() => match reply { Some(reply) => reply, None => break },
                // Nothing is outstanding: EOF, an error or unsolicited bytes all mean the connection is unusable.
                _ = r.read(&mut probe) => break,
            };
            let result = read_response(&mut r).await;
            let failed = result.is_err();
            let _ = reply.send(result.map_err(|e| NetError::ConnectionLost(e.to_string())));
            if failed {
                break;
            }
        }
        let _ = dead.send(());
        // Fail whatever was written but not answered.
        pending.close();
        while let Some(reply) = pending.recv().await {
            let _ = reply.send(Err(NetError::ConnectionLost(
                "the connection closed before the response".into(),
            )));
        }
    }
}

/// A fixed set of long-lived, pipelined connections to one server, reconnected on demand.
pub struct KmipPool {
    addr: String,
    server_name: String,
    config: Arc<ClientConfig>,
    slots: Vec<Mutex<Option<Pipelined>>>,
    next: AtomicUsize,
}

impl KmipPool {
    /// A pool of `size` connections to `addr` (opened lazily).
    pub fn new(addr: &str, server_name: &str, config: Arc<ClientConfig>, size: usize) -> Self {
        Self {
            addr: addr.to_owned(),
            server_name: server_name.to_owned(),
            config,
            slots: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    async fn sender(&self, slot: usize) -> Result<mpsc::Sender<(Vec<u8>, Reply)>, NetError> {
        let Some(m) = self.slots.get(slot % self.slots.len()) else {
            return Err(NetError::Protocol("connection pool is empty".into()));
        };
        let mut guard = m.lock().await;
        if let Some(p) = guard.as_ref() {
            if !p.tx.is_closed() {
                return Ok(p.tx.clone());
            }
        }
        let stream = connect_tls(&self.addr, self.config.clone(), &self.server_name).await?;
        let p = Pipelined::start(stream);
        let tx = p.tx.clone();
        *guard = Some(p);
        Ok(tx)
    }

    /// Sends `request` on the next connection and waits for its response. A request that never reached the wire
    /// (its connection had died) is retried on a fresh connection; one that may have been written is not.
    pub async fn call(&self, request: &Item) -> Result<Item, NetError> {
        self.call_with(request, false).await
    }

    /// Like [`KmipPool::call`], but also retries, once per connection, a request that may already have been written
    /// when its connection broke. Only for operations without side effects (lookups, wrap and unwrap).
    pub async fn call_idempotent(&self, request: &Item) -> Result<Item, NetError> {
        self.call_with(request, true).await
    }

    async fn call_with(&self, request: &Item, retry_if_written: bool) -> Result<Item, NetError> {
        let mut bytes = encode(request);
        let result = self.send_bytes(&bytes, retry_if_written).await;
        zeroize::Zeroize::zeroize(&mut bytes);
        result
    }

    async fn send_bytes(&self, bytes: &[u8], retry_if_written: bool) -> Result<Item, NetError> {
        let slot = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last = NetError::ConnectionLost("no connection could be used".into());
        for attempt in 0..=self.slots.len() {
            let tx = self.sender(slot.wrapping_add(attempt)).await?;
            let (reply_tx, reply_rx) = oneshot::channel();
            if tx.send((bytes.to_vec(), reply_tx)).await.is_err() {
                continue;
            }
            match tokio::time::timeout(RESPONSE_TIMEOUT, reply_rx).await {
                Err(_) => return Err(NetError::Timeout("waiting for the server's response")),
                // Dropped unwritten: always safe to retry.
                Ok(Err(_)) => continue,
                Ok(Ok(Err(e @ NetError::ConnectionLost(_)))) if retry_if_written => last = e,
                Ok(Ok(result)) => return result,
            }
        }
        Err(last)
    }
}
