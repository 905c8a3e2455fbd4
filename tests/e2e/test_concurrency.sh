#!/usr/bin/env bash
# Concurrent requests of ONE session lose nothing (issue 14).
#
# Merge: a CGI sets one key through X-Replace-Session; one set of clients
# changes key a, another key b, hundreds of requests at once across two
# nodes (Redis) or on one node (shm). Each set ends with one last write,
# sent after all of its other requests were answered, while the other set is
# still busy: the final session holds both last writes. Played twice, each
# set in turn being the one that finishes first.
#
# Lock: with SessionStoreLock On, a CGI that increments a counter (read,
# +1, write) under hundreds of parallel requests on both nodes counts every
# request exactly; a lock held past SessionStoreLockTimeout is a 503 with
# Retry-After.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_nodes.sh"

BURST=${BURST:-120}  # requests of the set that finishes first
LONGER=${LONGER:-3}  # the other set sends this many times more
PARALLEL=${PARALLEL:-24}
COUNT=${COUNT:-200}

# The CGIs. set.cgi?k=v sets one key (mod_session adds what the header names
# to the session it loaded); count.cgi increments "counter" (count.cgi of the
# site); slow.cgi holds the session's lock for a while.
write_conc() {
    local dir=$1
    mkdir -p "$dir/htdocs/conc/locked/short"
    cat >"$dir/htdocs/conc/set.cgi" <<'SH'
#!/bin/sh
printf 'X-Replace-Session: %s\r\n' "$QUERY_STRING"
printf 'Content-Type: text/plain\r\n\r\n'
printf 'session=%s\n' "${HTTP_SESSION:-}"
SH
    cp "$dir/htdocs/conc/set.cgi" "$dir/htdocs/conc/locked/set.cgi"
    cp "$dir/htdocs/conc/set.cgi" "$dir/htdocs/conc/locked/short/set.cgi"
    cp "$E2E_DIR/site/count.cgi" "$dir/htdocs/conc/locked/count.cgi"
    cat >"$dir/htdocs/conc/locked/slow.cgi" <<'SH'
#!/bin/sh
sleep 3
printf 'Content-Type: text/plain\r\n\r\nslept\n'
SH
    chmod 755 "$dir/htdocs/conc/"*.cgi "$dir/htdocs/conc/locked/"*.cgi "$dir/htdocs/conc/locked/short/"*.cgi
}

# conc_node NAME PORT BACKEND
conc_node() {
    local name=$1 port=$2 backend=$3
    httpd_conf "$name" "$port" event "SessionStoreBackend $backend" \
        "Header always set X-Node $name" "<Directory $WORK/$name/htdocs/conc>" \
        "    Options +ExecCGI" "    SetHandler cgi-script" "</Directory>" \
        "<Location /conc/locked>" "    SessionStoreLock On" "    SessionStoreLockTimeout 8" \
        "</Location>" "<Location /conc/locked/short>" "    SessionStoreLockTimeout 500ms" \
        "</Location>" "<Location /metrics>" "    SetHandler sessstore-metrics" "</Location>"
    write_conc "$WORK/$name"
}

# metric URL NAME: the value of sessstore_NAME on URL's metrics page (every
# process of that httpd; Redis nodes each count their own requests).
metric() {
    curl -s --max-time 10 "$1/metrics" | awk -v n="sessstore_$2" '$1 == n { print $2 }'
}

# metric_total NAME URL...: sessstore_NAME summed over the nodes at URL...
metric_total() {
    local name=$1 u n=0
    shift
    for u in "$@"; do n=$((n + $(metric "$u" "$name"))); done
    echo "$n"
}

# merge_counts LABEL URL...: the merge's counters, summed over the nodes,
# add up: every conflict was retried (merged: the payloads here can be) or
# gave up, and none gave up (every request was answered 200). A merge test
# without a single conflict tested nothing: that fails too.
merge_counts() {
    local label=$1 conflicts merged overwritten gave_up
    shift
    conflicts=$(metric_total merge_conflicts_total "$@")
    merged=$(metric_total 'merge_retries_total{how="merged"}' "$@")
    overwritten=$(metric_total 'merge_retries_total{how="overwritten"}' "$@")
    gave_up=$(metric_total merge_gave_up_total "$@")
    echo "# $label: merge_conflicts_total $conflicts, merged $merged, overwritten $overwritten," \
        "gave up $gave_up"
    check "$label: the merge rounds met conflicts ($conflicts)" test "$conflicts" -gt 0
    expect_eq "$label: each conflict retried, merged (/metrics)" "$conflicts" "$merged"
    expect_eq "$label: none overwritten, none gave up (/metrics)" "0 0" "$overwritten $gave_up"
}

# lock_counts LABEL URL...: every locked request of count_round took the
# lock once (the COUNT increments and the read after them; the first
# request made the session: nothing to lock yet), some after waiting, none
# timed out.
lock_counts() {
    local label=$1 taken waited timeouts
    shift
    taken=$(metric_total lock_taken_total "$@")
    waited=$(metric_total lock_waited_total "$@")
    timeouts=$(metric_total lock_timeouts_total "$@")
    expect_eq "$label: every locked request took the lock once (/metrics)" $((COUNT + 1)) "$taken"
    check "$label: some waited for it ($waited)" test "$waited" -gt 0
    expect_eq "$label: no wait timed out (/metrics)" 0 "$timeouts"
}

# new_session URL: a new session holding a=0 and b=0; prints its ID.
new_session() {
    get s "$1/conc/set.cgi?a=0&b=0" >/dev/null
    [ "$(code)" = 200 ] || die "cannot create the session ($(code))"
    jar_sid s
}

# value_of SID URL KEY: the key's value in the session, as a CGI sees it.
value_of() {
    curl -sS --max-time "$CURL_MAX_TIME" -H "Cookie: sid=$1" "$2/conc/set.cgi" |
        sed -n 's/^session=//p' | tr '&' '\n' | sed -n "s/^$3=//p"
}

# burst SID KEY N FINAL BASE...: N requests setting KEY (values KEY-1..KEY-N),
# PARALLEL at a time, spread over the BASE URLs in turn; once all are
# answered, one more setting KEY=FINAL. Prints the status of every request,
# one per line, into $WORK/codes.KEY.
burst() {
    local sid=$1 key=$2 n=$3 final=$4 i
    shift 4
    local bases=("$@") cfg="$WORK/burst.$key.cfg"
    : >"$cfg"
    for i in $(seq 1 "$n"); do
        printf 'url = "%s/conc/set.cgi?%s=%s-%d"\noutput = "/dev/null"\n' \
            "${bases[$((i % ${#bases[@]}))]}" "$key" "$key" "$i" >>"$cfg"
    done
    curl -s --no-progress-meter --max-time 60 --parallel --parallel-max "$PARALLEL" -H "Cookie: sid=$sid" \
        -w '%{http_code}\n' -K "$cfg" >"$WORK/codes.$key"
    curl -s --max-time "$CURL_MAX_TIME" -H "Cookie: sid=$sid" -o /dev/null -w '%{http_code}\n' \
        "${bases[0]}/conc/set.cgi?$key=$final" >>"$WORK/codes.$key"
}

# not_200 KEY: how many requests of the last burst of KEY were not answered 200.
not_200() {
    grep -vc '^200$' "$WORK/codes.$1"
}

# merge_round LABEL FIRST SECOND BASE...: FIRST's set sends BURST requests,
# SECOND's LONGER times as many, both at once; FIRST's last write lands while
# SECOND's clients are still writing.
merge_round() {
    local label=$1 first=$2 second=$3
    shift 3
    local sid
    sid=$(new_session "$1")
    [ -n "$sid" ] || die "no session cookie"
    burst "$sid" "$first" "$BURST" "${first}-last" "$@" &
    local p1=$!
    burst "$sid" "$second" $((BURST * LONGER)) "${second}-last" "$@" &
    local p2=$!
    wait $p1 $p2
    expect_eq "$label: every request of the set changing $first answered 200" 0 "$(not_200 "$first")"
    expect_eq "$label: every request of the set changing $second answered 200" 0 "$(not_200 "$second")"
    expect_eq "$label: $first holds its last write, made while $second was being written" \
        "${first}-last" "$(value_of "$sid" "$1" "$first")"
    expect_eq "$label: $second holds its last write" "${second}-last" "$(value_of "$sid" "$1" "$second")"
}

# count_round LABEL BASE...: COUNT increments at once, under the lock.
count_round() {
    local label=$1 i
    shift
    local bases=("$@") cfg="$WORK/count.cfg" sid
    get c "$1/conc/locked/count.cgi" >/dev/null
    sid=$(jar_sid c)
    [ -n "$sid" ] || die "no session cookie for the counter"
    : >"$cfg"
    for i in $(seq 1 "$COUNT"); do
        printf 'url = "%s/conc/locked/count.cgi"\noutput = "/dev/null"\n' \
            "${bases[$((i % ${#bases[@]}))]}" >>"$cfg"
    done
    curl -s --no-progress-meter --max-time 120 --parallel --parallel-max "$PARALLEL" -H "Cookie: sid=$sid" \
        -w '%{http_code}\n' -K "$cfg" >"$WORK/codes.count"
    expect_eq "$label: all $COUNT increments answered 200" 0 "$(grep -vc '^200$' "$WORK/codes.count")"
    expect_eq "$label: the counter counts every request exactly (1 + $COUNT)" $((COUNT + 1)) \
        "$(get c "$1/conc/locked/count.cgi" | sed -n 's/^counter=//p' | awk '{print $1 - 1}')"
}

# --- shm, one node
PS=$(free_port)
conc_node s "$PS" shm
httpd_start s "$PS"
S=http://127.0.0.1:$PS
merge_round "shm" a b "$S"
merge_round "shm, the other way" b a "$S"
merge_counts "shm" "$S"
count_round "shm, SessionStoreLock On" "$S"
lock_counts "shm" "$S"

# --- Redis, two nodes
RP=$(free_port)
redis_start redis "$RP"
REDIS_URI="redis://127.0.0.1:$RP/0?prefix=conc:${REDIS_SLOW_OPTIONS:-}"
PA=$(free_port)
PB=$(free_port)
conc_node a "$PA" "$REDIS_URI"
conc_node b "$PB" "$REDIS_URI"
httpd_start a "$PA"
httpd_start b "$PB"
A=http://127.0.0.1:$PA
B=http://127.0.0.1:$PB
merge_round "redis, two nodes" a b "$A" "$B"
merge_round "redis, two nodes, the other way" b a "$A" "$B"
merge_counts "redis, two nodes" "$A" "$B"
count_round "redis, two nodes, SessionStoreLock On" "$A" "$B"
lock_counts "redis, two nodes" "$A" "$B"

# --- a lock held longer than SessionStoreLockTimeout: 503 + Retry-After, and
# the request that held it is unaffected.
get l "$A/conc/locked/set.cgi?x=1" >/dev/null
sid=$(jar_sid l)
curl -s --max-time 20 -H "Cookie: sid=$sid" -o "$WORK/slow.body" -w '%{http_code}' \
    "$B/conc/locked/slow.cgi" >"$WORK/slow.code" &
slow=$!
sleep 0.5
t0=$(date +%s%N)
set_jar_sid w "$sid"
get w "$A/conc/locked/set.cgi?x=2" >/dev/null
waited=$((($(date +%s%N) - t0) / 1000000))
expect_eq "a request waiting behind a lock held 3 s, with SessionStoreLockTimeout 8: served" 200 "$(code)"
check "it waited for the lock (${waited} ms)" test "$waited" -ge 1500
wait $slow
expect_eq "the holder was served" 200 "$(cat "$WORK/slow.code")"
# Now with a wait shorter than the hold.
curl -s --max-time 20 -H "Cookie: sid=$sid" -o /dev/null "$B/conc/locked/slow.cgi" &
slow=$!
sleep 0.5
get w "$A/conc/locked/short/set.cgi?x=3" >/dev/null
expect_eq "a lock not free within SessionStoreLockTimeout: 503" 503 "$(code)"
expect_eq "with Retry-After" 1 "$(last_header Retry-After)"
wait $slow
expect_eq "the refused request changed nothing" 2 "$(value_of "$sid" "$A" x)"

# --- bad lock directives fail at start-up, naming the directive
conc_node bad "$(free_port)" shm
echo "<Location /x>
    SessionStoreLockTimeout 5
    SessionStoreLockLease 3
</Location>" >>"$WORK/bad/httpd.conf"
check "SessionStoreLockTimeout not below SessionStoreLockLease is refused" \
    bash -c "'$HTTPD' -d '$WORK/bad' -f '$WORK/bad/httpd.conf' -t 2>&1 | grep -q 'SessionStoreLockTimeout (5000 ms) must be shorter than SessionStoreLockLease'"
conc_node bad2 "$(free_port)" shm
echo "<Location /y>
    SessionStoreLock On
    SessionStoreLockTimeout 15
</Location>" >>"$WORK/bad2/httpd.conf"
check "SessionStoreLockTimeout not below the server's Timeout is refused" \
    bash -c "'$HTTPD' -d '$WORK/bad2' -f '$WORK/bad2/httpd.conf' -t 2>&1 | grep -q 'SessionStoreLockTimeout (15000 ms) must be shorter than the server.s Timeout (10 s)'"
conc_node bad3 "$(free_port)" shm
echo "SessionStoreLockTimeout 2x" >>"$WORK/bad3/httpd.conf"
check "a malformed SessionStoreLockTimeout is refused" \
    bash -c "'$HTTPD' -d '$WORK/bad3' -f '$WORK/bad3/httpd.conf' -t 2>&1 | grep -q \"SessionStoreLockTimeout: '2x' is not a wait\""

for n in s a b; do
    check "no crash in $n's error log" bash -c "! grep -Eq 'segfault|exit signal' '$WORK/$n/logs/error.log'"
done
finish
