//! A small HTTP/1.1 client for etcd v3's JSON gateway (`POST /v3/kv/...`).
//!
//! Why not the `etcd-client` crate: it speaks gRPC over tonic and needs a
//! tokio runtime, a second executor beside smol in every node for three
//! calls (range, put, txn). etcd 3.4 serves the same calls as JSON over
//! HTTP/1.1, and the workspace already has smol's TCP and serde_json: a
//! POST with a Content-Length, and a response with a Content-Length or
//! chunked, is all this needs.
//!
//! One client holds one keep-alive connection, to one endpoint at a time.
//! A connection that cannot be made moves it to the next endpoint (the
//! call did not happen, so it is tried there); a call that was sent but
//! got no good answer in time also moves it on, for the next call, and is
//! reported as of unknown outcome, since etcd may have applied it.

use serde_json::Value;
use smol::future::or;
use smol::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use smol::net::TcpStream;
use smol::Timer;
use std::fmt;
use std::io;
use std::time::Duration;

/// A response body larger than this is refused: the counter's values are
/// numbers and small maps.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Why a call has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No endpoint took the request: it did not happen.
    Unreachable(String),
    /// The request went out but no good answer came back in time: etcd
    /// may or may not have applied it.
    Unknown(String),
    /// etcd answered that it will not apply the request (its space quota
    /// is exhausted, the credentials lack the right, the request is
    /// malformed): it did not happen.
    Refused(String),
}

/// gRPC status codes (in the gateway's JSON error) with which etcd refuses
/// a request before, or instead of, applying it: INVALID_ARGUMENT (3),
/// PERMISSION_DENIED (7), RESOURCE_EXHAUSTED (8: "database space
/// exceeded", "too many requests"), FAILED_PRECONDITION (9) and
/// UNAUTHENTICATED (16). Anything else (UNAVAILABLE for no leader, a
/// timeout inside the cluster) may have been applied.
const REFUSALS: [u64; 5] = [3, 7, 8, 9, 16];

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Unreachable(why) => write!(f, "etcd unreachable: {why}"),
            CallError::Unknown(why) => write!(f, "no answer from etcd: {why}"),
            CallError::Refused(why) => write!(f, "etcd refused: {why}"),
        }
    }
}

/// A client of one etcd cluster, given by its members' `host:port`.
#[derive(Debug)]
pub struct EtcdClient {
    endpoints: Vec<String>,
    current: usize,
    conn: Option<BufReader<TcpStream>>,
    timeout: Duration,
}

impl EtcdClient {
    /// `first` picks the endpoint tried first (modulo their number), so
    /// that clients can spread over the members.
    pub fn new(endpoints: Vec<String>, first: usize, timeout: Duration) -> EtcdClient {
        assert!(!endpoints.is_empty(), "an etcd client needs an endpoint");
        let current = first % endpoints.len();
        EtcdClient {
            endpoints,
            current,
            conn: None,
            timeout,
        }
    }

    /// The endpoint the next call goes to first.
    pub fn endpoint(&self) -> &str {
        &self.endpoints[self.current]
    }

    fn next_endpoint(&mut self) {
        self.conn = None;
        self.current = (self.current + 1) % self.endpoints.len();
    }

    /// POSTs `body` to `path` (such as `/v3/kv/range`) and returns the JSON
    /// answer, within the client's timeout in all (connecting included).
    pub async fn call(&mut self, path: &str, body: &Value) -> Result<Value, CallError> {
        let timeout = self.timeout;
        let call = self.call_untimed(path, body);
        let expired = async {
            Timer::after(timeout).await;
            Err(None)
        };
        match or(call, expired).await {
            Ok(answer) => Ok(answer),
            Err(Some(e)) => Err(e),
            Err(None) => {
                // Whatever the connection was doing, it is not to be
                // trusted with the next request.
                let at = self.endpoint().to_owned();
                self.next_endpoint();
                Err(CallError::Unknown(format!(
                    "{at}: no answer within {timeout:?}"
                )))
            }
        }
    }

    async fn call_untimed(&mut self, path: &str, body: &Value) -> Result<Value, Option<CallError>> {
        let body = serde_json::to_vec(body).expect("JSON values serialize");
        let mut refused = Vec::new();
        while refused.len() < self.endpoints.len() {
            let addr = self.endpoint().to_owned();
            if self.conn.is_none() {
                match TcpStream::connect(addr.as_str()).await {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        self.conn = Some(BufReader::new(stream));
                    }
                    Err(e) => {
                        refused.push(format!("{addr}: {e}"));
                        self.next_endpoint();
                        continue;
                    }
                }
            }
            let conn = self.conn.as_mut().expect("connected above");
            return match exchange(conn, &addr, path, &body).await {
                Ok((200, answer)) => Ok(answer),
                Ok((status, answer)) => {
                    let message = answer.get("message").and_then(Value::as_str).unwrap_or("");
                    let code = answer.get("code").and_then(Value::as_u64);
                    if code.is_some_and(|c| REFUSALS.contains(&c)) {
                        // The cluster said no, and any member would: keep
                        // the connection.
                        return Err(Some(CallError::Refused(format!(
                            "{addr}: HTTP {status} {message}"
                        ))));
                    }
                    // etcd answers a call it could not serve (no leader, a
                    // timeout inside the cluster) with an error status; a
                    // member that is cut off from the others keeps doing
                    // so, so the next call goes elsewhere.
                    self.next_endpoint();
                    Err(Some(CallError::Unknown(format!(
                        "{addr}: HTTP {status} {message}"
                    ))))
                }
                Err(e) => {
                    self.next_endpoint();
                    Err(Some(CallError::Unknown(format!("{addr}: {e}"))))
                }
            };
        }
        Err(Some(CallError::Unreachable(refused.join("; "))))
    }
}

/// One request and its response on a kept-alive connection: the status
/// and the body as JSON.
async fn exchange(
    conn: &mut BufReader<TcpStream>,
    host: &str,
    path: &str,
    body: &[u8],
) -> io::Result<(u16, Value)> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    conn.get_mut().write_all(&request).await?;
    conn.get_mut().flush().await?;

    let mut line = String::new();
    read_head_line(conn, &mut line).await?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad(format!("not an HTTP status line: {line:?}")))?;
    let mut length = None;
    let mut chunked = false;
    loop {
        read_head_line(conn, &mut line).await?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| bad("bad Content-Length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let body = match (chunked, length) {
        (true, _) => read_chunked(conn, &mut line).await?,
        (false, Some(n)) if n <= MAX_BODY => {
            let mut body = vec![0; n];
            conn.read_exact(&mut body).await?;
            body
        }
        (false, Some(n)) => return Err(bad(format!("a body of {n} bytes is too large"))),
        (false, None) => return Err(bad("a response without a length")),
    };
    let value = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("the body is not JSON ({e}) (HTTP {status})")))?;
    Ok((status, value))
}

fn bad(text: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, text.into())
}

/// Reads one header line into `line`, without its CRLF.
async fn read_head_line(conn: &mut BufReader<TcpStream>, line: &mut String) -> io::Result<()> {
    line.clear();
    let n = conn.read_line(line).await?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by etcd",
        ));
    }
    if line.len() > 64 * 1024 {
        return Err(bad("a header line is too long"));
    }
    while line.ends_with(['\r', '\n']) {
        line.pop();
    }
    Ok(())
}

async fn read_chunked(conn: &mut BufReader<TcpStream>, line: &mut String) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        read_head_line(conn, line).await?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers, if any, end with an empty line.
            loop {
                read_head_line(conn, line).await?;
                if line.is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(bad("a chunked body is too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        conn.read_exact(&mut body[start..]).await?;
        read_head_line(conn, line).await?;
    }
}
