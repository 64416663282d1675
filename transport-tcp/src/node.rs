//! One counter node on a TCP socket: `gcounter node`.
//!
//! The node listens on one address for everyone: clients, peers and
//! control messages. It dials each peer and the KV service itself and
//! keeps those links up. Messages are routed by `dest`:
//!
//! - the KV service's name (`seq-kv` / `lin-kv`): the KV link;
//! - a peer's id: that peer's link (unless a `partition` cut it off);
//! - anyone else is a client: the reply goes back on the connection the
//!   request came in on.
//!
//! A node never needs to be told `init`: its flags say who it is and who
//! its peers are, and it feeds its core a synthetic `init` (every server,
//! itself included, sorted, so every node sees the same list) and swallows
//! the `init_ok`. A client need not know the node's id either: whatever
//! arrives on the node's socket is for the node.
//!
//! With a state directory, the node keeps there what its core asks to
//! store to survive a crash, and gives it back to the core when it starts
//! again (see [`gcounter_state`]); without one it logs, once, that a crash
//! will lose what it held.

use crate::auth::{self, ClientToken, Secret};
use crate::conn::{self, accept_loop, ConnId, Conns, Event, Hello, Limits, Link, LinkId, Source};
use crate::control::{self, Request};
use crate::etcd::{self, EtcdTarget};
use crate::secure::Keys;
use async_channel::{Receiver, Sender};
use gcounter_core::protocol::{parse_line, write_line};
use gcounter_core::{
    Body, Config, Envelope, ErrorCode, Input, Node, Output, Payload, StrategyKind,
};
use gcounter_state::{read_state, StateFile};
use serde_json::Value;
use smol::future::or;
use smol::net::TcpListener;
use smol::Timer;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

pub use gcounter_state::next_incarnation;

/// The `src` of the synthetic `init`; its `init_ok` is swallowed.
const INIT_SRC: &str = "tcp:init";

/// Everything `gcounter node` is told on its command line.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// This node's id, such as `n0`.
    pub id: String,
    /// Where to listen, such as `127.0.0.1:7401`.
    pub listen: String,
    /// Every other node: id and address (`host:port`).
    pub peers: Vec<(String, String)>,
    /// The KV service's address, or etcd's as `etcd://HOST:PORT[,...][/PREFIX]`;
    /// required by every strategy but `gossip`.
    pub kv: Option<String>,
    /// How to reach etcd (TLS, a login), from etcdctl-style flags.
    pub etcd_security: etcd::Security,
    /// Strategy, KV kind (the service's name), intervals, incarnation.
    /// [`NodeServer::bind`] fills in `restored` from `state_dir`.
    pub config: Config,
    /// Where the node keeps what must survive a crash (`<id>.state`).
    pub state_dir: Option<PathBuf>,
    /// Peers to start cut off from, as if `partition` had been received.
    pub cut: Vec<String>,
    /// The cluster's secret: peers and control clients prove they hold
    /// it (see the `auth` module). Required with peers.
    pub secret: Option<Secret>,
    /// A token clients must present before their requests are served
    /// (`--client-token-file`); without one, any client is served.
    pub client_token: Option<ClientToken>,
    pub limits: Limits,
    /// Stop when standard input closes (set by supervisors that hold the
    /// other end of a pipe, so the node never outlives them).
    pub stop_on_stdin_eof: bool,
}

impl NodeOptions {
    /// A node with the default configuration and limits.
    pub fn new(id: impl Into<String>, listen: impl Into<String>) -> Self {
        NodeOptions {
            id: id.into(),
            listen: listen.into(),
            peers: Vec::new(),
            kv: None,
            etcd_security: etcd::Security::default(),
            config: Config::default(),
            state_dir: None,
            cut: Vec::new(),
            secret: None,
            client_token: None,
            limits: Limits::default(),
            stop_on_stdin_eof: false,
        }
    }

    /// Refuses options that cannot work, with a message for a person.
    pub fn check(&self) -> Result<(), String> {
        let service = |name: &str| ["seq-kv", "lin-kv", "lww-kv", "lin-tso"].contains(&name);
        if self.id.is_empty() || service(&self.id) || self.id == INIT_SRC {
            return Err(format!("`{}` cannot be a node id", self.id));
        }
        let mut seen = BTreeSet::new();
        for (peer, _) in &self.peers {
            if peer == &self.id {
                return Err(format!("peer {peer} is this node itself"));
            }
            if service(peer) || peer.is_empty() {
                return Err(format!("`{peer}` cannot be a peer id"));
            }
            if !seen.insert(peer) {
                return Err(format!("peer {peer} is given twice"));
            }
        }
        if !self.peers.is_empty() && self.secret.is_none() {
            return Err(
                "a node with peers needs the cluster's secret (--secret-file): without it \
                 anyone who can reach its port could speak as a peer"
                    .into(),
            );
        }
        if let Some(bad) = self.cut.iter().find(|c| !seen.contains(c)) {
            return Err(format!("cannot cut off {bad}: not a peer"));
        }
        if let Some(kv) = &self.kv {
            match EtcdTarget::parse(kv)? {
                Some(t) if t.tls && self.etcd_security.tls.is_none() => {
                    return Err(format!("{kv} speaks TLS: give --cacert"))
                }
                Some(t) if !t.tls && self.etcd_security.tls.is_some() => {
                    return Err(format!(
                        "--cacert is for TLS etcd (etcds://...), and {kv} is plain http"
                    ))
                }
                _ => {}
            }
        }
        if self.config.strategy.uses_kv() && self.kv.is_none() {
            return Err(format!(
                "strategy {} keeps the counter in a KV service: give its address with --kv",
                self.config.strategy
            ));
        }
        Ok(())
    }
}

/// A node bound to its address, ready to [`run`](NodeServer::run).
#[derive(Debug)]
pub struct NodeServer {
    options: NodeOptions,
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl NodeServer {
    /// Checks the options, reads the state stored in `state_dir` (unless
    /// `config.restored` is given) and binds the listening socket.
    pub fn bind(mut options: NodeOptions) -> io::Result<NodeServer> {
        options
            .check()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        if let (Some(dir), None) = (&options.state_dir, &options.config.restored) {
            // A state that cannot be read is not the same as no state:
            // starting without it could lose acknowledged adds.
            let (strategy, id) = (options.config.strategy, &options.id);
            let restored = read_state(dir, id, |text| {
                gcounter_core::strategy::check_stored(strategy, text, id)
            });
            options.config.restored = restored.map_err(|e| {
                io::Error::new(e.kind(), format!("cannot read the stored state: {e}"))
            })?;
        }
        let listener = conn::bind(&options.listen)?;
        let local_addr = listener.local_addr()?;
        Ok(NodeServer {
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
        let NodeServer {
            options,
            listener,
            local_addr,
        } = self;
        let (events, inbox) = async_channel::bounded(options.limits.event_queue);
        let mut owner = Owner::new(&options, &events);
        log::info!(
            "{} listening on {local_addr}: strategy {}{}, kv {} at {}, incarnation {}, peers {:?}, \
             state in {} ({})",
            options.id,
            options.config.strategy,
            match options.config.strategy {
                StrategyKind::Gossip => format!(
                    " (holding changes up to {} ms)",
                    options.config.gossip_interval.as_millis()
                ),
                _ => String::new(),
            },
            options.config.kv,
            options.kv.as_deref().unwrap_or("(none)"),
            options.config.incarnation,
            options.peers,
            options
                .state_dir
                .as_ref()
                .map_or("(nowhere)".into(), |d| d.display().to_string()),
            if options.config.restored.is_some() {
                "restored"
            } else {
                "none stored"
            },
        );
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
        owner.run(inbox).await;
        Ok(())
    }
}

/// The one task that owns the node.
struct Owner {
    node: Node,
    epoch: Instant,
    me: String,
    links: Vec<Link>,
    peers: HashMap<String, LinkId>,
    kv: Option<(String, LinkId)>,
    conns: Conns,
    /// Where to send the reply to `(client, msg_id)`.
    routes: HashMap<(String, u64), ConnId>,
    /// Each client's latest connection, for replies without a route.
    clients: HashMap<String, ConnId>,
    /// Peers this node is cut off from.
    cut: BTreeSet<String>,
    /// What the node stores to survive a crash.
    state: StateFile,
    /// The messages of one drain, held until its state is stored.
    outgoing: Vec<Envelope>,
    secret: Option<Secret>,
    /// Connections that said `peer_hello`: who they claim to be, their
    /// nonce and ours. At most one per open connection.
    challenges: HashMap<ConnId, (String, String, String)>,
    /// Connections that proved they hold the secret, and who they speak
    /// as. Every other connection is a client's.
    authenticated: HashMap<ConnId, String>,
    client_token: Option<ClientToken>,
    /// Connections that presented the client token.
    tokened: HashSet<ConnId>,
    /// Every node's id, this one's included.
    node_ids: BTreeSet<String>,
}

impl Owner {
    fn new(options: &NodeOptions, events: &Sender<Event>) -> Owner {
        let mut links = Vec::new();
        let mut peers = HashMap::new();
        let hello = options.secret.as_ref().map(|secret| Hello {
            me: options.id.clone(),
            secret: secret.clone(),
        });
        for (peer, addr) in &options.peers {
            peers.insert(peer.clone(), links.len());
            links.push(Link::spawn(
                links.len(),
                peer,
                addr,
                hello.clone(),
                events.clone(),
                &options.limits,
            ));
        }
        // A strategy that keeps nothing in the KV service needs no link.
        let kv_addr = options
            .kv
            .as_ref()
            .filter(|_| options.config.strategy.uses_kv());
        let kv = kv_addr.map(|addr| {
            let name = options.config.kv.name().to_owned();
            // `check` refused a bad etcd address.
            let link = match EtcdTarget::parse(addr).ok().flatten() {
                Some(etcd) => etcd::kv::spawn_link(
                    links.len(),
                    &name,
                    &etcd,
                    &options.etcd_security,
                    &options.id,
                    events.clone(),
                    options.limits.link_queue,
                ),
                None => Link::spawn(
                    links.len(),
                    &name,
                    addr,
                    None,
                    events.clone(),
                    &options.limits,
                ),
            };
            links.push(link);
            (name, links.len() - 1)
        });
        let mut owner = Owner {
            node: Node::new(options.config.clone()),
            epoch: Instant::now(),
            me: options.id.clone(),
            links,
            peers,
            kv,
            conns: Conns::new(&options.limits),
            routes: HashMap::new(),
            clients: HashMap::new(),
            cut: options.cut.iter().cloned().collect(),
            state: StateFile::new(options.state_dir.as_deref(), &options.id),
            outgoing: Vec::new(),
            secret: options.secret.clone(),
            challenges: HashMap::new(),
            authenticated: HashMap::new(),
            client_token: options.client_token.clone(),
            tokened: HashSet::new(),
            node_ids: options
                .peers
                .iter()
                .map(|(id, _)| id.clone())
                .chain([options.id.clone()])
                .collect(),
        };
        let mut node_ids: Vec<String> = options.peers.iter().map(|(id, _)| id.clone()).collect();
        node_ids.push(options.id.clone());
        node_ids.sort();
        let init = Envelope {
            src: INIT_SRC.into(),
            dest: options.id.clone(),
            body: Body {
                msg_id: Some(0),
                in_reply_to: None,
                payload: Payload::Init {
                    node_id: options.id.clone(),
                    node_ids,
                },
            },
        };
        let now = owner.now();
        owner.node.handle(Input::Message(init), now);
        owner
    }

    fn now(&self) -> gcounter_core::Time {
        self.epoch.elapsed()
    }

    async fn run(&mut self, inbox: Receiver<Event>) {
        /// The most events handled before one drain.
        const BATCH: usize = 256;
        'run: loop {
            let wake = self.drain();
            let next = match wake {
                // Checked before waiting, so that a steady stream of input
                // cannot starve the node's timers.
                Some(at) if at <= self.now() => None,
                Some(at) => {
                    let deadline = self.epoch + at;
                    or(async { Some(inbox.recv().await) }, async {
                        Timer::at(deadline).await;
                        None
                    })
                    .await
                }
                None => Some(inbox.recv().await),
            };
            match next {
                None => {
                    let now = self.now();
                    self.node.handle(Input::Timeout, now);
                }
                Some(Ok(Event::Stop)) | Some(Err(_)) => break,
                Some(Ok(event)) => {
                    self.on_event(event);
                    // And whatever else is waiting already, so that one
                    // drain, and one write of the state, serves them all.
                    for _ in 1..BATCH {
                        match inbox.try_recv() {
                            Ok(Event::Stop) => break 'run,
                            Ok(event) => self.on_event(event),
                            Err(_) => break,
                        }
                    }
                }
            }
        }
        inbox.close();
    }

    /// Stores the state the node asks to and routes everything it wants
    /// sent; returns when it wants waking.
    ///
    /// One write per drain, however many states it holds: only the last
    /// one is written (it holds the others), and every message of the
    /// drain waits for it, those before it included (sending later is
    /// always allowed). If the write fails, the drain's messages are
    /// dropped: one of them could reveal what is not stored.
    fn drain(&mut self) -> Option<gcounter_core::Time> {
        let wake = loop {
            match self.node.poll_output() {
                Output::Send(msg) => self.outgoing.push(msg),
                Output::Persist(state) => self.state.stage(state),
                Output::Wait(at) => break at,
            }
        };
        let mut outgoing = std::mem::take(&mut self.outgoing);
        if self.state.flush() {
            for msg in outgoing.drain(..) {
                self.route(msg);
            }
        } else {
            log::debug!(
                "{} messages dropped: the state is not stored",
                outgoing.len()
            );
            outgoing.clear();
        }
        self.outgoing = outgoing;
        wake
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Opened { conn, peer, handle } => {
                for gone in self.conns.opened(conn, peer, handle) {
                    self.forget(gone);
                }
            }
            Event::Closed { conn } => {
                if self.conns.closed(conn) {
                    self.forget(conn);
                }
            }
            Event::Line { from, line } => {
                if let Source::Conn(conn) = from {
                    if !self.conns.touch(conn) {
                        log::debug!("line from closed connection {conn} dropped");
                        return;
                    }
                }
                self.on_line(from, &line);
            }
            Event::LinkUp(id) => self.links[id].up = true,
            Event::LinkDown(id) => self.links[id].up = false,
            Event::Stop => {}
        }
    }

    fn forget(&mut self, conn: ConnId) {
        self.challenges.remove(&conn);
        self.authenticated.remove(&conn);
        self.tokened.remove(&conn);
        self.clients.retain(|_, c| *c != conn);
        if self.conns.len() == 0 {
            // Requests whose connection went away will never be answered
            // there; with nobody connected, nothing is worth keeping.
            self.routes.clear();
        }
    }

    fn is_client(&self, src: &str) -> bool {
        !self.peers.contains_key(src) && self.kv.as_ref().is_none_or(|(name, _)| name != src)
    }

    /// Closes a connection that broke the rules, and says why.
    fn refuse(&mut self, conn: ConnId, why: &str) {
        self.log_refusal(conn, why);
        self.conns.close(conn);
        self.forget(conn);
    }

    /// [`refuse`](Owner::refuse), once `reply` (which says why to the
    /// other side) is written.
    fn refuse_with(&mut self, conn: ConnId, reply: Vec<u8>, why: &str) {
        self.log_refusal(conn, why);
        self.conns.send_and_close(conn, reply);
    }

    fn log_refusal(&self, conn: ConnId, why: &str) {
        let addr = self
            .conns
            .peer_addr(conn)
            .map_or("?".into(), |a| a.to_string());
        log::warn!("connection {conn} from {addr}: {why}: closing it");
    }

    /// Whether a line from `conn`, sent as `src`, may be handled: an
    /// authenticated connection speaks only as who it proved to be; any
    /// other speaks only as a client, and only client requests.
    fn admit(&mut self, conn: ConnId, msg: &Envelope) -> bool {
        let ty = msg.body.payload.type_name();
        if let Some(who) = self.authenticated.get(&conn) {
            if *who != msg.src {
                let why = format!("authenticated as {who}, sent `{ty}` as {}", msg.src);
                self.refuse(conn, &why);
                return false;
            }
            if let Payload::Gossip { counts, decrements }
            | Payload::GossipAck { counts, decrements } = &msg.body.payload
            {
                // The core checks the sum; a slot no node owns (a slot is
                // `ID` or `ID#INCARNATION`), or a count past i64::MAX, is
                // no state any node of ours sent.
                let owner = |slot: &str| slot.split('#').next().unwrap_or_default().to_owned();
                let bad = counts.iter().chain(decrements).find(|(slot, &n)| {
                    !self.node_ids.contains(&owner(slot)) || n > i64::MAX as u64
                });
                if let Some((id, n)) = bad {
                    let why = format!("`{ty}` from {who} counts {n} for {id}, not a valid state");
                    self.refuse(conn, &why);
                    return false;
                }
            }
            return true;
        }
        let request = matches!(msg.body.payload, Payload::Add { .. } | Payload::Read { .. });
        if !self.is_client(&msg.src) || !request || msg.body.in_reply_to.is_some() {
            let why = format!(
                "`{ty}` as {} without proving it holds the cluster secret (clients may send \
                 only add and read)",
                msg.src
            );
            self.refuse(conn, &why);
            return false;
        }
        true
    }

    /// One step of the handshake on `conn` (see the `auth` module).
    fn on_handshake(&mut self, conn: ConnId, req: Request) {
        let Some(secret) = self.secret.clone() else {
            let text = "this node has no cluster secret: nobody can authenticate";
            let reply = req.error(&self.me, ErrorCode::NOT_SUPPORTED, text);
            self.conns.send(conn, reply);
            return;
        };
        let field = |k: &str| req.body.get(k).and_then(Value::as_str).unwrap_or_default();
        if req.ty == auth::PEER_HELLO {
            let theirs = field("nonce").to_owned();
            if self.authenticated.contains_key(&conn) || !auth::is_nonce(&theirs) {
                return self.refuse(conn, "a malformed or repeated peer_hello");
            }
            let Ok(mine) = auth::nonce() else {
                return self.refuse(conn, "no random nonce for its handshake");
            };
            // A hello meant for another node (relayed here by whoever
            // took its port) would fail at the dialer anyway, since our
            // MAC names us; refusing it says so in our log. (An operator
            // who dialed an address names no node.)
            if req.dest != self.me && self.node_ids.contains(&req.dest) {
                let why = format!("a peer_hello for {} from {}", req.dest, req.src);
                return self.refuse(conn, &why);
            }
            let ends = auth::Ends {
                dialer: &req.src,
                acceptor: &self.me,
            };
            let mac = secret.accept_mac(ends, &theirs, &mine);
            let reply = req.ok(
                &self.me,
                vec![("nonce", mine.clone().into()), ("mac", mac.into())],
            );
            self.challenges
                .insert(conn, (req.src.clone(), theirs, mine));
            self.conns.send(conn, reply);
            return;
        }
        let proven = self.challenges.remove(&conn).filter(|(who, theirs, mine)| {
            let ends = auth::Ends {
                dialer: who,
                acceptor: &self.me,
            };
            *who == req.src && secret.verify_dial(ends, mine, theirs, field("mac"))
        });
        match proven {
            Some((who, theirs, mine)) => {
                log::debug!("connection {conn} authenticated as {who}");
                let ends = auth::Ends {
                    dialer: &who,
                    acceptor: &self.me,
                };
                let keys =
                    Keys::acceptor(secret.bytes(), (ends.dialer, ends.acceptor), &theirs, &mine);
                let reply = req.ok(&self.me, Vec::new());
                if self.conns.secure(conn, reply, keys) {
                    self.authenticated.insert(conn, who);
                } else {
                    self.forget(conn);
                }
            }
            None => {
                let why = format!("{} failed the handshake (wrong cluster secret?)", req.src);
                self.refuse(conn, &why);
            }
        }
    }

    /// A line from a connection that has neither proved the cluster secret
    /// nor presented the client token this node requires: only the
    /// handshake or the token gets past.
    fn on_untokened(&mut self, conn: ConnId, token: &ClientToken, line: &[u8]) {
        let types = [auth::PEER_HELLO, auth::PEER_PROOF, auth::CLIENT_TOKEN];
        let Some(req) = Request::parse(line, &types) else {
            let requests = ["add", "read", control::PARTITION, control::HEAL];
            return match Request::parse(line, &requests) {
                Some(req) => {
                    let text = "this node requires a client token \
                                (gcounter client --client-token-file FILE)";
                    let reply = req.error(&self.me, ErrorCode::NOT_SUPPORTED, text);
                    self.refuse_with(conn, reply, "a request without the client token");
                }
                None => self.refuse(conn, "a line without the client token"),
            };
        };
        if req.ty != auth::CLIENT_TOKEN {
            return self.on_handshake(conn, req);
        }
        let given = req.body.get("token").and_then(Value::as_str);
        if given.is_some_and(|given| token.matches(given)) {
            self.tokened.insert(conn);
            let reply = req.ok(&self.me, Vec::new());
            self.conns.send(conn, reply);
        } else {
            let reply = req.error(&self.me, ErrorCode::NOT_SUPPORTED, "wrong client token");
            self.refuse_with(conn, reply, "a wrong client token");
        }
    }

    fn on_line(&mut self, from: Source, line: &[u8]) {
        let now = self.now();
        if let Source::Conn(conn) = from {
            if let Some(token) = self.client_token.clone() {
                if !self.authenticated.contains_key(&conn) && !self.tokened.contains(&conn) {
                    return self.on_untokened(conn, &token, line);
                }
            }
        }
        match parse_line(line) {
            Ok(mut msg) => {
                if let Source::Conn(conn) = from {
                    if !self.admit(conn, &msg) {
                        return;
                    }
                }
                if self.cut.contains(&msg.src) {
                    log::debug!(
                        "dropped `{}` from {}: cut off",
                        msg.body.payload.type_name(),
                        msg.src
                    );
                    return;
                }
                if msg.dest != self.me {
                    if !self.is_client(&msg.dest) {
                        log::warn!(
                            "message for {} from {} arrived at {} (wrong address?); handling it",
                            msg.dest,
                            msg.src,
                            self.me
                        );
                    }
                    msg.dest = self.me.clone();
                }
                if let (Source::Conn(conn), None) = (from, msg.body.in_reply_to) {
                    if self.is_client(&msg.src) {
                        self.note_client(conn, &msg.src, msg.body.msg_id);
                    }
                }
                self.node.handle(Input::Message(msg), now);
            }
            Err(err) => {
                if let Source::Conn(conn) = from {
                    if let Some(req) = Request::parse(line, &[auth::PEER_HELLO, auth::PEER_PROOF]) {
                        return self.on_handshake(conn, req);
                    }
                }
                if let Some(req) = Request::parse(line, &[control::PARTITION, control::HEAL]) {
                    // Cutting links is for the cluster's operator, who
                    // holds its secret; a node without one has no peers.
                    let allowed = match from {
                        Source::Conn(conn) => {
                            self.secret.is_none() || self.authenticated.contains_key(&conn)
                        }
                        Source::Link(_) => true,
                    };
                    if !allowed {
                        let text = "partition and heal need the cluster secret \
                                    (gcounter client --secret-file DIR/cluster.secret)";
                        let reply = req.error(&self.me, ErrorCode::NOT_SUPPORTED, text);
                        if let Source::Conn(conn) = from {
                            self.conns.send(conn, reply);
                        }
                        return;
                    }
                    return self.on_control(from, req);
                }
                if let (Source::Conn(conn), Some((client, msg_id))) = (from, &err.reply_to) {
                    if self.is_client(client) {
                        self.note_client(conn, client, Some(*msg_id));
                    } else if self.authenticated.get(&conn) != Some(client) {
                        // Its error reply would go to a peer or the KV
                        // service, on this stranger's say-so.
                        return self.refuse(conn, &format!("a malformed message as {client}"));
                    }
                }
                // The error path: the node parses again and answers.
                self.node.handle(Input::Line(line), now);
            }
        }
    }

    fn note_client(&mut self, conn: ConnId, client: &str, msg_id: Option<u64>) {
        // Every request is answered, which removes its route; but a client
        // can send messages that need no answer, under any number of ids.
        // Past this many, start afresh: replies then go to each client's
        // latest connection, or nowhere.
        const MAX_ROUTES: usize = 1 << 16;
        if self.routes.len() >= MAX_ROUTES || self.clients.len() >= MAX_ROUTES {
            log::warn!(
                "{} replies awaited, {} client ids seen: forgetting them",
                self.routes.len(),
                self.clients.len()
            );
            self.routes.clear();
            self.clients.clear();
            self.conns.forget_requests();
        }
        if let Some(id) = msg_id {
            self.conns.request(conn);
            // A msg_id used again: the earlier request's reply now goes
            // here, and its connection no longer waits for it.
            if let Some(earlier) = self.routes.insert((client.to_owned(), id), conn) {
                self.conns.answered(earlier);
            }
        }
        if self.clients.get(client) != Some(&conn) {
            self.clients.insert(client.to_owned(), conn);
        }
    }

    fn on_control(&mut self, from: Source, req: Request) {
        let reply = match req.ty.as_str() {
            control::PARTITION => match req.strings("peers") {
                Ok(peers) => match peers.iter().find(|p| !self.peers.contains_key(*p)) {
                    Some(bad) => {
                        let text = if self.kv.as_ref().is_some_and(|(name, _)| name == bad) {
                            format!("{bad} is a service: services are never cut off")
                        } else {
                            format!("{bad} is not a peer of {}", self.me)
                        };
                        req.error(&self.me, ErrorCode::MALFORMED_REQUEST, &text)
                    }
                    None => {
                        self.cut = peers.into_iter().collect();
                        log::info!("partition: cut off from {:?}", self.cut);
                        req.ok(&self.me, Vec::new())
                    }
                },
                Err(text) => req.error(&self.me, ErrorCode::MALFORMED_REQUEST, &text),
            },
            _ => {
                if !self.cut.is_empty() {
                    log::info!("heal: no longer cut off from {:?}", self.cut);
                }
                self.cut.clear();
                req.ok(&self.me, Vec::new())
            }
        };
        match from {
            Source::Conn(conn) => {
                self.conns.send(conn, reply);
            }
            Source::Link(id) => self.links[id].send(reply),
        }
    }

    fn route(&mut self, msg: Envelope) {
        if msg.dest == INIT_SRC {
            return;
        }
        let mut line = Vec::with_capacity(128);
        write_line(&mut line, &msg);
        if let Some(&link) = self.peers.get(&msg.dest) {
            if self.cut.contains(&msg.dest) {
                log::debug!(
                    "dropped `{}` to {}: cut off",
                    msg.body.payload.type_name(),
                    msg.dest
                );
            } else {
                self.links[link].send(line);
            }
            return;
        }
        if let Some((_, link)) = self.kv.as_ref().filter(|(name, _)| *name == msg.dest) {
            self.links[*link].send(line);
            return;
        }
        let routed = msg
            .body
            .in_reply_to
            .and_then(|id| self.routes.remove(&(msg.dest.clone(), id)));
        if let Some(conn) = routed {
            self.conns.answered(conn);
        }
        let conn = routed.or_else(|| self.clients.get(&msg.dest).copied());
        let sent = conn.is_some_and(|conn| self.conns.send(conn, line));
        if !sent {
            log::debug!(
                "dropped `{}` to {}: not connected",
                msg.body.payload.type_name(),
                msg.dest
            );
        }
    }
}
