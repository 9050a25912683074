//! The server's HTTP endpoints: `/metrics` (Prometheus text), `/healthz`
//! (alive) and `/readyz` (ready once the first pass is done). Three fixed GET
//! routes on a loopback or cluster port need no web framework: each
//! connection reads one request line and gets one response.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::Shared;

/// Binds `addr` and serves in the background.
pub async fn spawn(addr: SocketAddr, shared: Arc<Shared>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(listen = %listener.local_addr()?, "Serving /metrics, /healthz and /readyz");
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else { continue };
            let shared = shared.clone();
            tokio::spawn(async move {
                let _ = answer(conn, &shared).await;
            });
        }
    });
    Ok(())
}

async fn answer(conn: tokio::net::TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = conn.into_split();
    let mut lines = BufReader::new(read).lines();
    let request = lines.next_line().await?.unwrap_or_default();
    // Drain the headers so the client sees its request consumed.
    while let Some(line) = lines.next_line().await? {
        if line.is_empty() {
            break;
        }
    }
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => {
            ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", shared.metrics.encode())
        }
        ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".to_string()),
        ("GET", "/readyz") if shared.ready.load(Ordering::SeqCst) => ("200 OK", "text/plain", "ready\n".to_string()),
        ("GET", "/readyz") => ("503 Service Unavailable", "text/plain", "first pass running\n".to_string()),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".to_string()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    write.write_all(head.as_bytes()).await?;
    write.write_all(body.as_bytes()).await?;
    write.shutdown().await
}
