#!/bin/sh
#  hops.sh BENCH_RPC HOPS_SO: bench_rpc's round trip hop by hop, troupe's
#  and the raw reference's, each followed for HOPS_WINDOW_MS (300) ms of
#  a run of its own (bench/hops.c, bench/hops.py). RUNS (3) pairs of runs,
#  alternating.
set -e
rpc=$1
so=$2
here=$(dirname "$0")
runs=${RUNS:-3}
dir=$(mktemp -d /tmp/troupe-hops-XXXXXX)
trap 'rm -rf "$dir"' EXIT
i=0
while [ $i -lt "$runs" ]; do
    for side in troupe raw; do
        rm -f "$dir"/ev.*
        #  The window opens 4 s in, past the start and the warm-up.
        t0=$(python3 -c 'import time; print(int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e9) + 4000000000)')
        HOPS_T0=$t0 HOPS_DIR=$dir LD_PRELOAD=$so BENCH_ONLY=$side BENCH_ROUNDS=1 \
            BENCH_N=${BENCH_N:-150000} "$rpc" ipc > /dev/null 2>&1
        echo "== $side, run $((i + 1))"
        python3 "$here/hops.py" "$dir"
    done
    i=$((i + 1))
done
