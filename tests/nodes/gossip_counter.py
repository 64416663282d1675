#!/usr/bin/env python3
"""A grow-only counter node in plain Python, for `gcounter test --bin`.

It speaks Maelstrom's protocol on stdin/stdout with no library: a G-Counter
CRDT (one count per node, merged by maximum), acknowledged locally and
gossiped to every peer every 200 ms. It exists to show that `gcounter test`
runs any Maelstrom node, not just ours.
"""

import json
import sys
import threading
import time

lock = threading.Lock()
out_lock = threading.Lock()
node_id = None
peers = []
counts = {}
next_id = 0


def send(dest, body):
    global next_id
    with out_lock:
        line = json.dumps({"src": node_id, "dest": dest, "body": body})
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def reply(msg, body):
    global next_id
    with lock:
        body["msg_id"] = next_id
        next_id += 1
    body["in_reply_to"] = msg["body"]["msg_id"]
    send(msg["src"], body)


def gossip_forever():
    while True:
        time.sleep(0.2)
        with lock:
            state = dict(counts)
        for peer in peers:
            send(peer, {"type": "py_gossip", "counts": state})


def main():
    global node_id, peers
    for line in sys.stdin:
        msg = json.loads(line)
        body = msg["body"]
        kind = body["type"]
        if kind == "init":
            node_id = body["node_id"]
            peers = [n for n in body["node_ids"] if n != node_id]
            reply(msg, {"type": "init_ok"})
            threading.Thread(target=gossip_forever, daemon=True).start()
        elif kind == "add":
            with lock:
                counts[node_id] = counts.get(node_id, 0) + body["delta"]
            reply(msg, {"type": "add_ok"})
        elif kind == "read":
            with lock:
                value = sum(counts.values())
            reply(msg, {"type": "read_ok", "value": value})
        elif kind == "py_gossip":
            with lock:
                for node, n in body["counts"].items():
                    counts[node] = max(counts.get(node, 0), n)
        else:
            print(f"unexpected message {line!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
