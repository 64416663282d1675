#!/usr/bin/env python3
"""Bug class: duplicate and unsolicited replies.

A single-node counter that answers correctly but too often: its first
five client requests are each answered twice, and after the seventh it
sends one reply to a msg_id its client never used. The verdict stays valid
(clients ignore what they do not wait for); `gcounter test` must count and
show both as warnings."""

import json
import sys

total = 0
next_id = 0
requests = 0


def send(dest, body):
    global next_id
    body["msg_id"] = next_id
    next_id += 1
    out = {"src": node_id, "dest": dest, "body": body}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


node_id = None
for line in sys.stdin:
    msg = json.loads(line)
    body = msg["body"]
    kind = body["type"]
    if kind == "init":
        node_id = body["node_id"]
        send(msg["src"], {"type": "init_ok", "in_reply_to": body["msg_id"]})
        continue
    if kind == "add":
        total += body["delta"]
        reply = {"type": "add_ok"}
    elif kind == "read":
        reply = {"type": "read_ok", "value": total}
    else:
        continue
    requests += 1
    times = 2 if requests <= 5 else 1
    for _ in range(times):
        send(msg["src"], dict(reply, in_reply_to=body["msg_id"]))
    if requests == 7:
        send(msg["src"], {"type": "read_ok", "value": total, "in_reply_to": 1_000_000})
