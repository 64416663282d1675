//! A client of one node (or of `gcounter cluster`'s control address):
//! `gcounter client`, and what a test runner uses to drive a TCP cluster.
//!
//! One request at a time, like Maelstrom's clients: [`Client::request`]
//! sends a body and waits for the reply whose `in_reply_to` matches,
//! skipping late replies to requests that timed out earlier.
//!
//! ```no_run
//! # smol::block_on(async {
//! use gcounter_transport_tcp::Client;
//! use std::time::Duration;
//! let mut client = Client::connect("127.0.0.1:7401", "c1").await?;
//! client.add(3, Duration::from_secs(5)).await?;
//! let value = client.read(Duration::from_secs(5)).await?;
//! # Ok::<_, gcounter_transport_tcp::ClientError>(())
//! # });
//! ```

use crate::control;
use crate::lines::MAX_LINE;
use crate::lines::{read_line, ReadLine};
use crate::secure::Keys;
use gcounter_core::ErrorCode;
use serde_json::Value;
use smol::future::or;
use smol::io::{AsyncWriteExt, BufReader};
use smol::net::TcpStream;
use smol::Timer;
use std::fmt;
use std::io;
use std::time::Duration;

/// How long [`Client::connect`] tries before giving up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request has no good answer.
#[derive(Debug)]
pub enum ClientError {
    /// The connection could not be made: nothing was sent.
    Connect(io::Error),
    /// The connection failed while the request was out.
    Io(io::Error),
    /// The other side closed the connection before answering.
    Closed,
    /// No answer within the time allowed.
    Timeout(Duration),
    /// The answer was an `error` message.
    Error { code: ErrorCode, text: String },
    /// The answer was neither the expected `*_ok` nor an `error`.
    Unexpected(String),
}

impl ClientError {
    /// Whether the request certainly did not take effect: the connection
    /// never opened, or the error reply's code is definite. Everything
    /// else (timeouts, lost connections) leaves the operation
    /// indeterminate, as Maelstrom's checker treats it.
    pub fn is_definite(&self) -> bool {
        match self {
            ClientError::Connect(_) => true,
            ClientError::Error { code, .. } => code.is_definite(),
            _ => false,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(e) => write!(f, "cannot connect: {e}"),
            ClientError::Io(e) => write!(f, "connection failed: {e}"),
            ClientError::Closed => f.write_str("connection closed before the reply came"),
            ClientError::Timeout(d) => write!(f, "no reply within {d:?}"),
            ClientError::Error { code, text } => write!(f, "error {code}: {text}"),
            ClientError::Unexpected(line) => write!(f, "unexpected reply: {line}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A reply: the line as received and its parsed body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub line: String,
    pub body: Value,
}

impl Reply {
    /// The body's `type`.
    pub fn ty(&self) -> &str {
        self.body.get("type").and_then(Value::as_str).unwrap_or("")
    }

    /// `Ok(body)` for a `<expected>` reply, the error otherwise.
    pub fn expect(self, expected: &str) -> Result<Value, ClientError> {
        match self.ty() {
            t if t == expected => Ok(self.body),
            "error" => Err(ClientError::Error {
                code: ErrorCode(
                    self.body
                        .get("code")
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                        .min(u32::MAX as u64) as u32,
                ),
                text: self
                    .body
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            }),
            _ => Err(ClientError::Unexpected(self.line)),
        }
    }
}

/// A connection to one node, speaking as one client id.
#[derive(Debug)]
pub struct Client {
    id: String,
    dest: String,
    /// `dest` names the node this connection meant to reach (set by
    /// [`with_dest`](Client::with_dest)): the handshake then checks that
    /// the node which answered is that one.
    dest_known: bool,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_msg_id: u64,
    buf: Vec<u8>,
    /// A request was cut off while being written: the stream is unusable.
    broken: bool,
    /// After [`authenticate`](Client::authenticate), every line is sealed
    /// (see the `secure` module).
    keys: Option<Keys>,
}

impl Client {
    /// Connects to `addr` as client `id` (such as `c1`).
    pub async fn connect(addr: &str, id: impl Into<String>) -> Result<Client, ClientError> {
        let dial = async { Some(TcpStream::connect(addr).await) };
        let timeout = async {
            Timer::after(CONNECT_TIMEOUT).await;
            None
        };
        let stream = match or(dial, timeout).await {
            Some(Ok(stream)) => stream,
            Some(Err(e)) => return Err(ClientError::Connect(e)),
            None => {
                let e = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
                return Err(ClientError::Connect(e));
            }
        };
        let _ = stream.set_nodelay(true);
        Ok(Client {
            id: id.into(),
            // A node answers whatever reaches its socket, whatever `dest`
            // says; `with_dest` names it for logs that care.
            dest: "node".into(),
            dest_known: false,
            reader: BufReader::new(stream.clone()),
            writer: stream,
            next_msg_id: 1,
            buf: Vec::new(),
            broken: false,
            keys: None,
        })
    }

    /// Sets the `dest` of the requests (a node's id, or `cluster`).
    pub fn with_dest(mut self, dest: impl Into<String>) -> Self {
        self.dest = dest.into();
        self.dest_known = true;
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Proves to the node that this connection holds the cluster's secret
    /// (see the `auth` module): needed for `partition` and `heal`. Returns
    /// the id of the node that proved it holds the secret too (the one
    /// [`with_dest`](Client::with_dest) named, if it did).
    pub async fn authenticate(
        &mut self,
        secret: &crate::Secret,
        timeout: Duration,
    ) -> Result<String, ClientError> {
        let them = self.dest_known.then_some(self.dest.as_str());
        let proving = async {
            crate::auth::prove(&mut self.reader, &mut self.writer, secret, &self.id, them)
                .await
                .map_err(|e| match e.kind() {
                    io::ErrorKind::PermissionDenied => ClientError::Unexpected(e.to_string()),
                    io::ErrorKind::ConnectionAborted => ClientError::Closed,
                    _ => ClientError::Io(e),
                })
        };
        let (node, keys) = or(proving, async {
            Timer::after(timeout).await;
            Err(ClientError::Timeout(timeout))
        })
        .await?;
        self.keys = Some(keys);
        Ok(node)
    }

    /// Presents the token a node started with `--client-token-file`
    /// requires before it serves this connection.
    pub async fn present_token(
        &mut self,
        token: &crate::ClientToken,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let fields = vec![("token", token.as_str().into())];
        self.request(crate::auth::CLIENT_TOKEN, fields, timeout)
            .await?
            .expect("client_token_ok")?;
        Ok(())
    }

    /// Sends a request of type `ty` with `fields` and waits up to
    /// `timeout` for its reply, whatever its type (an `error` reply is
    /// `Ok` here; see [`Reply::expect`]).
    pub async fn request(
        &mut self,
        ty: &str,
        fields: Vec<(&str, Value)>,
        timeout: Duration,
    ) -> Result<Reply, ClientError> {
        let msg_id = self.next_msg_id;
        self.next_msg_id += 1;
        let mut body = vec![("type", Value::from(ty)), ("msg_id", Value::from(msg_id))];
        body.extend(fields);
        let mut line = control::line(&self.id, &self.dest, &body);
        if let Some(keys) = &mut self.keys {
            line = keys.sealer.seal(&line);
        }
        if self.broken {
            let e = io::Error::new(io::ErrorKind::BrokenPipe, "an earlier request was cut off");
            return Err(ClientError::Io(e));
        }
        let exchange = async {
            self.broken = true;
            self.writer
                .write_all(&line)
                .await
                .map_err(ClientError::Io)?;
            self.writer.flush().await.map_err(ClientError::Io)?;
            self.broken = false;
            loop {
                let read = match &mut self.keys {
                    Some(keys) => {
                        keys.opener
                            .read(&mut self.reader, &mut self.buf, MAX_LINE)
                            .await
                    }
                    None => read_line(&mut self.reader, &mut self.buf, MAX_LINE).await,
                };
                match read {
                    Ok(ReadLine::Line) => {}
                    Ok(ReadLine::Eof | ReadLine::Truncated) => return Err(ClientError::Closed),
                    Ok(ReadLine::TooLong) => {
                        return Err(ClientError::Unexpected("a reply longer than 1 MiB".into()))
                    }
                    Err(e) => return Err(ClientError::Io(e)),
                }
                let line = std::mem::take(&mut self.buf);
                let Ok(mut msg) = serde_json::from_slice::<Value>(&line) else {
                    log::warn!("not JSON: {}", String::from_utf8_lossy(&line));
                    continue;
                };
                let body = msg.get_mut("body").map(Value::take).unwrap_or_default();
                if body.get("in_reply_to").and_then(Value::as_u64) == Some(msg_id) {
                    let line = String::from_utf8_lossy(&line).into_owned();
                    return Ok(Reply { line, body });
                }
                log::debug!("skipped a message that does not answer {msg_id}");
            }
        };
        or(exchange, async {
            Timer::after(timeout).await;
            Err(ClientError::Timeout(timeout))
        })
        .await
    }

    /// `add`: Ok once the node acknowledged it.
    pub async fn add(&mut self, delta: u64, timeout: Duration) -> Result<(), ClientError> {
        self.request("add", vec![("delta", delta.into())], timeout)
            .await?
            .expect("add_ok")?;
        Ok(())
    }

    /// `read`: the counter's value as the node sees it.
    pub async fn read(&mut self, timeout: Duration) -> Result<u64, ClientError> {
        let body = self
            .request("read", Vec::new(), timeout)
            .await?
            .expect("read_ok")?;
        body.get("value")
            .and_then(Value::as_u64)
            .ok_or_else(|| ClientError::Unexpected(body.to_string()))
    }

    /// Cuts the node off from `peers` (replacing any earlier cut).
    pub async fn partition(
        &mut self,
        peers: &[String],
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let peers = Value::from(peers.to_vec());
        self.request(control::PARTITION, vec![("peers", peers)], timeout)
            .await?
            .expect("partition_ok")?;
        Ok(())
    }

    /// Reconnects the node with every peer.
    pub async fn heal(&mut self, timeout: Duration) -> Result<(), ClientError> {
        self.request(control::HEAL, Vec::new(), timeout)
            .await?
            .expect("heal_ok")?;
        Ok(())
    }
}
