//! The KMIP-over-mTLS listener: accept loop, per-connection tasks, handshake, idle, read and write timeouts, total
//! and per-identity connection limits, message framing with size limits checked before the body is read, and
//! per-message dispatch to a [`KmipService`].

use crate::identity::PeerIdentity;
use openkcm_kmip::{error_response, KmipError, ProtocolVersion};
use openkcm_ttlv::{decode, decode_header, encode, Item, Limits, HEADER_LEN};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// What a server does with one decoded request message.
#[async_trait::async_trait]
pub trait KmipService: Send + Sync + 'static {
    /// Returns the Response Message for `request`, sent by `peer`.
    async fn handle(&self, peer: &PeerIdentity, request: &Item) -> Item;
}

/// Limits and timeouts of a listener.
///
/// Every connection occupies one of `max_connections` slots, and every slot is bounded in time: an
/// unauthenticated client holds it for at most `handshake_timeout`, an authenticated one for at most `idle_timeout`
/// between messages, `read_timeout` per message and `write_timeout` per response, and one identity holds at most
/// `max_connections_per_identity` slots. When every slot is taken, new clients wait in the operating system's accept
/// queue until a slot frees rather than being turned away: before the TLS handshake the server cannot tell a
/// legitimate client from a stalled one, so refusing at the limit would fail a burst of real clients as surely as it
/// would fail an attacker, while the timeouts above guarantee that stalled connections give their slots back.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// TTLV decoder limits (message size, depth, items). A message announcing more than `max_message_bytes` is
    /// refused from its 8-byte prefix, before anything is allocated for it.
    pub ttlv: Limits,
    /// Time allowed for the TLS handshake, counted from the moment the connection is accepted.
    pub handshake_timeout: Duration,
    /// Time a connection may stay idle between messages.
    pub idle_timeout: Duration,
    /// Time allowed to receive the rest of a message once its first byte arrived (a client trickling a message in
    /// byte by byte is closed when it runs out).
    pub read_timeout: Duration,
    /// Time allowed to send one response; a client that stops reading is closed when it runs out.
    pub write_timeout: Duration,
    /// Concurrent connections (at least 1); further clients wait in the accept queue until a slot frees.
    pub max_connections: usize,
    /// Concurrent connections of one client identity. A connection beyond it is answered, on its first message,
    /// with Permission Denied naming the limit, and closed; other identities are unaffected.
    pub max_connections_per_identity: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            ttlv: Limits::default(),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_connections_per_identity: 256,
        }
    }
}

fn invalid(message: String) -> Item {
    error_response(
        ProtocolVersion::new(1, 0),
        KmipError::new(openkcm_kmip::enums::result_reason::INVALID_MESSAGE, message),
    )
}

/// What reading one framed message produced.
pub(crate) enum Frame {
    /// A complete message body (prefix included).
    Message(Vec<u8>),
    /// The peer closed the connection between messages.
    Closed,
    /// The prefix announced something unacceptable; the reply explains it and the connection must close.
    Fatal(String),
    /// A well-formed prefix announcing a message larger than the limit: `len` more bytes follow.
    Oversized {
        /// Why it is refused.
        reason: String,
        /// Bytes of the body still on the wire.
        len: usize,
    },
}

/// Oversized bodies up to this size are read and discarded so that the client receives the refusal and the
/// connection stays usable; beyond it the connection is closed after the refusal.
const DISCARD_LIMIT: usize = 64 << 20;

/// How long a reader waits for the first byte of the next message.
///
/// A connection keeps one timer for its whole life instead of arming one per message (which cost about 15% of the
/// instructions of a Get): the timer is created the first time a read has to wait, and when it fires before the
/// connection has really been idle for `limit` it is re-armed for the remaining time.
pub(crate) struct IdleDeadline {
    limit: Duration,
    since: tokio::time::Instant,
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl IdleDeadline {
    /// A deadline `limit` after now.
    pub(crate) fn new(limit: Duration) -> IdleDeadline {
        IdleDeadline {
            limit,
            since: tokio::time::Instant::now(),
            timer: None,
        }
    }

    /// Starts a new idle period now.
    fn restart(&mut self) {
        self.since = tokio::time::Instant::now();
    }

    /// Completes when `limit` has passed since the idle period started.
    async fn expired(&mut self) {
        let due = self.since + self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        loop {
            // The timer may be set for an earlier period; it is only moved when it fires.
            timer.as_mut().await;
            if tokio::time::Instant::now() >= due {
                return;
            }
            timer.as_mut().reset(due);
        }
    }
}

/// Reads one message: the 8-byte prefix (waiting up to the idle deadline, whose period starts now), then the body
/// (within `read_timeout`), refusing bodies larger than the limit before reading them.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    limits: &ServerLimits,
    expected_tag: u32,
    idle: &mut IdleDeadline,
) -> std::io::Result<Frame> {
    let mut prefix = [0u8; HEADER_LEN];
    idle.restart();
    let first = tokio::select! {
        biased;
        n = r.read(&mut prefix) => match n? {
            0 => return Ok(Frame::Closed),
            n => n,
        },
        () = idle.expired() => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "idle timeout",
            ))
        }
    };
    let rest = prefix.get_mut(first..).unwrap_or_default();
    match tokio::time::timeout(limits.read_timeout, r.read_exact(rest)).await {
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "read timeout",
            ))
        }
        Ok(res) => {
            res?;
        }
    }
    let header = decode_header(&prefix);
    if header.tag != expected_tag || header.type_code != 0x01 {
        return Ok(Frame::Fatal(format!(
            "expected a KMIP message structure (tag 0x{expected_tag:06X}), got tag 0x{:06X} type 0x{:02X}",
            header.tag, header.type_code
        )));
    }
    let total = header.total_len();
    if total > limits.ttlv.max_message_bytes {
        return Ok(Frame::Oversized {
            reason: format!(
                "the message of {total} bytes exceeds this server's limit of {} bytes",
                limits.ttlv.max_message_bytes
            ),
            len: total - HEADER_LEN,
        });
    }
    let mut buf = vec![0u8; total];
    if let Some(head) = buf.get_mut(..HEADER_LEN) {
        head.copy_from_slice(&prefix);
    }
    let body = buf.get_mut(HEADER_LEN..).unwrap_or_default();
    match tokio::time::timeout(limits.read_timeout, r.read_exact(body)).await {
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "read timeout",
        )),
        Ok(res) => res.map(|_| Frame::Message(buf)),
    }
}

/// Writes `bytes` and flushes them within the write timeout; `false` when the peer is gone or stopped reading.
async fn send<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8], limits: &ServerLimits) -> bool {
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    matches!(
        tokio::time::timeout(limits.write_timeout, write).await,
        Ok(Ok(()))
    )
}

/// Ends the TLS session (close_notify) within the write timeout; the socket itself closes when it is dropped.
async fn close<S: AsyncWrite + Unpin>(stream: &mut S, limits: &ServerLimits) {
    let _ = tokio::time::timeout(limits.write_timeout, stream.shutdown()).await;
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: PeerIdentity,
    slot: IdentitySlot,
    service: Arc<dyn KmipService>,
    limits: ServerLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut idle = IdleDeadline::new(limits.idle_timeout);
    loop {
        let frame = tokio::select! {
            f = read_frame(&mut stream, &limits, openkcm_kmip::tags::REQUEST_MESSAGE, &mut idle) => f,
            _ = shutdown.changed() => break,
        };
        let response = match frame {
            Ok(Frame::Closed) => break,
            Err(e) => {
                tracing::debug!(peer = %peer, error = %e, "connection ended");
                break;
            }
            Ok(Frame::Oversized { reason, len }) => {
                crate::limited!(crate::log_limit::BAD_MESSAGES, info, peer = %peer, %reason, "refusing an oversized message");
                let drained = if len <= DISCARD_LIMIT {
                    let mut body = (&mut stream).take(len as u64);
                    matches!(
                        tokio::time::timeout(limits.read_timeout, tokio::io::copy(&mut body, &mut tokio::io::sink())).await,
                        Ok(Ok(n)) if n == len as u64
                    )
                } else {
                    false
                };
                let sent = send(&mut stream, &encode(&invalid(reason)), &limits).await;
                if !drained || !sent {
                    close(&mut stream, &limits).await;
                    break;
                }
                continue;
            }
            Ok(Frame::Fatal(reason)) => {
                crate::limited!(crate::log_limit::BAD_MESSAGES, info, peer = %peer, %reason, "closing connection after an unacceptable message");
                if send(&mut stream, &encode(&invalid(reason)), &limits).await {
                    close(&mut stream, &limits).await;
                }
                break;
            }
            Ok(Frame::Message(mut bytes)) => {
                let response = match decode(&bytes, &limits.ttlv) {
                    Ok(mut request) => {
                        let response = service.handle(&peer, &request).await;
                        // Requests can carry key material too (an edge wrapping a data key).
                        request.zeroize_bytes();
                        response
                    }
                    Err(e) => {
                        crate::limited!(crate::log_limit::BAD_MESSAGES, info, peer = %peer, error = %e, "undecodable message");
                        invalid(format!("the message could not be decoded: {e}"))
                    }
                };
                zeroize_vec(&mut bytes);
                response
            }
        };
        let mut response = response;
        let mut out = encode(&response);
        response.zeroize_bytes();
        let sent = send(&mut stream, &out, &limits).await;
        // Responses can carry key material (Get): wipe the buffer whatever happened.
        zeroize_vec(&mut out);
        if !sent {
            tracing::debug!(peer = %peer, "connection ended: the response could not be sent within the write timeout");
            break;
        }
    }
    // The identity's slot is given back before the socket closes, so that a client reconnecting as soon as it sees
    // the close (a pool after an idle timeout) is never refused for a connection that is already over.
    drop(slot);
    drop(stream);
}

fn zeroize_vec(v: &mut Vec<u8>) {
    zeroize::Zeroize::zeroize(v);
}

/// The version to answer a request in: the one it asked for when this server speaks it, else the closest below
/// (1.0 when the request says nothing usable).
fn reply_version(bytes: &[u8], limits: &Limits) -> ProtocolVersion {
    let Ok(mut request) = decode(bytes, limits) else {
        return ProtocolVersion::new(1, 0);
    };
    let version = request
        .child(openkcm_kmip::tags::REQUEST_HEADER)
        .and_then(|h| h.child(openkcm_kmip::tags::PROTOCOL_VERSION))
        .and_then(|v| ProtocolVersion::from_item(v).ok())
        .map_or(ProtocolVersion::new(1, 0), openkcm_kmip::negotiate);
    request.zeroize_bytes();
    version
}

/// Answers the first message of a connection that will not be served with `error`, then closes it. The message
/// must arrive within the read timeout; nothing else the client sends is looked at.
async fn refuse_first_message<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    limits: &ServerLimits,
    error: KmipError,
) {
    let version = match read_frame(
        &mut stream,
        limits,
        openkcm_kmip::tags::REQUEST_MESSAGE,
        &mut IdleDeadline::new(limits.read_timeout),
    )
    .await
    {
        Ok(Frame::Message(mut bytes)) => {
            let version = reply_version(&bytes, &limits.ttlv);
            zeroize_vec(&mut bytes);
            Some(version)
        }
        Ok(Frame::Oversized { .. } | Frame::Fatal(_)) => Some(ProtocolVersion::new(1, 0)),
        Ok(Frame::Closed) | Err(_) => None,
    };
    if let Some(version) = version {
        if send(
            &mut stream,
            &encode(&error_response(version, error)),
            limits,
        )
        .await
        {
            close(&mut stream, limits).await;
        }
    }
}

/// How many connections each identity has open, bounded by [`ServerLimits::max_connections_per_identity`].
struct IdentitySlots {
    limit: usize,
    open: Mutex<HashMap<PeerIdentity, usize>>,
}

/// One connection's share of its identity's limit, given back on drop.
struct IdentitySlot {
    slots: Arc<IdentitySlots>,
    peer: PeerIdentity,
}

impl IdentitySlots {
    fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for `peer`, or `None` when it already has `limit` connections open.
    fn take(self: &Arc<Self>, peer: &PeerIdentity) -> Option<IdentitySlot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.get(peer).copied().unwrap_or(0) >= self.limit {
            return None;
        }
        *open.entry(peer.clone()).or_insert(0) += 1;
        Some(IdentitySlot {
            slots: self.clone(),
            peer: peer.clone(),
        })
    }
}

impl Drop for IdentitySlot {
    fn drop(&mut self) {
        let mut open = self
            .slots
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

/// The TLS handshake of an accepted connection, bounded by the handshake timeout. On failure or timeout the
/// connection is dropped (closed) before this returns.
async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    addr: SocketAddr,
    limits: &ServerLimits,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            crate::limited!(crate::log_limit::FAILED_HANDSHAKES, info, %addr, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            crate::limited!(crate::log_limit::FAILED_HANDSHAKES, info, %addr, "TLS handshake timed out");
            None
        }
    }
}

/// Serves KMIP on `listener` until `shutdown` becomes true.
///
/// The accept loop never waits on a client: each connection runs in its own task, where the TLS handshake happens
/// under `handshake_timeout`. A client certificate that names no known identity is refused after the handshake
/// (Authentication Not Successful on its first message), and so is a connection beyond the identity's
/// `max_connections_per_identity` (Permission Denied). See [`ServerLimits`] for what happens at `max_connections`.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    service: Arc<dyn KmipService>,
    limits: ServerLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let identities = IdentitySlots::new(limits.max_connections_per_identity);
    loop {
        let Some((permit, tcp, addr)) =
            crate::server::next_connection(&listener, &permits, &mut shutdown).await
        else {
            break;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = service.clone();
        let identities = identities.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            // Declared first, so dropped last: the connection is closed before its slot goes to the next client.
            let _permit = permit;
            let Some(tls) = handshake(&acceptor, tcp, addr, &limits).await else {
                return;
            };
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| PeerIdentity::from_certificate(c));
            let Some(peer) = identity else {
                crate::limited!(crate::log_limit::FAILED_HANDSHAKES, info, %addr, "client certificate names no OpenKCM identity; refusing");
                refuse_first_message(
                    tls,
                    &limits,
                    KmipError::new(
                        openkcm_kmip::enums::result_reason::AUTHENTICATION_NOT_SUCCESSFUL,
                        "the client certificate names no OpenKCM identity (URI SAN spiffe://openkcm/tenant/<t>/service/<s> or CN <tenant>/<service>)",
                    ),
                )
                .await;
                return;
            };
            let Some(slot) = identities.take(&peer) else {
                let limit = limits.max_connections_per_identity;
                crate::limited!(crate::log_limit::REFUSED_CONNECTIONS, warn, %addr, peer = %peer, limit, "refusing a connection: the identity has reached its connection limit");
                // Permission Denied: the client caused it (KMIP 1.x has no "limit exceeded" reason).
                refuse_first_message(
                    tls,
                    &limits,
                    KmipError::new(
                        openkcm_kmip::enums::result_reason::PERMISSION_DENIED,
                        format!(
                            "too many connections: {peer} already has {limit} open, the most this server allows per client identity (max connections per identity); reuse or close an existing connection"
                        ),
                    ),
                )
                .await;
                return;
            };
            tracing::debug!(%addr, peer = %peer, "connection authenticated");
            connection(tls, peer, slot, service, limits, shutdown).await;
        });
    }
}

/// Waits for a connection slot of `permits`, then for the next connection on `listener`; `None` once `shutdown`
/// changes (or the slots are closed). A failed accept is logged and retried after 50 ms.
pub(crate) async fn next_connection(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(
    tokio::sync::OwnedSemaphorePermit,
    tokio::net::TcpStream,
    std::net::SocketAddr,
)> {
    let permit = tokio::select! {
        p = permits.clone().acquire_owned() => p.ok()?,
        _ = shutdown.changed() => return None,
    };
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, addr)) => return Some((permit, tcp, addr)),
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{sleep, Instant};

    fn request_bytes() -> Vec<u8> {
        encode(&Item::structure(
            openkcm_kmip::tags::REQUEST_MESSAGE,
            Vec::new(),
        ))
    }

    /// The one timer of a connection is armed at its first wait and fires long before the connection has been idle
    /// for the limit; it must be moved then, not end a connection whose messages keep coming.
    #[tokio::test(start_paused = true)]
    async fn idle_deadline_counts_from_the_last_message() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let limits = ServerLimits::default();
        let limit = Duration::from_secs(10);
        let mut idle = IdleDeadline::new(limit);
        let bytes = request_bytes();
        for _ in 0..5 {
            let send = async {
                sleep(Duration::from_secs(6)).await;
                client.write_all(&bytes).await.unwrap();
            };
            let (frame, ()) = tokio::join!(
                read_frame(
                    &mut server,
                    &limits,
                    openkcm_kmip::tags::REQUEST_MESSAGE,
                    &mut idle
                ),
                send
            );
            assert!(
                matches!(frame, Ok(Frame::Message(ref m)) if *m == bytes),
                "a message 6 s after the previous one was not read (limit 10 s)"
            );
        }
        // 30 s after the first wait, a silent peer is cut off exactly one limit after its last message.
        let start = Instant::now();
        let frame = read_frame(
            &mut server,
            &limits,
            openkcm_kmip::tags::REQUEST_MESSAGE,
            &mut idle,
        )
        .await;
        match frame {
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
            Ok(_) => panic!("a silent peer was not timed out"),
        }
        assert_eq!(start.elapsed(), limit);
    }

    /// A peer that closes between messages is seen as closed, not as idle.
    #[tokio::test(start_paused = true)]
    async fn a_closed_peer_is_not_an_idle_one() {
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        let frame = read_frame(
            &mut server,
            &ServerLimits::default(),
            openkcm_kmip::tags::REQUEST_MESSAGE,
            &mut IdleDeadline::new(Duration::from_secs(1)),
        )
        .await;
        assert!(matches!(frame, Ok(Frame::Closed)));
    }
}
