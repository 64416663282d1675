//! A tiny seeded cluster for the strategies' unit tests: nodes, the KV
//! model, and a network that delivers messages in random order.

use crate::config::{Config, KvKind, StrategyKind};
use crate::node::{Input, Node, Output};
use crate::protocol::{Body, Envelope, Payload};
use crate::service::Service;
use crate::Time;
use std::time::Duration;

pub struct Cluster {
    pub nodes: Vec<Node>,
    wake: Vec<Option<Time>>,
    pub kv: Service,
    kv_name: &'static str,
    kv_msg_id: u64,
    rng: fastrand::Rng,
    pub net: Vec<Envelope>,
    pub now: Time,
    /// Replies that reached clients, in order.
    pub replies: Vec<Envelope>,
    next_client_msg: u64,
    /// Messages for which this returns true are dropped.
    pub drop_if: Box<dyn FnMut(&Envelope) -> bool>,
    pub ids: Vec<String>,
    /// Every message the nodes sent, in order.
    pub sent: Vec<Envelope>,
    /// Per node, the last state it asked to store: its disk, which
    /// survives replacing the node.
    pub stored: Vec<Option<String>>,
}

pub fn config(kind: StrategyKind, kv: KvKind, incarnation: u64) -> Config {
    Config {
        strategy: kind,
        kv,
        incarnation,
        ..Config::default()
    }
}

impl Cluster {
    pub fn new(kind: StrategyKind, n: usize, seed: u64) -> Cluster {
        let ids: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        let mut c = Cluster {
            nodes: Vec::new(),
            wake: vec![None; n],
            kv: Service::by_name("seq-kv", seed).expect("seq-kv exists"),
            kv_name: KvKind::SeqKv.name(),
            kv_msg_id: 0,
            rng: fastrand::Rng::with_seed(seed),
            net: Vec::new(),
            now: Time::ZERO,
            replies: Vec::new(),
            next_client_msg: 1000,
            drop_if: Box::new(|_| false),
            ids,
            sent: Vec::new(),
            stored: vec![None; n],
        };
        for i in 0..n {
            c.nodes.push(Node::new(config(kind, KvKind::SeqKv, 0)));
            c.init(i);
        }
        c
    }

    /// Sends `init` to node `i` and delivers it.
    pub fn init(&mut self, i: usize) {
        let init = Payload::Init {
            node_id: self.ids[i].clone(),
            node_ids: self.ids.clone(),
        };
        let msg = Envelope {
            src: "c0".into(),
            dest: self.ids[i].clone(),
            body: Body {
                msg_id: Some(0),
                in_reply_to: None,
                payload: init,
            },
        };
        self.nodes[i].handle(Input::Message(msg), self.now);
        self.drain(i);
        self.net.retain(|m| m.body.payload != Payload::InitOk);
        self.sent.retain(|m| m.body.payload != Payload::InitOk);
    }

    fn deliver_to(&mut self, i: usize, src: &str, payload: Payload, msg_id: u64) {
        let msg = Envelope {
            src: src.into(),
            dest: self.ids[i].clone(),
            body: Body {
                msg_id: Some(msg_id),
                in_reply_to: None,
                payload,
            },
        };
        self.net.push(msg);
    }

    /// Queues a client request to node `i`; returns its msg_id.
    pub fn request(&mut self, i: usize, payload: Payload) -> u64 {
        self.next_client_msg += 1;
        let id = self.next_client_msg;
        let client = format!("c{}", i + 1);
        self.deliver_to(i, &client, payload, id);
        id
    }

    fn drain(&mut self, i: usize) {
        loop {
            match self.nodes[i].poll_output() {
                Output::Send(msg) => {
                    self.sent.push(msg.clone());
                    self.net.push(msg);
                }
                Output::Persist(state) => self.stored[i] = Some(state),
                Output::Wait(at) => {
                    self.wake[i] = at;
                    return;
                }
            }
        }
    }

    /// Delivers one random message in flight; false if none.
    pub fn step(&mut self) -> bool {
        if self.net.is_empty() {
            return false;
        }
        let msg = self.net.swap_remove(self.rng.usize(..self.net.len()));
        self.deliver(msg);
        true
    }

    /// Delivers every message in flight that `pick` chooses, in order, and
    /// none of what they cause.
    pub fn deliver_where(&mut self, pick: impl Fn(&Envelope) -> bool) {
        let (picked, rest) = std::mem::take(&mut self.net).into_iter().partition(pick);
        self.net = rest;
        for msg in picked {
            self.deliver(msg);
        }
    }

    fn deliver(&mut self, msg: Envelope) {
        if (self.drop_if)(&msg) {
            return;
        }
        if msg.dest == self.kv_name {
            self.kv_msg_id += 1;
            if let Some(reply) = self.kv.answer(&msg, self.kv_msg_id) {
                self.net.push(reply);
            }
        } else if let Some(i) = self.ids.iter().position(|id| *id == msg.dest) {
            self.nodes[i].handle(Input::Message(msg), self.now);
            self.drain(i);
        } else {
            self.replies.push(msg);
        }
    }

    /// Runs until nothing is in flight and no timer is due within `horizon`.
    pub fn settle(&mut self, horizon: Duration) {
        let end = self.now + horizon;
        for _ in 0..1_000_000 {
            if self.step() {
                continue;
            }
            let Some((i, at)) = self
                .wake
                .iter()
                .enumerate()
                .filter_map(|(i, w)| w.map(|w| (i, w)))
                .min_by_key(|&(_, w)| w)
            else {
                return;
            };
            if at > end {
                return;
            }
            self.now = self.now.max(at);
            self.nodes[i].handle(Input::Timeout, self.now);
            self.drain(i);
        }
        panic!("cluster did not settle: livelock?");
    }

    /// The reply to the request with `msg_id`, if it came.
    pub fn reply(&self, msg_id: u64) -> Option<&Payload> {
        self.replies
            .iter()
            .find(|r| r.body.in_reply_to == Some(msg_id))
            .map(|r| &r.body.payload)
    }

    /// Reads on node `i` and returns the value after settling.
    /// A read on node `i` of a counter that may be below zero.
    pub fn read_signed(&mut self, i: usize) -> i64 {
        let id = self.request(i, Payload::Read { key: None });
        self.settle(Duration::from_secs(5));
        match self.reply(id) {
            Some(Payload::ReadOk { value }) => value.as_i64().expect("a counter"),
            other => panic!("read on n{i}: {other:?}"),
        }
    }

    pub fn read(&mut self, i: usize) -> u64 {
        let id = self.request(i, Payload::Read { key: None });
        self.settle(Duration::from_secs(5));
        match self.reply(id) {
            Some(Payload::ReadOk { value }) => value.as_u64().expect("a counter"),
            other => panic!("read on n{i}: {other:?}"),
        }
    }
}
