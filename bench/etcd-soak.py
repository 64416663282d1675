# The etcd soak of issue 24, item 7 (BENCHMARKS.md, "etcd over a long run"):
# a steady stream of adds to every node of a running `gcounter cluster --kv
# etcd` for a while, then the sum acknowledged and what each node reads.
# Usage: etcd-soak.py ADDR[,ADDR...] SECONDS RATE
import json, socket, sys, threading, time

addrs = sys.argv[1].split(",")
seconds = float(sys.argv[2])
rate = float(sys.argv[3])  # adds a second over the whole cluster
acked = [0] * len(addrs)
errors = [0] * len(addrs)


def call(f, s, body):
    s.sendall((json.dumps({"src": "c-soak", "dest": "n", "body": body}) + "\n").encode())
    line = f.readline()
    if not line:
        raise OSError("closed by the node")
    return json.loads(line)["body"]


def client(i):
    host, port = addrs[i].rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.settimeout(10)
    f = s.makefile("rb")
    gap = len(addrs) / rate
    start = time.time()
    m = 0
    while time.time() - start < seconds:
        m += 1
        try:
            b = call(f, s, {"type": "add", "msg_id": m, "delta": 1})
        except OSError:
            s = socket.create_connection((host, int(port)))
            s.settimeout(10)
            f = s.makefile("rb")
            errors[i] += 1
            continue
        if b["type"] == "add_ok":
            acked[i] += 1
        else:
            errors[i] += 1
        time.sleep(max(0.0, start + m * gap - time.time()))


ts = [threading.Thread(target=client, args=(i,)) for i in range(len(addrs))]
[t.start() for t in ts]
[t.join() for t in ts]
time.sleep(3)
reads = []
for a in addrs:
    host, port = a.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.settimeout(10)
    reads.append(call(s.makefile("rb"), s, {"type": "read", "msg_id": 1}).get("value"))
print(f"acknowledged {sum(acked)}, errors {sum(errors)}, final reads {reads}")
