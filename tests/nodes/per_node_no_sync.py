#!/usr/bin/env python3
"""A deliberately buggy grow-only counter: per-node keys in seq-kv, summed
without a sync write.

This is one of the most common public solutions of Fly.io's "Gossip
Glomers" challenge 4, in plain Python with no library, for `gcounter test
--bin`. It exists so that the test can be shown to catch it.

How it works. Every node owns one key in `seq-kv`, `counter-<node_id>`, and
is the only node that writes it. An `add` is added to the node's local
running total and acknowledged at once; a background loop writes the total
to the node's key every FLUSH_INTERVAL seconds when it has grown (one
writer, so the writes land in order and none is lost; a node killed between
an add and the next flush would forget the add, but partitions kill
nobody). A `read` reads every node's key from `seq-kv`, all at once (a
missing key counts as 0), and answers the sum.

The bug. `seq-kv` is only sequentially consistent: a read may be served
from an older state than the newest, anywhere between the newest state this
node has already observed and the newest of all. The node's own key is
always current to itself (its own writes moved it forward), but the other
nodes' keys may be read as they were a few states ago. Nothing forces the
node's view forward before a `read`, so the sum can miss adds that other
nodes have long acknowledged and written -- and this holds for the final
reads too: once the workload stops nobody changes `seq-kv` any more, so a
node whose view is behind stays behind, however long the recovery.

Why a single run often passes. A final read is short only if another node
changed its key after this node last talked to `seq-kv` -- in practice, a
node still had an unwritten add when the workload stopped, and its last
flush landed after the others' last reads -- and the random state seq-kv
picks for this node's read of that key predates that write. Both are
chance: in our runs (3 nodes, rate 100, 20 s, partitions, FLUSH_INTERVAL
50 ms) about one run in four was invalid at zero latency and about one in
three with latency, each time one final read a few increments short while
the others were right. The flush interval moves the odds: writing on every
add keeps each node's view close to the newest state (about one run in five
was invalid), while a 100 ms flush made every zero-latency run we tried
invalid.

The fix. Before reading the keys, write a fresh, unique value (a counter or
a random number) to a key of the node's own, e.g. `sync-<node_id>`: a write
that changes a value always runs against the newest state and moves this
node's position there, so the reads that follow cannot be older than it.
"""

import json
import sys
import threading
import time

lock = threading.Lock()  # next_id, pending, total
out_lock = threading.Lock()
node_id = None
node_ids = []
next_id = 0
pending = {}  # msg_id -> [threading.Event, reply body or None]
total = 0  # our running total, acknowledged or about to be
written = 0  # the last total seq-kv acknowledged for our key (flusher only)

KV = "seq-kv"
KV_TIMEOUT = 2.0
FLUSH_INTERVAL = 0.05  # seconds between two writes of our total


def log(text):
    print(f"{node_id}: {text}", file=sys.stderr, flush=True)


def key_of(node):
    return f"counter-{node}"


def send(dest, body):
    with out_lock:
        sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
        sys.stdout.flush()


def fresh_id():
    global next_id
    with lock:
        next_id += 1
        return next_id - 1


def reply(msg, body):
    body["msg_id"] = fresh_id()
    body["in_reply_to"] = msg["body"]["msg_id"]
    send(msg["src"], body)


def rpc(dest, body, timeout=KV_TIMEOUT):
    """Send a request and wait for its reply (None on timeout). The main
    loop keeps reading stdin meanwhile and hands the reply over."""
    msg_id = fresh_id()
    slot = [threading.Event(), None]
    with lock:
        pending[msg_id] = slot
    body["msg_id"] = msg_id
    send(dest, body)
    slot[0].wait(timeout)
    with lock:
        pending.pop(msg_id, None)
    return slot[1]


def kv_read_int(key):
    """The value of `key`, 0 if it does not exist; None if seq-kv did not say."""
    resp = rpc(KV, {"type": "read", "key": key})
    if resp is None:
        return None
    if resp["type"] == "read_ok":
        return resp["value"]
    if resp["type"] == "error" and resp.get("code") == 20:
        return 0
    log(f"read {key}: {resp}")
    return None


def handle_add(msg):
    global total
    with lock:
        total += msg["body"]["delta"]
    reply(msg, {"type": "add_ok"})


def flush_forever():
    """Write our running total to our key whenever it has grown. One
    writer, so the writes land in order."""
    global written
    while True:
        time.sleep(FLUSH_INTERVAL)
        with lock:
            value = total
        if value == written:
            continue
        resp = rpc(KV, {"type": "write", "key": key_of(node_id), "value": value})
        if resp is not None and resp["type"] == "write_ok":
            written = value
        else:
            log(f"write {value}: {resp}; again later")


def handle_read(msg):
    # BUG: no write of a fresh value first, so every one of these reads may
    # be served from a stale state of seq-kv.
    values = {}

    def read_one(node):
        values[node] = kv_read_int(key_of(node))

    readers = [threading.Thread(target=read_one, args=(node,)) for node in node_ids]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    missing = [key_of(n) for n, v in values.items() if v is None]
    if missing:
        reply(msg, {"type": "error", "code": 11, "text": f"could not read {missing}"})
    else:
        reply(msg, {"type": "read_ok", "value": sum(values.values())})


def spawn(handler, msg):
    threading.Thread(target=handler, args=(msg,), daemon=True).start()


def main():
    global node_id, node_ids
    for line in sys.stdin:
        msg = json.loads(line)
        body = msg["body"]
        kind = body["type"]
        if "in_reply_to" in body:
            with lock:
                slot = pending.get(body["in_reply_to"])
            if slot is not None:
                slot[1] = body
                slot[0].set()
            else:
                log(f"late or unexpected reply {line.strip()}")
        elif kind == "init":
            node_id = body["node_id"]
            node_ids = list(body["node_ids"])
            reply(msg, {"type": "init_ok"})
            threading.Thread(target=flush_forever, daemon=True).start()
        elif kind == "add":
            handle_add(msg)
        elif kind == "read":
            spawn(handle_read, msg)
        else:
            log(f"unexpected message {line.strip()}")


if __name__ == "__main__":
    main()
