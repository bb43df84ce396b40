//! A keep-alive HTTP/1.1 client for the load examples: one connection,
//! one request after another, each answer read whole.

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

/// One keep-alive connection: sends a request, reads the answer whole.
pub(crate) struct Client {
    stream: BufReader<tokio::net::TcpStream>,
}

impl Client {
    pub(crate) async fn connect(addr: std::net::SocketAddr) -> std::io::Result<Self> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(Client {
            stream: BufReader::new(tcp),
        })
    }

    /// The status of one request.
    pub(crate) async fn send(&mut self, head: &str, body: &[u8]) -> std::io::Result<u16> {
        Ok(self.exchange(head, body).await?.0)
    }

    /// The status and body of one request.
    pub(crate) async fn exchange(
        &mut self,
        head: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut status = 0;
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some(code) = l.strip_prefix("HTTP/1.1 ") {
                status = code.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            } else if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, body))
    }
}
