#!/bin/bash
# Measures issue 14's "runner's reach": how fast `gcounter test` drives real
# node processes (gossip nodes, which answer from memory) when asked for far
# more than it can give. Binaries are run in turn for each setting, so that
# they share the machine's load; see BENCHMARKS.md.
#
#   bench/runner-reach.sh OUT REPEATS LABEL=BINARY [LABEL=BINARY ...]
#
# Appends one line per run to OUT: label, nodes, clients, operations ok,
# ops/s reached, verdict, wall s, peak RSS KB, user s, sys s (the runner
# and its nodes), load average. Runs in a temporary directory.
set -u
out=$(realpath -m "$1"); reps=$2; shift 2
dir=$(mktemp -d); cd "$dir" || exit 1
for rep in $(seq 1 "$reps"); do
  for nc in 3:3 3:30 3:100 10:10 10:100 25:25 25:100; do
    n=${nc%:*}; c=${nc#*:}
    for lb in "$@"; do
      label=${lb%%=*}; bin=${lb#*=}
      load=$(cut -d' ' -f1 /proc/loadavg)
      res=$(/usr/bin/time -f "TIME %e %M %U %S" "$bin" test --node-count "$n" \
        --concurrency "$c" --rate 100000 --time-limit 5 --recovery 1 2>&1)
      ok=$(grep -o "operations ok [0-9]*" <<<"$res" | awk '{print $3}')
      reached=$(grep -o "reached [0-9]* operations" <<<"$res" | awk '{print $2}')
      verdict=$(grep -o "^verdict: [a-z]*" <<<"$res" | awk '{print $2}')
      t=$(grep "^TIME" <<<"$res" | awk '{print $2, $3, $4, $5}')
      echo "$label $n $c $ok $reached $verdict $t load=$load" | tee -a "$out"
    done
  done
done
rm -rf "$dir"
