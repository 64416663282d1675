#!/usr/bin/env python3
"""Bug class: a node that prints something other than a message on stdout.

A broken Maelstrom node: it answers init, then prints a line that is not
JSON. `gcounter test` must fail and name the node and the line."""

import json
import sys

for line in sys.stdin:
    msg = json.loads(line)
    body = msg["body"]
    if body["type"] == "init":
        reply = {"type": "init_ok", "in_reply_to": body["msg_id"], "msg_id": 0}
        print(json.dumps({"src": body["node_id"], "dest": msg["src"], "body": reply}), flush=True)
    else:
        print("hello from a node that forgot stdout is for messages", flush=True)
