#!/usr/bin/env bash
# stdio throughput of one gcounter node (a single-node cluster), per strategy,
# next to the ceiling: a bare serde_json parse-and-reply loop on the same input.
#
#   bench/stdio-throughput.sh [REQUESTS] [RUNS]     (defaults: 1000000 5)
#
# Builds the release binary and the `json_ceiling` example, writes the input
# once (an `init` for a cluster of one, then REQUESTS lines alternating `add`
# with delta 0..=4 and `read`, from 4 clients, msg_ids increasing) under the
# target directory, runs each node RUNS times with stdin from that file and
# stdout to /dev/null, and prints a Markdown table: the median wall time,
# requests per second at that median, the share of the ceiling, the median
# CPU time (user + system: steadier than wall time on a busy machine) and
# the largest peak RSS of the runs. "RSS at REQUESTS/10" is one more run on the
# first tenth of the input: equal figures mean memory stays flat.
#
# Needs bash, awk, GNU time (`apt-get install -y time`) and cargo. Honours
# CARGO_TARGET_DIR; GCOUNTER=path/to/gcounter times that binary instead of
# building this tree's (to compare two builds). Only requests are counted,
# not the `init` line.
set -euo pipefail

requests=${1:-1000000}
runs=${2:-5}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
timer=/usr/bin/time

if [[ ! -x $timer ]] || ! $timer -f %M -o /dev/null true 2>/dev/null; then
    echo "error: GNU time is needed at $timer for peak memory (apt-get install -y time)" >&2
    exit 1
fi

echo "building..." >&2
if [[ -z ${GCOUNTER:-} ]]; then
    (cd "$root" && cargo build --release --quiet -p gcounter --bin gcounter)
fi
(cd "$root" && cargo build --release --quiet -p gcounter-core --example json_ceiling)
gcounter=${GCOUNTER:-$target/release/gcounter}
ceiling=$target/release/examples/json_ceiling

dir=$target/bench
mkdir -p "$dir"

# One `init`, then `n` requests. Written once per size and reused.
make_input() {
    local n=$1 file=$dir/requests-$1.jsonl
    if [[ ! -s $file ]]; then
        echo "writing $file..." >&2
        awk -v n="$n" 'BEGIN {
            print "{\"src\":\"c0\",\"dest\":\"n1\",\"body\":{\"type\":\"init\",\"msg_id\":1,\"node_id\":\"n1\",\"node_ids\":[\"n1\"]}}"
            for (i = 0; i < n; i++) {
                c = "c" (i % 4 + 1); id = i + 2
                if (i % 2 == 0)
                    printf "{\"src\":\"%s\",\"dest\":\"n1\",\"body\":{\"type\":\"add\",\"msg_id\":%d,\"delta\":%d}}\n", c, id, (i / 2) % 5
                else
                    printf "{\"src\":\"%s\",\"dest\":\"n1\",\"body\":{\"type\":\"read\",\"msg_id\":%d}}\n", c, id
            }
        }' > "$file.tmp"
        mv "$file.tmp" "$file"
    fi
    echo "$file"
}
input=$(make_input "$requests")
small=$(make_input $((requests / 10)))

# run_once STRATEGY FILE: prints "<wall seconds> <CPU seconds> <peak RSS in KiB>".
run_once() {
    local strategy=$1 file=$2 prog=$gcounter usage=$dir/usage start end
    [[ $strategy == ceiling ]] && prog=$ceiling
    start=$(date +%s%N)
    GCOUNTER_STRATEGY=$strategy $timer -f "%U %S %M" -o "$usage" "$prog" < "$file" > /dev/null
    end=$(date +%s%N)
    echo "$(( (end - start) / 1000 )) $(tail -n 1 "$usage")" |
        awk '{ printf "%.6f %.2f %d\n", $1 / 1e6, $2 + $3, $4 }'
}

median() {
    sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

# Every request must be answered: one line out per line in.
check() {
    local strategy=$1 prog=$gcounter lines
    [[ $strategy == ceiling ]] && prog=$ceiling
    lines=$(GCOUNTER_STRATEGY=$strategy "$prog" < "$input" | wc -l)
    if [[ $lines -ne $((requests + 1)) ]]; then
        echo "error: $strategy answered $lines lines of $((requests + 1))" >&2
        exit 1
    fi
}

echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
declare -A median cpu rss small_rss
for strategy in ceiling gossip per-node cas naive; do
    check "$strategy"
    times=() cpus=() peak=0
    for ((r = 0; r < runs; r++)); do
        read -r secs cpu_secs kib < <(run_once "$strategy" "$input")
        times+=("$secs")
        cpus+=("$cpu_secs")
        ((kib > peak)) && peak=$kib
        echo "$strategy run $((r + 1)): ${secs} s wall, ${cpu_secs} s CPU, ${kib} KiB" >&2
    done
    median[$strategy]=$(printf '%s\n' "${times[@]}" | median)
    cpu[$strategy]=$(printf '%s\n' "${cpus[@]}" | median)
    rss[$strategy]=$peak
    read -r _ _ small_rss[$strategy] < <(run_once "$strategy" "$small")
done
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

echo
echo "| node | median wall of $runs (s) | requests/s | share of ceiling | median CPU (s) | peak RSS | RSS at $((requests / 10)) requests |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for strategy in ceiling gossip per-node cas naive; do
    name="gcounter, $strategy"
    [[ $strategy == ceiling ]] && name="ceiling (json_ceiling example)"
    awk -v name="$name" -v n="$requests" -v t="${median[$strategy]}" -v c="${median[ceiling]}" \
        -v m="${rss[$strategy]}" -v s="${small_rss[$strategy]}" -v u="${cpu[$strategy]}" '
    function commas(x,  s) {
        s = sprintf("%d", x)
        while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
        return s
    }
    BEGIN {
        printf "| %s | %.3f | %s | %.0f%% | %.2f | %.1f MiB | %.1f MiB |\n", name, t, commas(n / t), 100 * c / t, u, m / 1024, s / 1024
    }'
done
