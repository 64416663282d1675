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
//!
//! With [`Security`] it speaks TLS (rustls, through futures-rustls on
//! smol's sockets) and logs in: a token from `/v3/auth/authenticate`,
//! sent as the `Authorization` header. etcd forgets a token when its TTL
//! passes unused or when users or roles change; a call refused for that
//! was not applied, so it is made again, once, with a new token.

use super::creds::{Login, Security};
use serde_json::{json, Value};
use smol::future::or;
use smol::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use smol::net::TcpStream;
use smol::Timer;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// A connection to etcd: plain TCP or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}
type Conn = BufReader<Box<dyn Io>>;

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
pub struct EtcdClient {
    endpoints: Vec<String>,
    current: usize,
    conn: Option<Conn>,
    timeout: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
    login: Option<Login>,
    /// etcd's token for `login`, once obtained.
    token: Option<String>,
}

impl fmt::Debug for EtcdClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdClient")
            .field("endpoint", &self.endpoint())
            .field("tls", &self.tls.is_some())
            .field("user", &self.login.as_ref().map(|l| &l.user))
            .finish()
    }
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
            tls: None,
            login: None,
            token: None,
        }
    }

    /// The client speaks TLS and logs in as `security` says.
    pub fn with_security(mut self, security: &Security) -> EtcdClient {
        self.tls = security.tls.clone();
        self.login = security.login.clone();
        self
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
        if self.login.is_some() && self.token.is_none() {
            self.authenticate().await?;
        }
        match self.post(path, body).await {
            Err(Some(CallError::Refused(why))) if self.login.is_some() && token_rejected(&why) => {
                // Refused, so not applied: safe to make again.
                log::info!("etcd no longer takes our token ({why}): logging in again");
                self.token = None;
                self.authenticate().await?;
                self.post(path, body).await
            }
            other => other,
        }
    }

    /// Obtains a token for the login. The call it precedes has not gone
    /// out, so a failure here means that call did not happen.
    async fn authenticate(&mut self) -> Result<(), Option<CallError>> {
        let login = self.login.clone().expect("only called with a login");
        let request = json!({"name": login.user, "password": login.password});
        let answer = self
            .post("/v3/auth/authenticate", &request)
            .await
            .map_err(|e| {
                e.map(|e| match e {
                    CallError::Refused(why) => CallError::Refused(format!(
                        "cannot log in as {}: {why}{}",
                        login.user,
                        hint(&why)
                    )),
                    CallError::Unreachable(why) | CallError::Unknown(why) => {
                        CallError::Unreachable(why)
                    }
                })
            })?;
        match answer.get("token").and_then(Value::as_str) {
            Some(token) => {
                self.token = Some(token.to_owned());
                Ok(())
            }
            None => Err(Some(CallError::Unreachable(format!(
                "{}: no token in etcd's answer to logging in as {}",
                self.endpoint(),
                login.user
            )))),
        }
    }

    async fn connect(&self, addr: &str) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return Ok(BufReader::new(Box::new(stream) as Box<dyn Io>));
        };
        let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| bad(format!("`{host}` is not a TLS server name: {e}")))?;
        let stream = futures_rustls::TlsConnector::from(tls.clone())
            .connect(name, stream)
            .await
            .map_err(|e| {
                let why = e.to_string();
                io::Error::new(
                    e.kind(),
                    format!("TLS handshake failed: {why}{}", hint(&why)),
                )
            })?;
        Ok(BufReader::new(Box::new(stream) as Box<dyn Io>))
    }

    async fn post(&mut self, path: &str, body: &Value) -> Result<Value, Option<CallError>> {
        let body = serde_json::to_vec(body).expect("JSON values serialize");
        let token = match path {
            "/v3/auth/authenticate" => None,
            _ => self.token.clone(),
        };
        let mut refused = Vec::new();
        while refused.len() < self.endpoints.len() {
            let addr = self.endpoint().to_owned();
            let fresh = self.conn.is_none();
            if fresh {
                match self.connect(&addr).await {
                    Ok(conn) => self.conn = Some(conn),
                    Err(e) => {
                        refused.push(format!("{addr}: {e}"));
                        self.next_endpoint();
                        continue;
                    }
                }
            }
            let conn = self.conn.as_mut().expect("connected above");
            return match exchange(conn, &addr, path, token.as_deref(), &body).await {
                Ok((200, answer)) => Ok(answer),
                Ok((status, answer)) => {
                    let message = answer.get("message").and_then(Value::as_str).unwrap_or("");
                    let code = answer.get("code").and_then(Value::as_u64);
                    if code.is_some_and(|c| REFUSALS.contains(&c)) {
                        // The cluster said no, and any member would: keep
                        // the connection.
                        return Err(Some(CallError::Refused(format!(
                            "{addr}: HTTP {status} {message}{}",
                            hint(message)
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
                Err(e) if e.to_string().contains(PLAIN_TO_TLS) => {
                    // etcd's TLS listener turned the request away unread.
                    self.next_endpoint();
                    Err(Some(CallError::Unreachable(format!(
                        "{addr} speaks TLS and refused a plain http request: give its \
                         endpoints as https:// with --cacert"
                    ))))
                }
                Err(e)
                    if fresh && self.tls.is_none() && e.kind() == io::ErrorKind::UnexpectedEof =>
                {
                    // What etcd's TLS port does with plain http (it does
                    // not answer as Go's own HTTPS server would). Still of
                    // unknown outcome: a plain etcd that died would look
                    // the same.
                    self.next_endpoint();
                    Err(Some(CallError::Unknown(format!(
                        "{addr} closed a new connection without answering: does it speak \
                         TLS? then give its endpoints as https:// with --cacert"
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

/// What Go's TLS server answers a plain HTTP request with.
const PLAIN_TO_TLS: &str = "HTTP request to an HTTPS server";

/// Whether etcd refused a call for its token (forgotten after its TTL, or
/// outdated by a change of users or roles) rather than for its content.
fn token_rejected(why: &str) -> bool {
    why.contains("invalid auth token") || why.contains("revision of auth store is old")
}

/// A few words on what to do about an error etcd or TLS names.
fn hint(why: &str) -> &'static str {
    if why.contains("UnknownIssuer") || why.contains("BadSignature") {
        " (is --cacert the CA that signed etcd's certificate?)"
    } else if why.contains("invalid user ID or password") {
        " (check --user and the password)"
    } else if why.contains("permission denied") {
        " (no --user given, or its role does not reach the counter's keys)"
    } else if why.contains("user name is empty") {
        " (etcd requires authentication: give --user and a password)"
    } else if why.contains("CorruptMessage") || why.contains("InvalidContentType") {
        " (does etcd speak TLS there? a plain http etcd needs http:// endpoints)"
    } else if why.contains("CertificateRequired") || why.contains("BadCertificate") {
        " (etcd wants a client certificate it trusts: --cert and --key)"
    } else {
        ""
    }
}

/// One request and its response on a kept-alive connection: the status
/// and the body as JSON.
async fn exchange(
    conn: &mut Conn,
    host: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> io::Result<(u16, Value)> {
    let authorization = token.map_or(String::new(), |t| format!("Authorization: {t}\r\n"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         {authorization}Content-Length: {}\r\n\r\n",
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
        (false, None) => {
            // HTTP/1.0 style: the body runs to the end of the connection
            // (as in Go's answer to plain HTTP on a TLS port).
            let mut body = Vec::new();
            (&mut *conn)
                .take(MAX_BODY as u64)
                .read_to_end(&mut body)
                .await?;
            body
        }
    };
    let value = serde_json::from_slice(&body).map_err(|e| {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        bad(format!(
            "the body is not JSON ({e}) (HTTP {status}: {:?})",
            text.trim()
        ))
    })?;
    Ok((status, value))
}

fn bad(text: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, text.into())
}

/// Reads one header line into `line`, without its CRLF.
async fn read_head_line(conn: &mut Conn, line: &mut String) -> io::Result<()> {
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

async fn read_chunked(conn: &mut Conn, line: &mut String) -> io::Result<Vec<u8>> {
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
