#!/usr/bin/env bash
#   run.sh - run fuzz targets for a bounded time each (make fuzz-run)
#
#   run.sh TARGET...    each built target (tests/fuzz/fuzz_NAME) runs for
#                       $FUZZ_SECONDS (60) from a scratch copy of its seeds
#                       in $srcdir/tests/fuzz/NAME/. A crash, a leak, a
#                       timeout (-timeout) or memory past -rss_limit_mb
#                       fails it; what made it fail is kept in
#                       $FUZZ_ARTIFACTS (default: a directory under /tmp)
#                       and named on the output.
#   Prints, per target, "NAME: ..." and "tests: 1 passed, 0 failed" (or
#   "0 passed, 1 failed"); exits non-zero if any failed.
set -uo pipefail
seconds="${FUZZ_SECONDS:-60}"
srcdir="${srcdir:-.}"
artifacts="${FUZZ_ARTIFACTS:-$(mktemp -d "${TMPDIR:-/tmp}/troupe-fuzz.XXXXXX")}"
mkdir -p "$artifacts"
#   Leaks fail a run (LeakSanitizer, at every input that allocated more than
#   it freed and at exit); UBSan's findings are crashes.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
status=0
for target in "$@"; do
    name=$(basename "$target")
    seeds="$srcdir/tests/fuzz/${name#fuzz_}"
    corpus="$artifacts/$name-corpus"
    mkdir -p "$corpus"
    log="$artifacts/$name.log"
    #   New inputs go to the scratch corpus, never into the tree.
    "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=4096 -print_final_stats=1 -artifact_prefix="$artifacts/$name-" \
        "$corpus" "$seeds" > "$log" 2>&1
    rc=$?
    runs=$(grep -E '^stat::number_of_executed_units:' "$log" | awk '{print $2}')
    cov=$(grep -E '^#[0-9]+.*DONE' "$log" | sed -E 's/.*cov: ([0-9]+).*/\1/' | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        echo "$name: ${runs:-?} inputs in ${seconds} s, coverage ${cov:-?}, no crash, leak or timeout"
        grep -E "^$name: " "$log" || true
        echo "tests: 1 passed, 0 failed"
    else
        status=1
        echo "$name: FAILED (exit $rc) after ${runs:-?} inputs; log $log"
        grep -E -A 30 '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|fuzz_[a-z]+: )' "$log" | head -n 60
        for a in "$artifacts/$name-"*; do
            [ -f "$a" ] && echo "$name: reproduce with: $target $a"
        done
        echo "tests: 0 passed, 1 failed"
    fi
done
exit $status
