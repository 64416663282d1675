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

    def kv_synced(self, msg, kv):
        """`kv_sync`, answering `msg` with error 11 when the service did
        not acknowledge it: whether the node may go on to read."""
        if self.kv_sync(kv):
            return True
        self.error(msg, 11, "could not sync")
        return False

    def kv_sum_counters(self, kv):
        """The sum of every node's `counter_key` in `kv` (a missing key
        counts as 0), the keys read all at once, each on a thread of its
        own; None if one of them could not be read."""
        keys = [counter_key(n) for n in self.node_ids]
        values = [None] * len(keys)

        def read_one(i):
            values[i] = self.kv_read(kv, keys[i])

        readers = [threading.Thread(target=read_one, args=(i,)) for i in range(len(keys))]
        for t in readers:
            t.start()
        for t in readers:
            t.join()
        return None if None in values else sum(values)

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

    def serve_kv_add(self, msg, kv, key):
        """Answers `msg`, an add, the correct way: `kv_add`, then
        `add_ok`."""
        self.kv_add(kv, key, msg["body"]["delta"])
        self.reply(msg, {"type": "add_ok"})

    def serve_kv_read(self, msg, kv, key):
        """Answers `msg`, a read, the correct way: `kv_synced`, then the
        value of `key`."""
        if self.kv_synced(msg, kv):
            self.reply_read(msg, self.kv_read(kv, key), key)

    def reply_read(self, msg, value, what):
        """`read_ok` with `value`, or error 11 naming `what` could not be
        read when `value` is None."""
        if value is None:
            self.error(msg, 11, f"could not read {what}")
        else:
            self.reply(msg, {"type": "read_ok", "value": value})

    def spawn(self, f, *args):
        threading.Thread(target=f, args=args, daemon=True).start()

    def every(self, seconds, f=None):
        """Runs `f` every `seconds`, on a thread of its own, forever, from
        `init` on (before it the node has no id and knows no peer).
        Without `f`, decorates the function to run."""
        if f is None:

            def decorate(f):
                self.every(seconds, f)
                return f

            return decorate

        def loop():
            while True:
                time.sleep(seconds)
                f()

        if self.id is None:
            self.on_init(lambda: self.spawn(loop))
        else:
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


def counter_key(n):
    """The key of node `n`'s own count, for the nodes that keep one key per
    node in a KV service."""
    return f"counter-{n}"


class GCounterState:
    """A G-Counter CRDT's state on one node: a count per node, this node's
    own grown by `add`, the others' merged by maximum from `py_gossip`
    messages (a count only grows, so the order they arrive in does not
    matter). It answers `py_gossip` itself; a node registers `handle_add`
    and `handle_read`, or its own handlers where it differs.

        counter = GCounterState(node)
        node.handler("add")(counter.handle_add)
        node.handler("read")(counter.handle_read)
        node.every(0.2, counter.gossip)
    """

    def __init__(self, node):
        self.node = node
        self.lock = threading.Lock()
        self.counts = {}
        node.handler("py_gossip")(self.merge)

    def add(self, delta):
        with self.lock:
            self.counts[self.node.id] = self.counts.get(self.node.id, 0) + delta

    def total(self):
        with self.lock:
            return sum(self.counts.values())

    def own(self):
        """This node's own count: the adds it took."""
        with self.lock:
            return self.counts.get(self.node.id, 0)

    def gossip(self):
        """Sends the whole map to every peer."""
        with self.lock:
            state = dict(self.counts)
        for peer in self.node.peers:
            self.node.send(peer, {"type": "py_gossip", "counts": state})

    def merge(self, msg):
        with self.lock:
            for n, c in msg["body"]["counts"].items():
                self.counts[n] = max(self.counts.get(n, 0), c)

    def handle_add(self, msg):
        """Counts the add, then acknowledges it."""
        self.add(msg["body"]["delta"])
        self.node.reply(msg, {"type": "add_ok"})

    def handle_read(self, msg):
        self.node.reply(msg, {"type": "read_ok", "value": self.total()})
