//! The KV service on a TCP socket: `gcounter kv`.
//!
//! The core's model of `seq-kv` or `lin-kv` (the very one the simulator
//! uses), answering Maelstrom's KV messages from any number of connections.
//! One task owns the model and answers requests in the order they arrive;
//! each reply goes back on the connection its request came in on. The
//! service's id is its kind's name: a request addressed to another
//! service is answered with error 1 (node-not-found) naming the mismatch,
//! which catches a node and a service started with different
//! `--consistency`.

use crate::conn::{self, accept_loop, Conns, Event, Limits, Source};
use async_channel::Receiver;
use gcounter_core::protocol::{parse_line, write_line};
use gcounter_core::service::Service;
use gcounter_core::{Body, Envelope, ErrorCode, KvKind, Payload};
use smol::net::TcpListener;
use std::io;
use std::net::SocketAddr;

/// Everything `gcounter kv` is told on its command line.
#[derive(Debug, Clone)]
pub struct KvOptions {
    /// Where to listen, such as `127.0.0.1:7400`.
    pub listen: String,
    pub kind: KvKind,
    /// Seeds `seq-kv`'s choice of stale states.
    pub seed: u64,
    pub limits: Limits,
    /// Stop when standard input closes (see `NodeOptions`).
    pub stop_on_stdin_eof: bool,
}

impl KvOptions {
    pub fn new(listen: impl Into<String>, kind: KvKind, seed: u64) -> Self {
        KvOptions {
            listen: listen.into(),
            kind,
            seed,
            limits: Limits::default(),
            stop_on_stdin_eof: false,
        }
    }
}

/// A KV service bound to its address, ready to [`run`](KvServer::run).
#[derive(Debug)]
pub struct KvServer {
    options: KvOptions,
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl KvServer {
    pub fn bind(options: KvOptions) -> io::Result<KvServer> {
        let listener = conn::bind(&options.listen)?;
        let local_addr = listener.local_addr()?;
        Ok(KvServer {
            options,
            listener,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until standard input closes (with `stop_on_stdin_eof`) or
    /// forever.
    pub async fn run(self) -> io::Result<()> {
        let KvServer {
            options,
            listener,
            local_addr,
        } = self;
        let name = options.kind.name();
        let service = Service::by_name(name, options.seed).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("no model of {name}"))
        })?;
        log::info!("{name} listening on {local_addr}, seed {}", options.seed);
        let (events, inbox) = async_channel::bounded(options.limits.event_queue);
        smol::spawn(accept_loop(
            listener,
            events.clone(),
            options.limits.clone(),
        ))
        .detach();
        if options.stop_on_stdin_eof {
            conn::stop_on_stdin_eof(events.clone());
        }
        drop(events);
        let mut owner = Owner {
            name,
            service,
            next_msg_id: 0,
            conns: Conns::new(&options.limits),
        };
        owner.run(inbox).await;
        Ok(())
    }
}

struct Owner {
    name: &'static str,
    service: Service,
    next_msg_id: u64,
    conns: Conns,
}

impl Owner {
    async fn run(&mut self, inbox: Receiver<Event>) {
        while let Ok(event) = inbox.recv().await {
            match event {
                Event::Opened { conn, peer, handle } => {
                    self.conns.opened(conn, peer, handle);
                }
                Event::Closed { conn } => {
                    self.conns.closed(conn);
                }
                Event::Line {
                    from: Source::Conn(conn),
                    line,
                } => {
                    if self.conns.touch(conn) {
                        if let Some(reply) = self.answer(&line) {
                            let mut out = Vec::with_capacity(128);
                            write_line(&mut out, &reply);
                            self.conns.send(conn, out);
                        }
                    }
                }
                Event::Stop => break,
                Event::Line { .. } | Event::LinkUp(_) | Event::LinkDown(_) => {}
            }
        }
        inbox.close();
    }

    fn take_msg_id(&mut self) -> u64 {
        let id = self.next_msg_id;
        self.next_msg_id += 1;
        id
    }

    /// The reply to one line, if it deserves one.
    fn answer(&mut self, line: &[u8]) -> Option<Envelope> {
        let msg = match parse_line(line) {
            Ok(msg) => msg,
            Err(err) => {
                let shown = String::from_utf8_lossy(&line[..line.len().min(200)]);
                log::warn!("bad request ({}): {}: {shown}", err.code, err.text);
                let (client, request_id) = err.reply_to?;
                let payload = Payload::error(err.code, err.text);
                return Some(self.reply_to(client, request_id, payload));
            }
        };
        let Some(request_id) = msg.body.msg_id.filter(|_| msg.body.in_reply_to.is_none()) else {
            log::debug!(
                "`{}` from {} is not a request: dropped",
                msg.body.payload.type_name(),
                msg.src
            );
            return None;
        };
        if msg.dest != self.name {
            let text = format!(
                "this is {}, not {}: start the node and the service with the same --consistency",
                self.name, msg.dest
            );
            log::warn!("request from {}: {text}", msg.src);
            let payload = Payload::error(ErrorCode::NODE_NOT_FOUND, text);
            return Some(self.reply_to(msg.src, request_id, payload));
        }
        let id = self.take_msg_id();
        self.service.answer(&msg, id)
    }

    fn reply_to(&mut self, client: String, request_id: u64, payload: Payload) -> Envelope {
        Envelope {
            src: self.name.to_owned(),
            dest: client,
            body: Body {
                msg_id: Some(self.take_msg_id()),
                in_reply_to: Some(request_id),
                payload,
            },
        }
    }
}

/// A seed from the wall clock, for runs that were not given one (log it,
/// so the run can be repeated).
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
