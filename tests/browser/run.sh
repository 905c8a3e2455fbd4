#!/usr/bin/env bash
# Runs tests/browser/demo.test.mjs: the demo site (scripts/demo, shm and
# --redis) in headless Chromium driven by playwright-core. Installs what is
# missing (scripts/deps: Debian's chromium, nodejs/npm; `npm ci` here for the
# pinned playwright-core), prints "N passed, N failed", exits non-zero on any
# failure. Screenshots and the demo's output land in build/browser/.
#   CHROMIUM=/path/to/chromium tests/browser/run.sh   another browser binary
set -uo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$DIR/../.." && pwd)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

die() {
    echo "not ok - $*"
    echo "0 passed, 1 failed"
    exit 1
}

"$TOP/scripts/deps" || die "scripts/deps failed"
command -v node >/dev/null || die "node not found (scripts/deps installs Debian's nodejs)"
command -v npm >/dev/null || die "npm not found (scripts/deps installs Debian's npm)"
[ -x "$CHROMIUM" ] || die "$CHROMIUM not found (scripts/deps installs Debian's chromium)"

# npm ci only when node_modules does not match package-lock.json.
cd "$DIR"
if ! cmp -s <(sed -n '/"node_modules\//,$p' package-lock.json) \
    <(sed -n '/"node_modules\//,$p' node_modules/.package-lock.json 2>/dev/null); then
    npm ci --no-audit --no-fund --loglevel=error >/dev/null || die "npm ci failed in tests/browser"
fi

rm -rf "$TOP/build/browser"
CHROMIUM=$CHROMIUM node "$DIR/demo.test.mjs"
