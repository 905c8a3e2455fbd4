#!/bin/bash
# test_eviction.sh - a full 64K arena evicts the least recently used
# sessions: 300 logins, the latest keep working, the earliest are gone, one
# early session used regularly survives, and nothing breaks.
source "$(dirname "$0")/lib.sh"

P=$(free_port)
# The default SessionStoreMaxSessionSize (16K) does not fit a 64K arena.
httpd_conf ev "$P" prefork "SessionStoreShmSize 64K" "SessionStoreMaxSessionSize 4096" \
    "<Location /status>" "SetHandler sessstore-status" "</Location>"
# A long user name makes each session a few arena blocks (it is stored in the
# record and in mod_auth_form's session data), so 300 do not fit.
LONGUSER=user$(printf 'x%.0s' $(seq 120))
htpasswd -bB -C 4 "$WORK/ev/htpasswd" "$LONGUSER" pw 2>/dev/null
httpd_start ev "$P"
U=http://127.0.0.1:$P
N=300

# One early session, used every 25 logins: least recently used it is not.
expect_eq "the regular user logs in first" 302 "$(login vip "$U" alice secret)"
VIP=$(jar_sid vip)

# 300 logins by distinct clients (no cookie sent), in one curl process.
args=()
for i in $(seq "$N"); do
    [ "$i" -gt 1 ] && args+=(--next)
    args+=(-s -o /dev/null -w '%{http_code} %header{set-cookie}\n'
        -d "httpd_username=$LONGUSER" -d httpd_password=pw "$U/dologin")
    if [ $((i % 25)) = 0 ]; then
        args+=(--next -s -o /dev/null -w 'vip %{http_code}\n' -H "Cookie: sid=$VIP" "$U/private/")
    fi
done
curl --max-time 120 "${args[@]}" >"$WORK/login.codes"
expect_eq "$N logins answered 302" "$N" "$(grep -c '^302 ' "$WORK/login.codes")"
expect_eq "the regular user got 200 every time" $((N / 25)) "$(grep -cx 'vip 200' "$WORK/login.codes")"
sed -n 's/^302 sid=\([^;]*\);.*/\1/p' "$WORK/login.codes" >"$WORK/ids"
expect_eq "$N IDs were issued" "$N" "$(wc -l <"$WORK/ids")"
expect_eq "... all distinct" "$N" "$(sort -u "$WORK/ids" | wc -l)"
expect_eq "the server keeps answering" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/public/")"

# Which sessions are alive, in login order (a GET does not save, so checking
# does not evict anything).
args=()
first=1
while read -r id; do
    [ -n "$first" ] || args+=(--next)
    first=
    args+=(-s -o /dev/null -w '%{http_code}\n' -H "Cookie: sid=$id" "$U/private/")
done <"$WORK/ids"
curl --max-time 120 "${args[@]}" >"$WORK/alive.codes"
expect_eq "$N checks answered" "$N" "$(grep -cE '^(200|302)$' "$WORK/alive.codes")"
ALIVE=$(grep -cx 200 "$WORK/alive.codes")
echo "# $ALIVE of $N sessions alive"
check "some sessions were evicted ($ALIVE of $N alive)" test "$ALIVE" -lt "$N"
check "many sessions are still alive ($ALIVE of $N)" test "$ALIVE" -ge 50
expect_eq "the 20 most recent logins all work" "$(printf '200\n%.0s' $(seq 20))" \
    "$(tail -20 "$WORK/alive.codes")"
expect_eq "the 20 earliest logins are all evicted" "$(printf '302\n%.0s' $(seq 20))" \
    "$(head -20 "$WORK/alive.codes")"
# Nothing touched them after the login: eviction follows login order, so
# the live ones are exactly the most recent.
expect_eq "the live sessions are exactly the $ALIVE most recent" \
    "$(printf '302\n%.0s' $(seq $((N - ALIVE))))$(printf '\n200%.0s' $(seq "$ALIVE"))" \
    "$(cat "$WORK/alive.codes")"
expect_eq "the regular user, logged in first, is still logged in" "SECRET PAGE" "$(get vip "$U/private/")"
OUT=$(get vip "$U/private/cgi/session.cgi")
check "... as alice" grep -qx user=alice <<<"$OUT"

# The arena keeps working after all that eviction.
expect_eq "a new login works" 302 "$(login late "$U" bob hunter2)"
for i in 1 2 3; do
    expect_eq "... and its counter counts ($i)" "counter=$i" "$(get late "$U/private/cgi/count.cgi")"
done
expect_eq "a 3 KB session is stored in the full arena" "stored 3000" \
    "$(get late "$U/private/cgi/big.cgi?3000")"
check "... and read back" grep -q "big=xxx" <<<"$(get late "$U/private/cgi/session.cgi")"
expect_eq "the regular user is still logged in" "SECRET PAGE" "$(get vip "$U/private/")"

# The status handler counts what happened, across all children.
STATUS=$(get st "$U/status")
stat() { sed -n "s/^$1: //p" <<<"$STATUS"; }
check "status: the backend" grep -q '^shm (65536 bytes' <<<"$(stat backend)"
check "status: LRU evictions counted ($(stat evicted_lru))" test "$(stat evicted_lru)" -ge $((N - ALIVE))
check "status: live sessions counted ($(stat entries))" test "$(stat entries)" -ge 2
check "status: the arena's capacity ($(stat capacity_bytes) bytes of 64K)" \
    test "$(stat capacity_bytes)" -gt 50000 -a "$(stat capacity_bytes)" -lt 65536

check "no child crashed" eval '! log_has_crash ev'
grep -vE '\[[a-z_0-9]+:(info|notice|debug)\]' "$WORK/ev/logs/error.log" >"$WORK/unexpected"
expect_eq "the error log holds only info and notice lines" "" "$(head -5 "$WORK/unexpected")"
finish
