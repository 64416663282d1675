# Measures issue 11 item 6: run against a `gcounter cluster`; see RELIABILITY.md.
# 50 connections x 4,000 pipelined adds to n0..n2 of a running cluster; each
# reads its replies as they come. Prints acks, errors, connections cut.
import socket, sys, threading, json, time
addrs = sys.argv[1].split(","); conns = int(sys.argv[2]); per = int(sys.argv[3])
res = []
def one(i):
    host, port = addrs[i % len(addrs)].rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    def send():
        buf = []
        for m in range(1, per + 1):
            buf.append('{"src":"p%d","dest":"n","body":{"type":"add","msg_id":%d,"delta":1}}\n' % (i, m))
            if m % 500 == 0:
                try: s.sendall("".join(buf).encode())
                except OSError: return
                buf = []
    t = threading.Thread(target=send); t.start()
    f = s.makefile("rb"); ok = err = 0; cut = False
    s.settimeout(60)
    while ok + err < per:
        try: line = f.readline()
        except OSError: cut = True; break
        if not line: cut = True; break
        b = json.loads(line)["body"]
        if b["type"] == "add_ok": ok += 1
        else: err += 1
    t.join(); res.append((ok, err, cut))
t0 = time.time()
ts = [threading.Thread(target=one, args=(i,)) for i in range(conns)]
[t.start() for t in ts]; [t.join() for t in ts]
print("conns %d x %d adds: acked %d, errors %d, cut %d, %.1fs" % (conns, per, sum(r[0] for r in res), sum(r[1] for r in res), sum(r[2] for r in res), time.time() - t0))
