#!/usr/bin/env python3
"""Bug class: duplicate and unsolicited replies.

A single-node counter that answers correctly but too often: its first
five client requests are each answered twice, and after the seventh it
sends one reply to a msg_id its client never used. The verdict stays valid
(clients ignore what they do not wait for); `gcounter test` must count and
show both as warnings."""

import threading

from maelstrom import GCounterState, Node

node = Node()
counter = GCounterState(node)
lock = threading.Lock()
requests = 0


def answer(msg, body):
    """Replies `body` to `msg`: twice for the first five requests, and
    after the seventh also once to a msg_id no client used."""
    global requests
    with lock:
        requests += 1
        n = requests
    for _ in range(2 if n <= 5 else 1):
        node.reply(msg, dict(body))
    if n == 7:
        stray = {"type": "read_ok", "value": counter.total(), "in_reply_to": 1_000_000}
        node.send(msg["src"], dict(stray, msg_id=node.fresh_id()))


@node.handler("add")
def add(msg):
    counter.add(msg["body"]["delta"])
    answer(msg, {"type": "add_ok"})


@node.handler("read")
def read(msg):
    answer(msg, {"type": "read_ok", "value": counter.total()})


if __name__ == "__main__":
    node.run()
