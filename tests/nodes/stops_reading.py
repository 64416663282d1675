#!/usr/bin/env python3
"""Bug class: a node that stops reading its stdin.

A broken Maelstrom node: it answers init, then asks seq-kv for a large
value again and again and never reads its stdin again, so the replies
fill the pipe. `gcounter test` must end with an error naming the node,
not wait on the pipe forever."""

import json
import os
import sys
import time

line = sys.stdin.readline()
msg = json.loads(line)
body = msg["body"]
me = body["node_id"]
reply = {"type": "init_ok", "in_reply_to": body["msg_id"], "msg_id": 0}
print(json.dumps({"src": me, "dest": msg["src"], "body": reply}), flush=True)


def send(msg_id, body):
    body["msg_id"] = msg_id
    print(json.dumps({"src": me, "dest": "seq-kv", "body": body}), flush=True)


send(1, {"type": "write", "key": "big", "value": "x" * 100_000})
# About 20 MB of replies: far more than a pipe holds.
for i in range(200):
    send(2 + i, {"type": "read", "key": "big"})

# Never read again; leave once the runner is gone (it may be killed).
parent = os.getppid()
deadline = time.monotonic() + 300
while os.getppid() == parent and time.monotonic() < deadline:
    time.sleep(0.2)
