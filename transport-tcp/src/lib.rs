//! Runs gcounter nodes, the KV service and clients over TCP: a local
//! cluster of real processes on real sockets, running the very core that
//! runs under Maelstrom.
//!
//! The wire is Maelstrom's: one JSON message per line. Each process has
//! one task that owns its state machine (a [`gcounter_core::Node`] or a
//! KV model); socket tasks push what they read into one bounded queue and
//! the owner hands what it sends to bounded per-socket queues (see the
//! `conn` module for the limits and backpressure).
//!
//! - [`kv`]: `gcounter kv`, the core's `seq-kv` / `lin-kv` models served
//!   to any number of connections.
//! - [`node`]: `gcounter node`, one node: listens for clients and peers,
//!   dials its peers and the KV service, routes by `dest`, and keeps what
//!   its core asks to store to survive a crash (with [`gcounter_state`]).
//! - [`auth`]: the cluster secret and the handshake by which peers (and
//!   whoever sends `partition` / `heal`) prove they hold it; after it,
//!   the `secure` module seals every line of that connection.
//! - [`client`]: one request at a time to a node, `gcounter client`.
//! - [`control`]: the `partition` / `heal` messages a node understands and
//!   the `restart` / `kill` / `start` / `status` that `gcounter cluster`
//!   does.
//! - [`cluster`]: a KV service and N nodes as child processes, with kill,
//!   restart and partition, for people and for test runners.
//! - [`etcd`]: etcd v3 in place of the KV service (`--kv etcd://...`),
//!   and local etcd clusters.
//!
//! # Limits on every listening socket
//!
//! See [`Limits`]: a line longer than 1 MiB closes its connection; a line
//! that is not a valid message is answered with an error where it can be
//! and dropped otherwise, and the connection stays; a connection with no
//! complete line for a minute is closed; past 512 connections the one
//! quiet the longest is closed; a connection that ends mid-line loses that
//! line; a connection with 1,024 requests unanswered, or 256 KiB of
//! replies unwritten, is not read until that drops (a pipelining client is
//! paced by its own replies), and one that then takes no reply for the idle
//! time, or lets 16 MiB of replies pile up, is closed as not reading. Every
//! case is logged and touches no other connection.

mod conn;
mod lines;
mod local;
mod secure;

pub mod auth;
pub mod client;
pub mod cluster;
pub mod control;
pub mod etcd;
pub mod kv;
pub mod node;

pub use auth::{ClientToken, Secret};
pub use client::{Client, ClientError, Reply};
pub use cluster::{Cluster, ClusterSpec, EtcdBackend, Member};
pub use conn::Limits;
pub use etcd::{EtcdCluster, EtcdCreds, EtcdTarget};
pub use gcounter_state::{lock_state, read_state, state_path, LOCK_WAIT};
pub use kv::{KvOptions, KvServer};
pub use lines::MAX_LINE;
pub use node::{next_incarnation, NodeOptions, NodeServer};
