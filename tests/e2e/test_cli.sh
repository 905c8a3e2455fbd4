#!/usr/bin/env bash
# sessstore(1), the admin command, against two httpd nodes sharing one
# password-protected redis-server, and one shm node (its named segment):
# count, list, stats; "revoke --user" ends
# every session of one owner on both nodes at once while the others keep
# theirs; --cookie and --tag end one; purge-expired; --help everywhere; a bad
# backend, an unreachable store and a wrong password fail with a message and
# their exit status. SESSSTORE names the binary (default: next to MODULE's
# build, build/normal/cli/sessstore).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_nodes.sh"

SESSSTORE=${SESSSTORE:-$(cd "$(dirname "$MODULE")/.." && pwd)/cli/sessstore}
[ -x "$SESSSTORE" ] || die "sessstore not found at $SESSSTORE (make builds cli/sessstore)"

PASSWORD=Cli-pw.42
RP=$(free_port)
redis_start redis "$RP" --requirepass "$PASSWORD"
export REDISCLI_AUTH=$PASSWORD
BACKEND="redis://:$PASSWORD@127.0.0.1:$RP/0?prefix=e2e:"

PA=$(free_port)
PB=$(free_port)
for n in a b; do
    p=$PA
    [ $n = b ] && p=$PB
    httpd_conf $n "$p" event "SessionStoreBackend $BACKEND"
    htpasswd -bB -C 4 "$WORK/$n/htpasswd" carol s3cret 2>/dev/null
done
httpd_start a "$PA"
httpd_start b "$PB"
A=http://127.0.0.1:$PA
B=http://127.0.0.1:$PB

# ss ARGS...: run sessstore on the shared store; stdout in $WORK/ss.out,
# stderr in $WORK/ss.err, the exit status echoed.
ss() {
    "$SESSSTORE" "$@" >"$WORK/ss.out" 2>"$WORK/ss.err"
    echo $?
}

# --- six sessions of three owners, on both nodes (and one anonymous)
login_owners "$A $B" alice a1 a2 a3 bob b1 b2 carol c1
get anon "$A/private/cgi/count.cgi" >/dev/null # no login: redirected, no session

# --- count, stats, list
expect_eq "count exits 0" 0 "$(ss -b "$BACKEND" count)"
expect_eq "count says 6" 6 "$(cat "$WORK/ss.out")"
expect_eq "stats exits 0" 0 "$(ss -b "$BACKEND" stats)"
expect_eq "stats: sessions" "sessions: 6" "$(grep '^sessions:' "$WORK/ss.out")"
check "stats: bytes above six headers" \
    test "$(sed -n 's/^bytes: //p' "$WORK/ss.out")" -gt $((6 * 26))
check "stats: the backend, its password masked" grep -q "^backend: redis://:\*\*\*@127.0.0.1:$RP/0" "$WORK/ss.out"
check "stats: no password anywhere" bash -c "! grep -q '$PASSWORD' '$WORK/ss.out' '$WORK/ss.err'"
expect_eq "list exits 0" 0 "$(ss -b "$BACKEND" list)"
expect_eq "list: a header and 6 lines" 7 "$(wc -l <"$WORK/ss.out")"
check "list: the header names the columns" \
    grep -qE '^TAG +CREATED +LAST-ACCESS +EXPIRES-IN +SIZE$' "$WORK/ss.out"
# tag, created, last access, expires in (the 30-minute idle default), size
pattern='^[0-9a-f]{8}  [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z  [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z +1[0-9]{3}s +[0-9]+$'
expect_eq "list: every line has tag, times, expiry and size" 6 "$(grep -cE "$pattern" "$WORK/ss.out")"
check "list: no owner without --user" bash -c "! grep -qiE 'alice|bob|carol' '$WORK/ss.out'"
expect_eq "list --user alice exits 0" 0 "$(ss -b "$BACKEND" list --user alice)"
expect_eq "list --user alice: her 3 sessions, named" 3 "$(grep -c '  alice$' "$WORK/ss.out")"
expect_eq "list --limit 2" 0 "$(ss -b "$BACKEND" list --limit 2)"
expect_eq "list --limit 2: a header and 2 lines" 3 "$(wc -l <"$WORK/ss.out")"

# --- revoke --user: every alice session ends on both nodes at once
expect_eq "revoke --user alice exits 0" 0 "$(ss -b "$BACKEND" revoke --user alice)"
expect_eq "it says how many" "revoked 3 session(s) of alice" "$(cat "$WORK/ss.out")"
expect_eq "every alice session is sent to the login form on both nodes" 6 \
    "$(answer_count 302 "$A $B" a1 a2 a3)"
expect_eq "bob and carol keep theirs on both nodes" 6 "$(answer_count 200 "$A $B" b1 b2 c1)"
ss -b "$BACKEND" count >/dev/null
expect_eq "count says 3" 3 "$(cat "$WORK/ss.out")"

# --- revoke --cookie: the ID as the browser holds it
expect_eq "revoke --cookie exits 0" 0 "$(ss -b "$BACKEND" revoke --cookie "$(jar_sid b1)")"
expect_eq "that session ends" 302 "$(alive b1 "$A")"
expect_eq "bob's other one lives" 200 "$(alive b2 "$B")"

# --- revoke --tag: the 8 hex digits of the error log
ss -b "$BACKEND" list --user carol >/dev/null
tag=$(awk 'NR == 2 { print $1 }' "$WORK/ss.out")
expect_eq "revoke --tag exits 0" 0 "$(ss -b "$BACKEND" revoke --tag "$tag")"
expect_eq "it names the tag" "revoked session $tag" "$(cat "$WORK/ss.out")"
expect_eq "carol's session ends" 302 "$(alive c1 "$B")"
expect_eq "an unknown tag exits 1" 1 "$(ss -b "$BACKEND" revoke --tag 00000000)"
check "and says so" grep -q "no session with tag 00000000" "$WORK/ss.err"
expect_eq "a malformed tag is a usage error" 2 "$(ss -b "$BACKEND" revoke --tag xyz)"

# --- purge-expired: alice's emptied index went with her sessions; a stale
# entry (a session deleted behind the index's back, long ago) is purged
expect_eq "purge-expired exits 0" 0 "$(ss -b "$BACKEND" purge-expired)"
check "purge-expired prints its count" grep -qE '^purged [0-9]+$' "$WORK/ss.out"
stale=$(redis_cli redis --scan --pattern 'e2e:owner:*' | head -1)
redis_cli redis ZADD "$stale" 1000 "$(printf '%064d' 0)" >/dev/null
ss -b "$BACKEND" purge-expired >/dev/null
expect_eq "a dead index entry is purged" "purged 1" "$(cat "$WORK/ss.out")"

# --- help, errors, exit codes
for c in stats count list revoke purge-expired; do
    expect_eq "$c --help exits 0" 0 "$(ss "$c" --help)"
    check "$c --help prints its usage" grep -q "^usage: sessstore -b BACKEND $c" "$WORK/ss.out"
done
expect_eq "--help exits 0" 0 "$(ss --help)"
expect_eq "a backend of no known kind exits 2" 2 "$(ss -b "memcached" count)"
check "and says what it expects" grep -q "unknown backend (expected redis://" "$WORK/ss.err"
expect_eq "another scheme exits 2" 2 "$(ss -b "mysql://x" count)"
check "and says what it expects" grep -q "bad backend: expected redis://" "$WORK/ss.err"
expect_eq "a URI that does not parse exits 2" 2 "$(ss -b "redis://127.0.0.1:99999" count)"
check "and says why" grep -q "bad backend: bad port" "$WORK/ss.err"
NP=$(free_port)
expect_eq "an unreachable store exits 1" 1 "$(ss -b "redis://127.0.0.1:$NP" count)"
check "and says so" grep -q "cannot reach redis://127.0.0.1:$NP" "$WORK/ss.err"
expect_eq "a wrong password exits 1" 1 "$(ss -b "redis://:wrong@127.0.0.1:$RP/0" count)"
check "without printing it" bash -c "! grep -q wrong '$WORK/ss.err'"
expect_eq "an unknown command exits 2" 2 "$(ss -b "$BACKEND" frobnicate)"
expect_eq "no backend exits 2" 2 "$(ss count)"
expect_eq "revoke without a target exits 2" 2 "$(ss -b "$BACKEND" revoke)"
expect_eq "an unknown option exits 2" 2 "$(ss -b "$BACKEND" list --owner x)"

# --- the shm store: sessstore attaches to httpd's named segment and takes
# the arena's own locks, while httpd serves traffic
PS=$(free_port)
httpd_conf s "$PS" event "SessionStoreBackend shm"
httpd_start s "$PS"
S=http://127.0.0.1:$PS
SEG=$WORK/s/run/sessstore.shm
login_owners "$S" alice sa1 sa2 bob sb1
expect_eq "shm: count exits 0" 0 "$(ss -b "shm:$SEG" count)"
expect_eq "shm: count says 3" 3 "$(cat "$WORK/ss.out")"
expect_eq "shm: list --user alice" 0 "$(ss -b "shm:$SEG" list --user alice)"
expect_eq "shm: her 2 sessions" 2 "$(grep -cE '^[0-9a-f]{8}  .*  alice$' "$WORK/ss.out")"
expect_eq "shm: stats exits 0" 0 "$(ss -b "shm:$SEG" stats)"
check "shm: stats has the arena's counters" grep -q '^rebuilds: 0$' "$WORK/ss.out"
# Traffic on the node while the tool takes the same locks, many times over.
( for i in $(seq 1 60); do curl -s -o /dev/null -b "$(jar sb1)" "$S/private/cgi/count.cgi"; done ) &
traffic=$!
bad=0
for i in $(seq 1 30); do
    [ "$(ss -b "shm:$SEG" list)" = 0 ] || bad=$((bad + 1))
done
wait "$traffic"
expect_eq "shm: 30 lists while httpd serves, all fine" 0 "$bad"
expect_eq "shm: revoke --user alice exits 0" 0 "$(ss -b "shm:$SEG" revoke --user alice)"
expect_eq "shm: it says how many" "revoked 2 session(s) of alice" "$(cat "$WORK/ss.out")"
expect_eq "shm: alice's sessions are ended" "302 302" "$(alive sa1 "$S") $(alive sa2 "$S")"
expect_eq "shm: bob keeps his, with its 60 counts" "counter=61" \
    "$(get sb1 "$S/private/cgi/count.cgi")"
expect_eq "shm: purge-expired exits 0" 0 "$(ss -b "shm:$SEG" purge-expired)"
ss -b "shm:$SEG" stats >/dev/null
expect_eq "shm: the arena was never rebuilt" "rebuilds: 0" "$(grep '^rebuilds:' "$WORK/ss.out")"
expect_eq "shm: a path with no segment exits 1" 1 "$(ss -b "shm:$WORK/nothing.shm" count)"
check "and says so" grep -q "cannot attach to the shared-memory store" "$WORK/ss.err"

redis_cleanup
finish
