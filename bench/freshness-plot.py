#!/usr/bin/env python3
"""Reads the runs bench/messages-against-freshness.sh prints (blocks of
`== NAME SETTING` then `gcounter test`'s verdict, msgs-per-op and read lag
lines) and prints the markdown table and an ASCII plot of server messages
per operation (across) against read lag p99 in ms (up, log scale)."""

import math
import re
import sys

runs = []
for line in sys.stdin:
    if line.startswith("== "):
        name, setting = line[3:].split()
        runs.append({"name": name, "setting": setting})
    elif "verdict:" in line:
        runs[-1]["verdict"] = line.split(":", 1)[1].strip()
    elif "msgs-per-op" in line:
        runs[-1]["msgs"] = float(re.search(r"servers ([\d.]+)", line).group(1))
    elif "read lag" in line:
        inc = re.search(r"p50 (\d+) / p99 (\d+) / max (\d+) incr", line).groups()
        ms = re.search(r"p50 ([\d.]+) / p99 ([\d.]+) / max ([\d.]+) ms", line).groups()
        runs[-1]["inc"], runs[-1]["ms"] = inc, ms

print("| node | interval (ms) | verdict | server msgs-per-op | read lag p50 / p99 / max (increments) | oldest missing p50 / p99 / max (ms) |")
print("|---|---|---|---|---|---|")
for r in runs:
    print(f"| {r['name']} | {r['setting']} | {r.get('verdict', '?')} | {r.get('msgs', float('nan')):.3f} "
          f"| {' / '.join(r.get('inc', ('?',) * 3))} | {' / '.join(r.get('ms', ('?',) * 3))} |")

# The plot: o ours, b the baseline, p per-node, c cas; the digit after a
# mark is the interval's index (0 eager, 1 100 ms, 2 300 ms, 3 1 s, 4 5 s).
W, H = 60, 14
pts = [r for r in runs if "msgs" in r and "ms" in r]
xmax = max(r["msgs"] for r in pts) * 1.05
ys = [max(float(r["ms"][1]), 1.0) for r in pts]
ytop = math.log10(max(ys)) + 0.1
grid = [[" "] * W for _ in range(H)]
order = ["0", "100", "300", "1000", "5000"]
for r, y in zip(pts, ys):
    col = min(W - 2, int(r["msgs"] / xmax * (W - 2)))
    row = H - 1 - min(H - 1, int(math.log10(y) / ytop * (H - 1)))
    mark = {"gossip": "o", "baseline": "b", "per-node": "p", "cas": "c"}[r["name"]]
    tag = str(order.index(r["setting"])) if r["setting"] in order else ""
    text = mark + tag
    # Marks that would overlap move right, so none hides another.
    while col + len(text) < W and any(c != " " for c in grid[row][col : col + len(text) + 1]):
        col += 1
    for i, ch in enumerate(text):
        if col + i < W:
            grid[row][col + i] = ch
print()
print("```text")
print("read lag p99 (ms, log)")
for i, row in enumerate(grid):
    label = 10 ** ((H - 1 - i) / (H - 1) * ytop)
    print(f"{label:7.0f} |" + "".join(row))
print("        +" + "-" * W)
print(f"         0{'server msgs-per-op':^{W - 12}}{xmax:.2f}")
print("o ours (gossip), b whole-state baseline, p per-node, c cas;")
print("digit: interval 0 eager, 1 100 ms, 2 300 ms, 3 1 s, 4 5 s")
print("```")
