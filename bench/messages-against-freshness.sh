#!/bin/bash
# Issue 21 item 8: server messages per operation against read lag, for
# `gossip` at several hold settings next to the whole-state baseline node
# (tests/nodes/whole_state_every_interval.py) at the same intervals, and
# `per-node` and `cas` at their defaults. Prints each run's figures, then
# the table and the ASCII plot of BENCHMARKS.md ("Messages against
# freshness") through bench/freshness-plot.py.
#   bench/messages-against-freshness.sh [path/to/gcounter] > out.txt
set -u
G=${1:-./target/debug/gcounter}
common="--node-count 3 --rate 100 --time-limit 20 --recovery 15 --seed 3 --store ${STORE:-/tmp/freshness-store}"
out=$(mktemp)
for x in 0 100 300 1000 5000; do
  echo "== gossip $x" >> "$out"
  $G test --strategy gossip $common --gossip-interval $x 2>&1 | grep -E "verdict|msgs-per-op|read lag" >> "$out"
  echo "== baseline $x" >> "$out"
  $G test $common --gossip-interval $x --bin python3 tests/nodes/whole_state_every_interval.py 2>&1 | grep -E "verdict|msgs-per-op|read lag" >> "$out"
done
for s in per-node cas; do
  echo "== $s default" >> "$out"
  $G test --strategy $s $common 2>&1 | grep -E "verdict|msgs-per-op|read lag" >> "$out"
done
cat "$out"
python3 "$(dirname "$0")/freshness-plot.py" < "$out"
