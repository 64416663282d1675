#!/usr/bin/env python3
# Bug class: a node whose read_ok values are not integers (issue 24, item
# 6). Maelstrom's client takes a value through Clojure's `long`: 170.5
# reads as 170, and a number outside 64 bits throws, making that read
# `info`. The runner made every such read indeterminate, so the final read
# was lost and the verdict `unknown`, without a warning.
"""A single-node counter that answers every read with its total plus 0.5,
except the third read, answered with 2^64 + 117."""

import json
import sys

total = 0
reads = 0
node_id = None
for line in sys.stdin:
    msg = json.loads(line)
    body = msg["body"]
    if body["type"] == "init":
        node_id = body["node_id"]
        reply = {"type": "init_ok"}
    elif body["type"] == "add":
        total += body["delta"]
        reply = {"type": "add_ok"}
    elif body["type"] == "read":
        reads += 1
        value = 2**64 + 117 if reads == 3 else total + 0.5
        reply = {"type": "read_ok", "value": value}
    else:
        continue
    reply["in_reply_to"] = body["msg_id"]
    sys.stdout.write(json.dumps({"src": node_id, "dest": msg["src"], "body": reply}) + "\n")
    sys.stdout.flush()
