//! The plaintext loopback listener for `/metrics` (Prometheus text) and `/healthz` (DESIGN §10, §11): the only
//! listener without TLS, so it serves nothing but what [`MetricsSource`] renders, answers GET only, reads no body, and
//! bounds connections and their time.

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Connections served at once. One request per connection (no keep-alive) and a short header time keep a slot
/// busy for at most [`READ_TIMEOUT`] when a client sends nothing.
const MAX_CONNECTIONS: usize = 64;
/// Time to send the request headers.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest life of one connection.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// The content type of the Prometheus (OpenMetrics) text exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the listener exposes.
pub trait MetricsSource: Send + Sync + 'static {
    /// The current metrics, in the OpenMetrics text format.
    fn render(&self) -> String;
    /// Whether the node serves keys (`/healthz` answers 200 `ready`, else 503 `sealed`).
    fn ready(&self) -> bool;
}

fn answer(
    status: u16,
    content_type: &str,
    body: String,
) -> Response<http_body_util::Full<hyper::body::Bytes>> {
    let mut resp = Response::new(http_body_util::Full::new(hyper::body::Bytes::from(body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

fn route(
    source: &dyn MetricsSource,
    req: &Request<Incoming>,
) -> Response<http_body_util::Full<hyper::body::Bytes>> {
    let text = "text/plain; charset=utf-8";
    if req.method() != hyper::Method::GET {
        let mut resp = answer(405, text, "only GET\n".into());
        resp.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET"),
        );
        return resp;
    }
    match req.uri().path() {
        "/metrics" => answer(200, CONTENT_TYPE, source.render()),
        "/healthz" if source.ready() => answer(200, text, "ready\n".into()),
        "/healthz" => answer(503, text, "sealed\n".into()),
        _ => answer(404, text, "/metrics or /healthz\n".into()),
    }
}

/// Serves `source` on `listener` until `shutdown` becomes true.
pub async fn serve_metrics(
    listener: TcpListener,
    source: Arc<dyn MetricsSource>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Some((permit, tcp, addr)) =
            crate::server::next_connection(&listener, &permits, &mut shutdown).await
        else {
            break;
        };
        let source = source.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = hyper::service::service_fn(move |req| {
                let resp = route(source.as_ref(), &req);
                async move { Ok::<_, std::convert::Infallible>(resp) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(READ_TIMEOUT)
                .keep_alive(false);
            let conn = builder.serve_connection(TokioIo::new(tcp), svc);
            if let Ok(Err(e)) = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                tracing::debug!(%addr, error = %e, "metrics connection ended with an error");
            }
        });
    }
}
