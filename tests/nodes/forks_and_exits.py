#!/usr/bin/env python3
# Bug class: a node that exits while a process it forked still holds its
# stdout (issue 24, item 5). The runner noticed exits by stdout closing, so
# it never saw this one: the run ended `unknown` after 14 s without a word,
# and the child outlived the runner. It must fail at once ("exited before
# the test ended"), and the child must be killed with the node's group.
"""A single-node counter that, at its 10th request, forks a child that
sleeps for a minute holding stdin, stdout and stderr, and exits. The
child prints its pid on stderr (the node's log) for the test to check."""

import json
import os
import sys
import time

total = 0
requests = 0
node_id = None
for line in sys.stdin:
    msg = json.loads(line)
    body, src = msg["body"], msg["src"]
    reply = None
    if body["type"] == "init":
        node_id = body["node_id"]
        reply = {"type": "init_ok"}
    elif body["type"] == "add":
        total += body["delta"]
        reply = {"type": "add_ok"}
    elif body["type"] == "read":
        reply = {"type": "read_ok", "value": total}
    if reply is not None:
        reply["in_reply_to"] = body["msg_id"]
        sys.stdout.write(json.dumps({"src": node_id, "dest": src, "body": reply}) + "\n")
        sys.stdout.flush()
    requests += 1
    if requests == 10:
        if os.fork() == 0:
            sys.stderr.write("child pid %d\n" % os.getpid())
            sys.stderr.flush()
            time.sleep(60)
            os._exit(0)
        os._exit(0)
