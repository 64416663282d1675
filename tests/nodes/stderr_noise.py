#!/usr/bin/env python3
"""A correct single-node counter with a noisy stderr: at init it writes a
byte that is not UTF-8 and one huge line (`stderr_noise.py [MB] [COUNT]`:
COUNT lines of MB megabytes, default one of 4), then a short line per
request. `gcounter test --log-stderr` must run it to a valid verdict,
its stderr whole in the log and cut on the terminal."""

import json
import sys

size_mb = float(sys.argv[1]) if len(sys.argv) > 1 else 4
count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
err = sys.stderr.buffer
total = 0
next_id = 0


def reply(msg, body):
    global next_id
    body["in_reply_to"] = msg["body"]["msg_id"]
    body["msg_id"] = next_id
    next_id += 1
    out = {"src": msg["dest"], "dest": msg["src"], "body": body}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    msg = json.loads(line)
    body = msg["body"]
    kind = body["type"]
    if kind == "init":
        err.write(b"starting \xff\xfe not UTF-8\n")
        for _ in range(count):
            err.write(b"y" * int(size_mb * 1_000_000) + b"\n")
        err.flush()
        reply(msg, {"type": "init_ok"})
    elif kind == "add":
        total += body["delta"]
        reply(msg, {"type": "add_ok"})
    elif kind == "read":
        reply(msg, {"type": "read_ok", "value": total})
    # A node that lost its stderr dies here, as a real one would.
    err.write(f"served {kind} {body['msg_id']}\n".encode())
    err.flush()
