#!/bin/bash
# run-all.sh - runs every tests/e2e/test_*.sh (or the ones named as
# arguments), one after the other, and sums their "N passed, N failed" lines.
# Prints each script's output, its runtime, and a final "N passed, N failed";
# exits non-zero when anything failed, including a script that ended without
# its summary line or with a non-zero status.
set -u

DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -gt 0 ]; then
    SCRIPTS=("$@")
else
    SCRIPTS=("$DIR"/test_*.sh)
fi

total_pass=0
total_fail=0
summary=()
suite_start=$(date +%s.%N)

for script in "${SCRIPTS[@]}"; do
    [ -f "$script" ] || script=$DIR/$script
    name=$(basename "$script")
    echo "=== $name"
    out=$(mktemp)
    start=$(date +%s.%N)
    bash "$script" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
    rm -f "$out"
    if [ -z "$line" ]; then
        pass=0
        fail=1
        echo "not ok - $name ended without a summary line (status $rc)"
    else
        pass=${line%% passed*}
        fail=${line#*, }
        fail=${fail%% failed}
        if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
            fail=1
            echo "not ok - $name exited with status $rc"
        fi
    fi
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
    summary+=("$(printf '%-20s %4d passed %3d failed %6s s' "$name" "$pass" "$fail" "$secs")")
done

secs=$(awk -v a="$suite_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "=== summary"
printf '%s\n' "${summary[@]}"
echo "total time: $secs s"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
