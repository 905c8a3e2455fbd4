# lib.sh - helpers for the package tests (sourced): ok/not_ok and the
# "N passed, N failed" line like tests/e2e/lib.sh, and the release tarball.
set -u
PKG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$PKG_DIR/../.." && pwd)
BUILD=${BUILD_ROOT:-$TOP/build}
PASSED=0
FAILED=0

ok() {
    PASSED=$((PASSED + 1))
    echo "ok - $*"
}
not_ok() {
    FAILED=$((FAILED + 1))
    echo "not ok - $*"
}
check() { # check "description" command...
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
summary() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

# make_dist: builds the release tarball ("make dist" in build/normal, the
# tree scripts/build configured) and prints its path.
make_dist() {
    "$TOP/scripts/build" normal >&2 || return 1
    rm -f "$BUILD"/normal/mod_sessstore-*.tar.gz
    make -C "$BUILD/normal" dist >"$BUILD/dist.log" 2>&1 || { tail -20 "$BUILD/dist.log" >&2; return 1; }
    ls "$BUILD"/normal/mod_sessstore-*.tar.gz
}
