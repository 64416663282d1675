//! The core alone, no I/O: a node in a single-node cluster handling one
//! client `add` or `read`, from the bytes of the request line to the bytes
//! of the reply (`Input::Line`, draining `poll_output`, `write_line` into a
//! reused buffer), and the same from a pre-parsed message
//! (`Input::Message`). The parse and the write are also timed alone.
//!
//! ```sh
//! cargo bench -p gcounter-core --bench node
//! ```

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gcounter_core::protocol::{parse_line, write_line};
use gcounter_core::{Config, Input, Node, Output};
use std::hint::black_box;
use std::time::Duration;

const INIT: &str = r#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}}"#;
const ADD: &str = r#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":2,"delta":3}}"#;
const READ: &str = r#"{"src":"c1","dest":"n1","body":{"type":"read","msg_id":3}}"#;

/// A node that has answered its `init`, configured as the stdio transport
/// without a state directory configures it: nothing is stored.
fn ready_node() -> Node {
    let config = Config {
        persist: false,
        ..Config::default()
    };
    let mut node = Node::new(config);
    node.handle(Input::Line(INIT.as_bytes()), Duration::ZERO);
    drain(&mut node, &mut Vec::new());
    node
}

/// What the stdio transport does after each input: write every message
/// out and give it back to the node.
fn drain(node: &mut Node, out: &mut Vec<u8>) {
    loop {
        match node.poll_output() {
            Output::Send(msg) => {
                write_line(out, &msg);
                node.recycle(msg);
            }
            // Maelstrom's transport has nowhere to store state.
            Output::Persist(_) => {}
            Output::Wait(_) => return,
        }
    }
}

fn node(c: &mut Criterion) {
    let mut group = c.benchmark_group("node");
    group.throughput(Throughput::Elements(1));
    for (name, line) in [("add", ADD), ("read", READ)] {
        group.bench_function(format!("line/{name}"), |b| {
            let mut node = ready_node();
            let mut out = Vec::with_capacity(4096);
            b.iter(|| {
                out.clear();
                node.handle(Input::Line(black_box(line.as_bytes())), Duration::ZERO);
                drain(&mut node, &mut out);
                black_box(out.len())
            });
        });
        let msg = parse_line(line.as_bytes()).expect("a valid line");
        group.bench_function(format!("message/{name}"), |b| {
            let mut node = ready_node();
            let mut out = Vec::with_capacity(4096);
            b.iter_batched(
                || msg.clone(),
                |msg| {
                    out.clear();
                    node.handle(Input::Message(msg), Duration::ZERO);
                    drain(&mut node, &mut out);
                    black_box(out.len())
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn protocol(c: &mut Criterion) {
    let mut group = c.benchmark_group("protocol");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_line/add", |b| {
        b.iter(|| parse_line(black_box(ADD.as_bytes())))
    });
    let mut node = ready_node();
    node.handle(Input::Line(READ.as_bytes()), Duration::ZERO);
    let Output::Send(reply) = node.poll_output() else {
        panic!("a read is answered");
    };
    group.bench_function("write_line/read_ok", |b| {
        let mut out = Vec::with_capacity(4096);
        b.iter(|| {
            out.clear();
            write_line(&mut out, black_box(&reply));
            black_box(out.len())
        });
    });
    group.finish();
}

criterion_group!(benches, node, protocol);
criterion_main!(benches);
