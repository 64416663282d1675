//! The grow-only counter node of Maelstrom's `g-counter` workload, as a
//! sans-IO state machine.
//!
//! Data flows one way: bytes -> transport -> [`Input`] -> [`Node`] ->
//! [`Output`] -> transport -> bytes. The node never touches a socket, a
//! clock, a thread or an unseeded random number: time arrives with every
//! input, and everything the node wants done leaves as an output. That is
//! what lets the simulator drive thousands of seeded runs per second and
//! keeps the stdio and TCP transports thin.
//!
//! # The run loop
//!
//! Feed an input with [`Node::handle`], then drain [`Node::poll_output`]
//! until it returns [`Output::Wait`]: that is the time the node wants to be
//! woken with [`Input::Timeout`] if no input arrives first (`None`: only
//! input can wake it). Every transport is this loop around its own I/O.
//!
//! Outputs are done in order. An [`Output::Persist`] must be stored
//! durably before any message that follows it is sent, and given back in
//! [`Config::restored`] when the node starts again; a transport that
//! keeps nothing across restarts (the stdio transport without a state
//! directory, the simulator) ignores it. Storing only the
//! last of several `Persist`s and then sending every message of the drain
//! is fine: each state holds the ones before it. A transport done with a
//! sent message may give it back with [`Node::recycle`], so that its
//! buffers serve the next messages (the stdio transport does: it saves
//! allocations per request, nothing more).
//!
//! ```
//! use gcounter_core::{Config, Input, Node, Output};
//! use std::time::Duration;
//!
//! let mut node = Node::new(Config::default());
//! let lines = [
//!     r#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}}"#,
//!     r#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":2,"delta":5}}"#,
//!     r#"{"src":"c1","dest":"n1","body":{"type":"read","msg_id":3}}"#,
//! ];
//! let mut sent = Vec::new();
//! for (i, line) in lines.iter().enumerate() {
//!     let now = Duration::from_millis(i as u64);
//!     node.handle(Input::Line(line.as_bytes()), now);
//!     loop {
//!         match node.poll_output() {
//!             Output::Send(msg) => sent.push(gcounter_core::protocol::to_line(&msg)),
//!             Output::Persist(_state) => {} // a node that never restarts
//!             Output::Wait(_wake_at) => break, // sleep until input or `_wake_at`
//!         }
//!     }
//! }
//! assert_eq!(
//!     sent[2],
//!     r#"{"src":"n1","dest":"c1","body":{"type":"read_ok","in_reply_to":3,"msg_id":2,"value":5}}"#
//! );
//! ```
//!
//! # Modules
//!
//! - [`protocol`]: the envelope and typed bodies, with the fixtures' key order.
//! - [`node`]: `init`, message ids, dispatch, calls awaiting replies, timers.
//! - [`strategy`]: the trait and the four ways to keep the counter.
//! - [`service`]: `seq-kv`, `lin-kv` and `lin-tso` as seeded state machines.
//! - [`config`]: what the node is told before it starts.

pub mod config;
pub mod error;
mod io;
pub mod node;
pub mod protocol;
pub mod service;
pub mod strategy;

pub use config::{Config, KvKind, StrategyKind};
pub use error::ErrorCode;
pub use node::{Input, Node, Output};
pub use protocol::{Body, Envelope, Payload};

/// A point in time, as the time elapsed since an epoch the transport
/// chooses (the process start, or zero in the simulator).
pub type Time = std::time::Duration;
