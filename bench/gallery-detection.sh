#!/usr/bin/env bash
# Single-run detection rate of every wrong node in tests/nodes/ (issue 19,
# item 6): each node runs once per seed, under Maelstrom's random choices
# ("random") and under each adversary named in MODES; a run detects the bug
# when `gcounter test` exits 1 (invalid). Prints a Markdown table.
#
#   bench/gallery-detection.sh                       # random choices only
#   MODES="random stale slow-kv reorder" bench/gallery-detection.sh
#
# Settings (environment): SEEDS (20: seeds 1..SEEDS), JOBS (3 test processes
# at once), SETTINGS (the flags of every run but --nemesis, --seed and
# --adversary), NODES (a subset of the gallery by file name), GCOUNTER (the
# binary), OUT (where the runs' stores and logs go; a temporary directory).
# A run whose exit status is already in OUT is not run again, so a sweep
# can be resumed, or done in parts and tabled at the end with the same OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

GCOUNTER=${GCOUNTER:-target/release/gcounter}
SEEDS=${SEEDS:-20}
JOBS=${JOBS:-3}
SETTINGS=${SETTINGS:---node-count 3 --rate 100 --time-limit 10 --recovery 5}
MODES=${MODES:-random}
OUT=${OUT:-$(mktemp -d -t gallery-detection.XXXXXX)}

# file | bug class | nemesis the class needs
GALLERY="per_node_no_sync|per-node keys summed without a sync write|partition
cas_unsynced_read|a cas counter whose read is a plain seq-kv read|partition
cas_noop_sync|a cas counter that syncs with a cas from v to v|partition
cas_zero_on_ok|a buffered cas that zeroes its buffer on cas_ok|partition
blind_write_zero|a blind write 0 when the key is missing|partition
gossip_last_count|a gossip that keeps the last count received, not the max|partition
ack_before_store|an add_ok sent before the add is stored|partition
memory_only_gossip|a count kept only in memory, under kill|kill"
NODES=${NODES:-$(cut -d'|' -f1 <<<"$GALLERY" | tr '\n' ' ')}

[ -x "$GCOUNTER" ] || { echo "no $GCOUNTER: run cargo build --release" >&2; exit 64; }

# One run: node, nemesis, mode, seed. Leaves its exit status in OUT.
one() {
    local node=$1 nemesis=$2 mode=$3 seed=$4 dir adversary=()
    dir="$OUT/$node/$mode/$seed"
    [ -f "$dir/exit" ] && return 0
    mkdir -p "$dir"
    [ "$mode" = random ] || adversary=(--adversary "$mode")
    # shellcheck disable=SC2086
    "$GCOUNTER" test $SETTINGS --nemesis "$nemesis" --seed "$seed" "${adversary[@]}" \
        --store "$dir/store" --bin python3 "tests/nodes/$node.py" >"$dir/out" 2>"$dir/err" \
        && echo 0 >"$dir/exit" || echo $? >"$dir/exit"
}
export -f one
export GCOUNTER SETTINGS OUT

for node in $NODES; do
    nemesis=$(grep "^$node|" <<<"$GALLERY" | cut -d'|' -f3)
    for mode in $MODES; do
        for seed in $(seq 1 "$SEEDS"); do
            echo "$node $nemesis $mode $seed"
        done
    done
done | xargs -P "$JOBS" -L 1 bash -c 'one "$@"' _

echo "settings: $SETTINGS; seeds 1..$SEEDS; runs in $OUT"
echo
header="| node | bug class | nemesis |" rule="|---|---|---|"
for mode in $MODES; do header="$header $mode |" rule="$rule---|"; done
echo "$header"
echo "$rule"
others=""
for node in $NODES; do
    class=$(grep "^$node|" <<<"$GALLERY" | cut -d'|' -f2)
    nemesis=$(grep "^$node|" <<<"$GALLERY" | cut -d'|' -f3)
    row="| \`$node.py\` | $class | $nemesis |"
    for mode in $MODES; do
        invalid=0
        for seed in $(seq 1 "$SEEDS"); do
            code=$(cat "$OUT/$node/$mode/$seed/exit")
            case $code in
                1) invalid=$((invalid + 1)) ;;
                0) ;;
                *) others="$others $node $mode seed $seed: exit $code;" ;;
            esac
        done
        row="$row $invalid / $SEEDS |"
    done
    echo "$row"
done
echo
echo "(invalid runs of $SEEDS; runs that ended neither valid nor invalid:${others:- none})"
