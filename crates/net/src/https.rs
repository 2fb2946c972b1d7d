//! HTTPS with mutual TLS for JSON APIs (the Core's operator API, DESIGN §3): a small HTTP/1.1 server that hands
//! each request, with the authenticated peer identity, to an [`HttpService`], and a one-shot client for the CLI.
//!
//! Bodies are bounded ([`MAX_BODY`]); the TLS handshake, request headers and the whole request are bounded in time;
//! a client certificate is required (the TLS configuration enforces it). Request bodies may carry secrets (unseal
//! shares): the copy handed to the service is zeroized after the call, and nothing here logs a body.

use crate::{NetError, PeerIdentity, ServerLimits};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ClientConfig;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroize;

/// Largest request body accepted, in bytes.
pub const MAX_BODY: usize = 1 << 20;

/// A JSON response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Body (JSON).
    pub body: Vec<u8>,
}

/// What an HTTPS API does with one request.
#[async_trait::async_trait]
pub trait HttpService: Send + Sync + 'static {
    /// Handles one request from `peer` (`None` when the certificate names no OpenKCM identity).
    async fn handle(
        &self,
        peer: Option<&PeerIdentity>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> HttpResponse;
}

fn respond(status: u16, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_body(message: &str) -> Vec<u8> {
    let escaped: String = message
        .chars()
        .map(|c| match c {
            '"' => "\\\"".to_owned(),
            '\\' => "\\\\".to_owned(),
            c if c.is_control() => " ".to_owned(),
            c => c.to_string(),
        })
        .collect();
    format!("{{\"error\":\"{escaped}\"}}").into_bytes()
}

async fn one_request(
    service: Arc<dyn HttpService>,
    peer: Option<PeerIdentity>,
    req: Request<Incoming>,
    read_timeout: Duration,
) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let collected = tokio::time::timeout(
        read_timeout,
        Limited::new(req.into_body(), MAX_BODY).collect(),
    )
    .await;
    let mut body: Vec<u8> = match collected {
        Ok(Ok(c)) => c.to_bytes().into(),
        Ok(Err(_)) => {
            return respond(
                413,
                error_body(&format!(
                    "the request body is larger than {MAX_BODY} bytes or broken"
                )),
            )
        }
        Err(_) => return respond(408, error_body("the request body did not arrive in time")),
    };
    let resp = service.handle(peer.as_ref(), &method, &path, &body).await;
    body.zeroize();
    respond(resp.status, resp.body)
}

/// Serves `service` over HTTPS on `listener` until `shutdown` becomes true. `limits` bounds connections, the
/// handshake, header and body read time, and idle keep-alive connections.
pub async fn serve_https(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    service: Arc<dyn HttpService>,
    limits: ServerLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    loop {
        let Some((permit, tcp, addr)) =
            crate::server::next_connection(&listener, &permits, &mut shutdown).await
        else {
            break;
        };
        let acceptor = acceptor.clone();
        let service = service.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    crate::limited!(crate::log_limit::FAILED_HANDSHAKES, info, %addr, error = %e, "TLS handshake failed (operator API)");
                    return;
                }
                Err(_) => {
                    crate::limited!(crate::log_limit::FAILED_HANDSHAKES, info, %addr, "TLS handshake timed out (operator API)");
                    return;
                }
            };
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| PeerIdentity::from_certificate(c));
            let read_timeout = limits.read_timeout;
            let svc = hyper::service::service_fn(move |req| {
                let service = service.clone();
                let peer = peer.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(
                        one_request(service, peer, req, read_timeout).await,
                    )
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.read_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(tls), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = tokio::time::timeout(limits.idle_timeout, conn.as_mut()) => {
                    if let Ok(Err(e)) = r {
                        tracing::debug!(%addr, error = %e, "operator API connection ended with an error");
                    }
                }
                _ = shutdown.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
                }
            }
        });
    }
}

/// One HTTPS request with mTLS: returns the status and body. `body` is zeroized after sending (it may hold a share).
pub async fn request(
    addr: &str,
    server_name: &str,
    config: Arc<ClientConfig>,
    method: &str,
    path: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), NetError> {
    let target = HttpTarget {
        addr: addr.to_owned(),
        tls: Some((config, server_name.to_owned())),
    };
    call(&target, method, path, &[], body, timeout).await
}

/// Where an HTTP client request goes: `addr` (HOST:PORT), over TLS when `tls` names a client configuration and the
/// server name to verify, else in plain HTTP (only for loopback test servers such as an OpenBao dev server).
#[derive(Clone)]
pub struct HttpTarget {
    /// HOST:PORT.
    pub addr: String,
    /// TLS client configuration and server name; `None` for plain HTTP.
    pub tls: Option<(Arc<ClientConfig>, String)>,
}

impl std::fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}",
            if self.tls.is_some() { "https" } else { "http" },
            self.addr
        )
    }
}

/// One HTTP/1.1 request with extra `headers`: returns the status and body (at most [`MAX_BODY`] bytes). `body` is
/// zeroized after sending; the response body is the caller's to protect.
pub async fn call(
    target: &HttpTarget,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    mut body: Vec<u8>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), NetError> {
    let result = tokio::time::timeout(timeout, async {
        match &target.tls {
            Some((config, name)) => {
                let tls = crate::client::connect_tls(&target.addr, config.clone(), name).await?;
                exchange(
                    TokioIo::new(tls),
                    &target.addr,
                    method,
                    path,
                    headers,
                    &body,
                )
                .await
            }
            None => {
                let tcp = tokio::net::TcpStream::connect(&target.addr)
                    .await
                    .map_err(|e| NetError::io(format!("cannot connect to {}", target.addr), e))?;
                exchange(
                    TokioIo::new(tcp),
                    &target.addr,
                    method,
                    path,
                    headers,
                    &body,
                )
                .await
            }
        }
    })
    .await
    .map_err(|_| NetError::Timeout("the HTTP request"));
    body.zeroize();
    result?
}

async fn exchange<I>(
    io: I,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Vec<u8>), NetError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| NetError::ConnectionLost(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let method = hyper::Method::from_bytes(method.as_bytes())
        .map_err(|_| NetError::Protocol(format!("{method:?} is not an HTTP method")))?;
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| NetError::Protocol(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| NetError::ConnectionLost(e.to_string()))?;
    let status = resp.status().as_u16();
    let bytes = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| NetError::ConnectionLost(e.to_string()))?
        .to_bytes();
    Ok((status, bytes.to_vec()))
}
