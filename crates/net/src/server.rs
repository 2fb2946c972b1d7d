//! The KMIP-over-mTLS listener: accept loop, per-connection tasks, handshake and read timeouts, message framing
//! with size limits checked before the body is read, and per-message dispatch to a [`KmipService`].

use crate::identity::PeerIdentity;
use openkcm_kmip::{error_response, KmipError, ProtocolVersion};
use openkcm_ttlv::{decode, decode_header, encode, Item, Limits, HEADER_LEN};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

/// What a server does with one decoded request message.
#[async_trait::async_trait]
pub trait KmipService: Send + Sync + 'static {
    /// Returns the Response Message for `request`, sent by `peer`.
    async fn handle(&self, peer: &PeerIdentity, request: &Item) -> Item;
}

/// Limits and timeouts of a listener.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// TTLV decoder limits (message size, depth, items).
    pub ttlv: Limits,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time a connection may stay idle between messages.
    pub idle_timeout: Duration,
    /// Time allowed to receive the rest of a message once its first byte arrived.
    pub read_timeout: Duration,
    /// Concurrent connections; further clients wait in the accept queue.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            ttlv: Limits::default(),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            read_timeout: Duration::from_secs(10),
            max_connections: 4096,
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

/// Reads one message: the 8-byte prefix (waiting up to `idle`), then the body (within `read_timeout`), refusing
/// bodies larger than the limit before reading them.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    limits: &ServerLimits,
    expected_tag: u32,
    idle: Duration,
) -> std::io::Result<Frame> {
    let mut prefix = [0u8; HEADER_LEN];
    let first = match tokio::time::timeout(idle, r.read(&mut prefix)).await {
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "idle timeout",
            ))
        }
        Ok(Ok(0)) => return Ok(Frame::Closed),
        Ok(n) => n?,
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

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: PeerIdentity,
    service: Arc<dyn KmipService>,
    limits: ServerLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let frame = tokio::select! {
            f = read_frame(&mut stream, &limits, openkcm_kmip::tags::REQUEST_MESSAGE, limits.idle_timeout) => f,
            _ = shutdown.changed() => break,
        };
        let response = match frame {
            Ok(Frame::Closed) => break,
            Err(e) => {
                tracing::debug!(peer = %peer, error = %e, "connection ended");
                break;
            }
            Ok(Frame::Oversized { reason, len }) => {
                tracing::info!(peer = %peer, %reason, "refusing an oversized message");
                let drained = if len <= DISCARD_LIMIT {
                    let mut body = (&mut stream).take(len as u64);
                    matches!(
                        tokio::time::timeout(limits.read_timeout, tokio::io::copy(&mut body, &mut tokio::io::sink())).await,
                        Ok(Ok(n)) if n == len as u64
                    )
                } else {
                    false
                };
                let _ = stream.write_all(&encode(&invalid(reason))).await;
                if !drained {
                    let _ = stream.shutdown().await;
                    break;
                }
                continue;
            }
            Ok(Frame::Fatal(reason)) => {
                tracing::info!(peer = %peer, %reason, "closing connection after an unacceptable message");
                let _ = stream.write_all(&encode(&invalid(reason))).await;
                let _ = stream.shutdown().await;
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
                        tracing::info!(peer = %peer, error = %e, "undecodable message");
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
        let written = stream.write_all(&out).await;
        // Responses can carry key material (Get): wipe the buffer whatever happened.
        zeroize_vec(&mut out);
        if written.is_err() || stream.flush().await.is_err() {
            break;
        }
    }
}

fn zeroize_vec(v: &mut Vec<u8>) {
    zeroize::Zeroize::zeroize(v);
}

/// Answers the first message of a client whose certificate names no tenant/service or edge identity with
/// Authentication Not Successful, then closes.
async fn refuse_unknown_identity<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    limits: &ServerLimits,
) {
    if let Ok(Frame::Message(_)) = read_frame(
        &mut stream,
        limits,
        openkcm_kmip::tags::REQUEST_MESSAGE,
        limits.read_timeout,
    )
    .await
    {
        let refusal = error_response(
            ProtocolVersion::new(1, 0),
            KmipError::new(
                openkcm_kmip::enums::result_reason::AUTHENTICATION_NOT_SUCCESSFUL,
                "the client certificate names no OpenKCM identity (URI SAN spiffe://openkcm/tenant/<t>/service/<s> or CN <tenant>/<service>)",
            ),
        );
        let _ = stream.write_all(&encode(&refusal)).await;
    }
    let _ = stream.shutdown().await;
}

/// Serves KMIP on `listener` until `shutdown` becomes true. Each connection runs in its own task: the TLS
/// handshake happens there (never in the accept loop) under `handshake_timeout`, and a client certificate that
/// names no known identity is refused after the handshake.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    service: Arc<dyn KmipService>,
    limits: ServerLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let (tcp, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = service.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let tls =
                match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::info!(%addr, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%addr, "TLS handshake timed out");
                        return;
                    }
                };
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| PeerIdentity::from_certificate(c));
            let Some(peer) = identity else {
                tracing::info!(%addr, "client certificate names no OpenKCM identity; refusing");
                refuse_unknown_identity(tls, &limits).await;
                return;
            };
            tracing::debug!(%addr, peer = %peer, "connection authenticated");
            connection(tls, peer, service, limits, shutdown).await;
        });
    }
}
