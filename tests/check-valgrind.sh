#!/bin/sh
#   check-valgrind.sh - run scenario suites under valgrind memcheck
#
#   make check-valgrind runs this from the build tree, after building the
#   suites: the suites named in $VALGRIND_TESTS run through Automake's
#   harness, each under valgrind, children included (--trace-children):
#   the child's side of a tree (its parent watch, its serving, its cancel
#   acknowledgement) is as much troupe's as the root's. Every process
#   that exits checks its leaks; one with an error exits 99, which fails
#   its test (a test process) or its scenario (a child). A process killed
#   by a signal (a scenario's SIGKILL, SIGSEGV) still reports the blocks
#   it held then, which fail nothing; any other memcheck error in any
#   process's report fails the run. Timeouts and timing bounds stretch by
#   CK_TIMEOUT_MULTIPLIER (10 unless set).
#
#   Prints one line per suite as Check printed it, the memcheck errors
#   found, then "tests: N passed, M failed". Exits non-zero on a failure.
set -u
: "${MAKE:=make}"
: "${srcdir:=.}"
: "${VALGRIND:=valgrind}"
if ! command -v "$VALGRIND" >/dev/null 2>&1; then
    echo "check-valgrind: $VALGRIND not found (apt-get install valgrind)" >&2
    echo "tests: 0 passed, 1 failed"
    exit 1
fi
supp="$(cd "$srcdir" && pwd)/tests/valgrind.supp"
#  --fair-sched: valgrind runs one thread at a time, and without it a
#  thread that spins (the burners some scenarios load the cores with)
#  keeps the lock from the loop and libzmq's I/O threads for seconds.
flags="-q --trace-children=yes --leak-check=full --error-exitcode=99 --fair-sched=yes --suppressions=$supp"
CK_TIMEOUT_MULTIPLIER="${CK_TIMEOUT_MULTIPLIER:-10}"
export CK_TIMEOUT_MULTIPLIER
status=0
$MAKE check TESTS="$VALGRIND_TESTS" TEST_SUITE_LOG=tests/valgrind-suite.log \
    LOG_COMPILER="$VALGRIND" LOG_FLAGS="$flags" || status=$?

passed=0
failed=0
for t in $VALGRIND_TESTS; do
    log="$t.log"
    line=$(grep -E '^[0-9]+%: Checks: ' "$log" 2>/dev/null | tail -n 1)
    echo "$(basename "$t") (valgrind): ${line:-no Check summary (see $log)}"
    grep -E ':[FE]:' "$log" 2>/dev/null
    #   Memcheck's errors other than leaks, whichever process made them.
    errors=$(grep -cE '^==[0-9]+== (Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap|Argument .* of function)' "$log" 2>/dev/null)
    if [ "${errors:-0}" -gt 0 ]; then
        echo "$(basename "$t"): $errors memcheck errors (see $log)"
        failed=$((failed + 1))
    fi
    set -- $(echo "$line" | sed -nE 's/.*Checks: ([0-9]+), Failures: ([0-9]+), Errors: ([0-9]+).*/\1 \2 \3/p')
    if [ $# -eq 3 ]; then
        passed=$((passed + $1 - $2 - $3))
        failed=$((failed + $2 + $3))
    else
        failed=$((failed + 1))
    fi
done
[ $status -ne 0 ] && [ -f tests/valgrind-suite.log ] && cat tests/valgrind-suite.log
echo "tests: $passed passed, $failed failed"
[ $status -eq 0 ] && [ $failed -eq 0 ]
