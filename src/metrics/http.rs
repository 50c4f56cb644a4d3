//! The HTTP endpoint: `GET /metrics` (the registry in the Prometheus text
//! format) and `GET /healthz` (the health verdict), on the tokio runtime.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::{Health, Metrics};

/// At most this many metrics/health connections are served at once; more
/// are closed at accept.
pub const MAX_HTTP_CONNECTIONS: usize = 64;

/// A client must send its request headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `GET /metrics` and `GET /healthz` until `shutdown` becomes `true`
/// (or its sender is dropped).
///
/// One task per connection, HTTP/1.1 with keep-alive; at most
/// [`MAX_HTTP_CONNECTIONS`] at once. On shutdown the accept loop stops and
/// open connections finish their current request and close.
///
/// Routes: `/metrics` → 200 with the text format; `/healthz` → 200 `ok` or
/// 503 with the reason; a known path with another method → 405; anything
/// else → 404.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                log::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            log::debug!("metrics: {peer}: refused, {MAX_HTTP_CONNECTIONS} connections open");
            continue;
        };
        let metrics = Arc::clone(&metrics);
        let health = Arc::clone(&health);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req: Request<Incoming>| {
                let response = respond(&metrics, &health, req.method(), req.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = stopped(&mut shutdown) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                log::debug!("metrics: {peer}: {e}");
            }
        });
    }
    log::debug!("metrics: endpoint stopped");
}

/// Resolves once shutdown is requested or the sender is gone.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // Err: the sender was dropped; nobody can ask us to stop any more, so stop.
    let _ = shutdown.wait_for(|&stop| stop).await;
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

const PLAIN: &str = "text/plain; charset=utf-8";

fn respond(
    metrics: &Metrics,
    health: &Health,
    method: &Method,
    path: &str,
) -> Response<Full<Bytes>> {
    let known = matches!(path, "/metrics" | "/healthz");
    if !known {
        return text(StatusCode::NOT_FOUND, PLAIN, "not found\n");
    }
    if method != Method::GET {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "method not allowed\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    match path {
        "/metrics" => text(StatusCode::OK, prometheus::TEXT_FORMAT, metrics.encode()),
        _ => match health.check() {
            Ok(()) => text(StatusCode::OK, PLAIN, "ok\n"),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, PLAIN, format!("{why}\n")),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::super::tests::counters;
    use super::super::{RpcMetrics, DEFAULT_STALE_AFTER, RPC_METHODS};
    use super::*;
    use crate::protocol::PacketType;

    /// A minimal HTTP/1.1 client: one request, `Connection: close`, returns
    /// (status, head, body).
    async fn request(
        addr: std::net::SocketAddr,
        method: &str,
        path: &str,
    ) -> (u16, String, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        let raw = String::from_utf8(raw).expect("utf-8 response");
        let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        (status, head.to_ascii_lowercase(), body.to_string())
    }

    struct Server {
        addr: std::net::SocketAddr,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    async fn start(metrics: Arc<Metrics>, health: Arc<Health>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, metrics, health, rx));
        Server { addr, stop, task }
    }

    async fn stop(server: Server) {
        server.stop.send(true).expect("server alive");
        tokio::time::timeout(Duration::from_secs(10), server.task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve task");
    }

    #[tokio::test]
    async fn http_metrics_and_health() {
        let m = Metrics::new().expect("metrics");
        let health = Arc::new(Health::new(DEFAULT_STALE_AFTER));
        let mut c = counters(&m);
        c.received(Some(PacketType::PAKCS_LOGIN_REQ));
        c.publish();
        // Resolving the method handles makes the RPC histograms visible at 0.
        let _rpc = RpcMetrics::new(&m, RPC_METHODS);
        let server = start(Arc::clone(&m), Arc::clone(&health)).await;

        let (status, head, body) = request(server.addr, "GET", "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert!(body.contains("packet_service_packets_received_total{type=\"PAKCS_LOGIN_REQ\"} 1"));
        assert!(body.contains("# TYPE packet_service_rpc_duration_seconds histogram"));

        let (status, _, body) = request(server.addr, "GET", "/healthz").await;
        assert_eq!((status, body.as_str()), (503, "starting\n"));
        health.set_ready(true);
        health.tick();
        let (status, _, body) = request(server.addr, "GET", "/healthz").await;
        assert_eq!((status, body.as_str()), (200, "ok\n"));

        let (status, head, _) = request(server.addr, "POST", "/metrics").await;
        assert_eq!(status, 405);
        assert!(head.contains("allow: get"));
        assert_eq!(request(server.addr, "GET", "/").await.0, 404);
        assert_eq!(request(server.addr, "GET", "/metricsx").await.0, 404);
        // A query string does not change the route.
        assert_eq!(
            request(server.addr, "GET", "/healthz?verbose=1").await.0,
            200
        );

        health.set_stopping();
        let (status, _, body) = request(server.addr, "GET", "/healthz").await;
        assert_eq!((status, body.as_str()), (503, "stopping\n"));
        stop(server).await;
    }

    #[tokio::test]
    async fn http_health_fails_when_reactor_stalls() {
        let m = Metrics::new().expect("metrics");
        // Epoch a second ago, last pass at the epoch, threshold 1 ms: stale.
        let epoch = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .expect("monotonic clock older than a second");
        let health = Arc::new(Health::with_epoch(epoch, Duration::from_millis(1)));
        health.set_ready(true);
        health.tick_at(epoch);
        let server = start(m, Arc::clone(&health)).await;
        let (status, _, body) = request(server.addr, "GET", "/healthz").await;
        assert_eq!(status, 503);
        assert!(body.starts_with("reactor stalled: last pass "), "{body}");
        stop(server).await;
    }

    #[tokio::test]
    async fn keep_alive_connection_is_closed_on_shutdown() {
        let m = Metrics::new().expect("metrics");
        let health = Arc::new(Health::new(DEFAULT_STALE_AFTER));
        let server = start(m, health).await;
        let mut stream = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .expect("write");
        // Read the first response completely (head, then Content-Length bytes).
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        let response_len = loop {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before the response");
            raw.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
            let Some(head_end) = text.find("\r\n\r\n") else {
                continue;
            };
            let length: usize = text[..head_end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("content-length");
            if raw.len() >= head_end + 4 + length {
                break head_end + 4 + length;
            }
        };
        assert_eq!(raw.len(), response_len, "nothing after the response");
        stop(server).await;
        // The idle keep-alive connection is closed by the graceful shutdown.
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("connection closed after shutdown")
            .expect("read");
        assert_eq!(n, 0);
    }
}
