//! The floor: the least work a KMIP server can do per request on this machine.
//!
//! Over the same mTLS as the edge, it reads each framed message (the 8-byte TTLV header gives the length), seals the
//! message once with AES-256-GCM under a key it made at start, and writes the request bytes back unchanged. No
//! parsing, no storage, no policy: whatever a real server spends beyond this is its own overhead.

use anyhow::Context;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Largest message the floor reads (the edge's default limit).
pub const MAX_MESSAGE: usize = 1 << 20;

/// Serves the floor on `listener` until the process ends.
pub async fn serve(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> anyhow::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let (tcp, _) = listener.accept().await.context("accepting a connection")?;
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Ok(tls) = acceptor.accept(tcp).await {
                let _ = echo(tls).await;
            }
        });
    }
}

/// A fresh AES-256-GCM key per connection, so the per-connection nonce counter never repeats under one key.
fn connection_key() -> std::io::Result<LessSafeKey> {
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| std::io::Error::other("no randomness"))?;
    let unbound =
        UnboundKey::new(&AES_256_GCM, &key).map_err(|_| std::io::Error::other("bad key"))?;
    Ok(LessSafeKey::new(unbound))
}

async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
) -> std::io::Result<()> {
    let key = connection_key()?;
    let mut message = Vec::with_capacity(4096);
    let mut sealed = Vec::with_capacity(4096);
    let mut counter: u64 = 0;
    loop {
        let mut header = [0u8; 8];
        match stream.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if len > MAX_MESSAGE {
            return Ok(());
        }
        message.clear();
        message.extend_from_slice(&header);
        message.resize(8 + len, 0);
        stream.read_exact(&mut message[8..]).await?;
        // One AES-256-GCM seal of the whole message, as a server would seal one data key.
        counter = counter.wrapping_add(1);
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&counter.to_be_bytes());
        sealed.clear();
        sealed.extend_from_slice(&message);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut sealed,
        )
        .map_err(|_| std::io::Error::other("seal failed"))?;
        std::hint::black_box(&sealed);
        stream.write_all(&message).await?;
        stream.flush().await?;
    }
}
