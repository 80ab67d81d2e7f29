#!/usr/bin/env bash
#   build.sh - build troupe from a clean clone and run something with it
#
#   ./build.sh showcase [ARGS]   install what is missing, build, run the showcase
#   ./build.sh check             install what is missing, build, run the tests
#   ./build.sh bench             install what is missing, build, run the benchmarks
#   ./build.sh check-valgrind    the same with valgrind, and run scenario suites
#                                under it (make check-valgrind)
#
#   Debian 12 packages are installed with apt-get when missing (as root, or
#   through sudo). Set CONFIGURE_FLAGS (e.g. --enable-asan) to configure
#   differently; a tree configured with other flags is reconfigured.
set -euo pipefail
cd "$(dirname "$0")"

what="${1:-showcase}"
[ $# -gt 0 ] && shift

packages=(gcc libc6-dev make autoconf automake libtool pkg-config
          libzmq3-dev libczmq-dev libmsgpack-dev libjansson-dev check)
# Only this command needs valgrind; the others do not wait for it.
[ "$what" = check-valgrind ] && packages+=(valgrind)
# The suites that cut links and drop traffic between network namespaces
# they make (as root) need ip and nft; without them those parts skip.
[ "$what" = check ] && packages+=(iproute2 nftables)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "build.sh: installing ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >&2
fi

flags="${CONFIGURE_FLAGS:-}"
if [ ! -f configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
    autoreconf -fi >&2
fi
# A tree configured before valgrind was installed does not register the
# task stacks with it: configure again.
stale=""
if [ "$what" = check-valgrind ] && [ -f config.h ] \
   && ! grep -q '^#define HAVE_VALGRIND_VALGRIND_H 1' config.h; then
    stale=1
fi
if [ ! -f Makefile ] || [ "$(cat .configure-flags 2>/dev/null)" != "$flags" ] \
   || [ configure -nt Makefile ] || [ -n "$stale" ]; then
    # Objects built with other flags would be linked as they are.
    if [ -f Makefile ]; then make -s clean >&2; fi
    # shellcheck disable=SC2086
    ./configure -q $flags >&2
    echo "$flags" > .configure-flags
fi
jobs="$(nproc 2>/dev/null || echo 2)"
make -s -j"$jobs" >&2

case "$what" in
    showcase)
        exec ./examples/showcase "$@"
        ;;
    check)
        status=0
        make -s -j"$jobs" check "$@" || status=$?
        # One line per suite as Check printed it, then the totals.
        passed=0 failed=0
        for log in tests/test_*.log; do
            [ -f "$log" ] || continue
            line=$(grep -E '^[0-9]+%: Checks: ' "$log" | tail -n 1 || true)
            # A suite this machine cannot run says why, and runs no tests.
            skip=$(grep -m 1 -E '^test_[A-Za-z0-9_]+: skipped: ' "$log" | sed 's/^[^:]*: //' || true)
            echo "$(basename "$log" .log): ${line:-no Check summary (see $log)}${skip:+ ($skip)}"
            if [[ "$line" =~ Checks:\ ([0-9]+),\ Failures:\ ([0-9]+),\ Errors:\ ([0-9]+) ]]; then
                f=$(( BASH_REMATCH[2] + BASH_REMATCH[3] ))
                passed=$(( passed + BASH_REMATCH[1] - f ))
                failed=$(( failed + f ))
            else
                failed=$(( failed + 1 ))
            fi
        done
        [ $status -ne 0 ] && [ -f test-suite.log ] && cat test-suite.log
        echo "tests: $passed passed, $failed failed"
        [ $status -eq 0 ] && [ $failed -eq 0 ]
        ;;
    bench)
        make -s bench
        ;;
    check-valgrind)
        # One line per suite, the memcheck errors, then the totals.
        make -s -j"$jobs" check-valgrind "$@"
        ;;
    *)
        echo "usage: ./build.sh showcase [ARGS] | check | bench | check-valgrind" >&2
        exit 2
        ;;
esac
