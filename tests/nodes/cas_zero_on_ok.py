#!/usr/bin/env python3
"""A deliberately buggy grow-only counter: one shared key in seq-kv, fed by
a buffered compare-and-swap loop that zeroes its buffer on success.

This is a classic public solution of Fly.io's "Gossip Glomers" challenge 4,
with its classic bug, in plain Python with no library, for `gcounter test
--bin`. It exists so that the test can be shown to catch it.

How it works. All nodes share one key, `counter`, in `seq-kv`. An `add` is
acknowledged at once and its delta added to a local buffer. A background
loop wakes every FLUSH_INTERVAL seconds and, if the buffer is not empty,
reads `counter` (a missing key counts as 0), then asks `cas from=value
to=value+buffer` with `create_if_not_exists`. A stale read just makes the
cas fail (precondition-failed), and the loop tries again at its next
wake-up with the buffer intact. A `read` first writes a fresh random value
to a key of its own, `sync-<node_id>` (a write that changes a value runs
against seq-kv's newest state and brings this node's view up to date), then
reads `counter`; so reads are not stale, and the lost adds below are the
only thing wrong.

The bug. On `cas_ok` the loop sets the buffer to ZERO instead of
subtracting the amount that cas carried. An `add` acknowledged while the
cas was in flight went into the buffer after the cas was built, was not
part of it, and is then wiped: an acknowledged increment that no read will
ever see. The final reads all agree, and are all short.

Why a single run often passes. An add is lost only if it reaches this node
in the window between building the cas and its `cas_ok`: one round trip to
`seq-kv`, a fraction of a millisecond on a local machine without latency,
against ~11 adds per second per node, and a fifth of the adds are of 0
anyway. With FLUSH_INTERVAL at 250 ms a zero-latency run has a few hundred
such windows and, in our runs, usually lost nothing (2 of 7 invalid, each
a few increments short); with a 100 ms flush more windows open and 5 of 7
zero-latency runs lost an add or two. With message latency the window is a
round trip of it, tens of milliseconds, and every run we tried lost adds,
often dozens.

The fix. Remember what the cas carried and, on `cas_ok`, subtract exactly
that (`buffer -= delta`), so that adds that arrived in between stay in the
buffer for the next round.
"""

import json
import random
import sys
import threading
import time

lock = threading.Lock()  # next_id, pending, buffer
out_lock = threading.Lock()
node_id = None
next_id = 0
pending = {}  # msg_id -> [threading.Event, reply body or None]
buffer = 0  # acknowledged adds not yet in seq-kv

KV = "seq-kv"
KEY = "counter"
KV_TIMEOUT = 2.0
FLUSH_INTERVAL = 0.25  # seconds between two flushes of the buffer


def log(text):
    print(f"{node_id}: {text}", file=sys.stderr, flush=True)


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


def kv_read_counter():
    """The value of `counter`, 0 if it does not exist; None if seq-kv did
    not say."""
    resp = rpc(KV, {"type": "read", "key": KEY})
    if resp is None:
        return None
    if resp["type"] == "read_ok":
        return resp["value"]
    if resp["type"] == "error" and resp.get("code") == 20:
        return 0
    log(f"read {KEY}: {resp}")
    return None


def flush_forever():
    global buffer
    while True:
        time.sleep(FLUSH_INTERVAL)
        with lock:
            if buffer == 0:
                continue
        current = kv_read_counter()
        if current is None:
            continue
        with lock:
            delta = buffer
        resp = rpc(KV, {
            "type": "cas",
            "key": KEY,
            "from": current,
            "to": current + delta,
            "create_if_not_exists": True,
        })
        if resp is not None and resp["type"] == "cas_ok":
            with lock:
                buffer = 0  # BUG: should be `buffer -= delta`
        else:
            # precondition-failed (a stale read, or another node got there
            # first) or no answer: keep the buffer, try again next time.
            pass


def handle_read(msg):
    # seq-kv may serve a stale state; a write that changes a value runs
    # against the newest state and brings this node's view up to date.
    resp = rpc(KV, {"type": "write", "key": f"sync-{node_id}", "value": random.getrandbits(62)})
    if resp is None or resp["type"] != "write_ok":
        reply(msg, {"type": "error", "code": 11, "text": f"could not sync: {resp}"})
        return
    value = kv_read_counter()
    if value is None:
        reply(msg, {"type": "error", "code": 11, "text": f"could not read {KEY}"})
    else:
        reply(msg, {"type": "read_ok", "value": value})


def main():
    global node_id, buffer
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
            reply(msg, {"type": "init_ok"})
            threading.Thread(target=flush_forever, daemon=True).start()
        elif kind == "add":
            with lock:
                buffer += body["delta"]
            reply(msg, {"type": "add_ok"})
        elif kind == "read":
            threading.Thread(target=handle_read, args=(msg,), daemon=True).start()
        else:
            log(f"unexpected message {line.strip()}")


if __name__ == "__main__":
    main()
