//! A minimal PutAuditEvents client over one keep-alive HTTP/1.1 connection, sending bodies as
//! they are (no SDK, no signing: the header only has the form the lake checks). For load tests
//! and benchmarks that measure the lake, not a client.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// An `Authorization` header of the form SigV4 requires (its signature is not checked).
pub const FAKE_SIGV4: &str = "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/cloudtrail-data/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// One connection to a lake.
pub struct RawClient {
    conn: BufReader<TcpStream>,
    host: String,
}

impl RawClient {
    /// Connects to the lake at `addr`.
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self {
            conn: BufReader::new(TcpStream::connect(addr).await?),
            host: addr.to_string(),
        })
    }

    /// POSTs one request body to `channel`; returns the HTTP status and the response body.
    pub async fn put(&mut self, channel: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let head = format!(
            "POST /PutAuditEvents?channelArn={channel} HTTP/1.1\r\nHost: {}\r\nAuthorization: {FAKE_SIGV4}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let s = self.conn.get_mut();
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut line = String::new();
        self.conn.read_line(&mut line).await?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            self.conn.read_line(&mut line).await?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut resp = vec![0; len];
        self.conn.read_exact(&mut resp).await?;
        Ok((status, resp))
    }
}
