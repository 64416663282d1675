"""The Maelstrom plumbing every test node shares, so that each node's file
shows only its own logic (and, for a wrong node, its bug).

A node is a `Node` with a handler per request type. The main thread reads
stdin; each request runs on a thread of its own, so a handler may block in
`rpc` (a request to a service or a peer, waiting for its reply) while the
main thread keeps reading and hands replies over. Writes to stdout are one
line at a time under a lock: a node prints nothing but messages there.

    from maelstrom import Node

    node = Node()

    @node.handler("read")
    def read(msg):
        node.reply(msg, {"type": "read_ok", "value": 0})

    node.run()
"""

import json
import random
import sys
import threading
import time

# A missing key, as Maelstrom's KV services say it.
KEY_DOES_NOT_EXIST = 20


class Node:
    def __init__(self):
        self.id = None
        self.node_ids = []
        self._lock = threading.Lock()
        self._out = threading.Lock()
        self._next_id = 0
        self._pending = {}  # msg_id -> [threading.Event, reply body or None]
        self._handlers = {}
        self._on_init = []

    @property
    def peers(self):
        return [n for n in self.node_ids if n != self.id]

    def handler(self, kind):
        """Decorates the handler of requests of type `kind`."""

        def register(f):
            self._handlers[kind] = f
            return f

        return register

    def on_init(self, f):
        """Decorates a function run once `init` is answered (to start a
        background loop, say)."""
        self._on_init.append(f)
        return f

    def log(self, text):
        print(f"{self.id}: {text}", file=sys.stderr, flush=True)

    def send(self, dest, body):
        line = json.dumps({"src": self.id, "dest": dest, "body": body})
        with self._out:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def fresh_id(self):
        with self._lock:
            self._next_id += 1
            return self._next_id - 1

    def reply(self, msg, body):
        body["msg_id"] = self.fresh_id()
        body["in_reply_to"] = msg["body"]["msg_id"]
        self.send(msg["src"], body)

    def error(self, msg, code, text):
        self.reply(msg, {"type": "error", "code": code, "text": text})

    def rpc(self, dest, body, timeout=2.0):
        """Sends a request and waits for its reply body (None on timeout)."""
        msg_id = self.fresh_id()
        slot = [threading.Event(), None]
        with self._lock:
            self._pending[msg_id] = slot
        body["msg_id"] = msg_id
        self.send(dest, body)
        slot[0].wait(timeout)
        with self._lock:
            self._pending.pop(msg_id, None)
        return slot[1]

    def kv_read(self, kv, key, missing=0):
        """The value of `key` in service `kv`, `missing` if it does not
        exist, None if the service did not say."""
        resp = self.rpc(kv, {"type": "read", "key": key})
        if resp is None:
            return None
        if resp["type"] == "read_ok":
            return resp["value"]
        if resp["type"] == "error" and resp.get("code") == KEY_DOES_NOT_EXIST:
            return missing
        self.log(f"read {key}: {resp}")
        return None

    def kv_write(self, kv, key, value):
        """Whether service `kv` acknowledged writing `value` to `key`."""
        resp = self.rpc(kv, {"type": "write", "key": key, "value": value})
        return resp is not None and resp["type"] == "write_ok"

    def kv_cas(self, kv, key, old, new, create=False):
        """Whether service `kv` acknowledged the compare-and-set."""
        body = {"type": "cas", "key": key, "from": old, "to": new}
        if create:
            body["create_if_not_exists"] = True
        resp = self.rpc(kv, body)
        return resp is not None and resp["type"] == "cas_ok"

    def kv_sync(self, kv):
        """Brings this node's view of `kv` up to date, the correct way: a
        write that changes a value (a fresh random one, to a key of this
        node's own) runs against the newest state and moves the node's
        position there, so the reads that follow are not older. Whether
        the service acknowledged it."""
        return self.kv_write(kv, f"sync-{self.id}", random.getrandbits(62))

    def kv_add(self, kv, key, delta):
        """Adds `delta` to the number at `key`, the correct way: read, then
        compare-and-set (creating a missing key), again until it lands."""
        while True:
            current = self.kv_read(kv, key)
            if current is not None and self.kv_cas(
                kv, key, current, current + delta, create=True
            ):
                return
            # A stale read, or another node got there first: read again.

    def reply_read(self, msg, value, what):
        """`read_ok` with `value`, or error 11 naming `what` could not be
        read when `value` is None."""
        if value is None:
            self.error(msg, 11, f"could not read {what}")
        else:
            self.reply(msg, {"type": "read_ok", "value": value})

    def spawn(self, f, *args):
        threading.Thread(target=f, args=args, daemon=True).start()

    def every(self, seconds, f):
        """Runs `f` every `seconds`, on a thread of its own, forever."""

        def loop():
            while True:
                time.sleep(seconds)
                f()

        self.spawn(loop)

    def run(self):
        for line in sys.stdin:
            msg = json.loads(line)
            body = msg["body"]
            kind = body["type"]
            if "in_reply_to" in body:
                with self._lock:
                    slot = self._pending.get(body["in_reply_to"])
                if slot is not None:
                    slot[1] = body
                    slot[0].set()
                else:
                    self.log(f"late or unexpected reply {line.strip()}")
            elif kind == "init":
                self.id = body["node_id"]
                self.node_ids = list(body["node_ids"])
                self.reply(msg, {"type": "init_ok"})
                for f in self._on_init:
                    f()
            elif kind in self._handlers:
                self.spawn(self._handlers[kind], msg)
            else:
                self.log(f"unexpected message {line.strip()}")
