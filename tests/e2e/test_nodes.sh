#!/usr/bin/env bash
# Two httpd nodes sharing one redis-server behind a round-robin balancer with
# no stickiness: one session for every node. And the problem itself: two shm
# nodes lose the session behind the same balancer, unless it is sticky.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_nodes.sh"

RP=$(free_port)
redis_start redis "$RP"
REDIS_URI="redis://127.0.0.1:$RP/0?prefix=e2e:"

# node NAME PORT BACKEND [directives...]
node() {
    local name=$1 port=$2 backend=$3
    shift 3
    httpd_conf "$name" "$port" event "SessionStoreBackend $backend" \
        "SetEnv NODE_NAME $name" "Header always set X-Node $name" "$@"
}

PA=$(free_port)
PB=$(free_port)
PF=$(free_port)
# /idle/ and /abs/ are protected copies of /private/ with short timeouts;
# everything else keeps the defaults.
for n in a b; do
    p=$PA
    [ $n = b ] && p=$PB
    node $n "$p" "$REDIS_URI"
    for d in idle abs; do
        mkdir -p "$WORK/$n/htdocs/$d" && echo "PAGE $d" >"$WORK/$n/htdocs/$d/index.html"
        cat >>"$WORK/$n/httpd.conf" <<CONF
<Location /$d>
    AuthType form
    AuthName site
    AuthFormProvider file
    AuthUserFile $WORK/$n/htpasswd
    AuthFormLoginRequiredLocation /login.html
    Require valid-user
</Location>
CONF
    done
    cat >>"$WORK/$n/httpd.conf" <<CONF
<Location /idle>
    SessionStoreIdleTimeout 4
</Location>
<Location /abs>
    SessionStoreIdleTimeout 0
    SessionStoreAbsoluteTimeout 5
</Location>
CONF
done
balancer_conf front "$PF" 0 "$PA" "$PB"
httpd_start a "$PA"
httpd_start b "$PB"
httpd_start front "$PF"
F=http://127.0.0.1:$PF
A=http://127.0.0.1:$PA
B=http://127.0.0.1:$PB

# --- a login through the round-robin balancer holds on every request
expect_eq "login through the balancer redirects to the protected page" 302 "$(login u $F alice secret)"
seen=""
bad=0
for i in $(seq 1 20); do
    body=$(get u "$F/private/cgi/session.cgi")
    [ "$(code)" = 200 ] && echo "$body" | grep -q '^user=alice$' || bad=$((bad + 1))
    seen="$seen $(echo "$body" | sed -n 's/^node=//p')"
done
expect_eq "20 requests through the balancer, all authenticated" 0 "$bad"
check "both nodes served them" bash -c "echo '$seen' | grep -q a && echo '$seen' | grep -q b"

# --- a login on node A is valid on node B; logout on B kills it on A
login x "$A" bob hunter2 >/dev/null
sid=$(jar_sid x)
set_jar_sid y "$sid"
get y "$B/private/" >/dev/null
expect_eq "a login on node A is valid on node B" 200 "$(code)"
get y "$B/logout" >/dev/null
set_jar_sid z "$sid"
get z "$A/private/" >/dev/null
expect_eq "logout on node B: the old cookie is refused on node A" 302 "$(code)"

# --- idle expiry slides across nodes
login i "$A" alice secret >/dev/null
bad=0
for i in 1 2 3 4 5 6; do
    sleep 1
    if [ $((i % 2)) = 0 ]; then get i "$A/idle/" >/dev/null; else get i "$B/idle/" >/dev/null; fi
    [ "$(code)" = 200 ] || bad=$((bad + 1))
done
expect_eq "a session used every second on alternating nodes outlives its 4 s idle timeout" 0 "$bad"
sleep 5
get i "$B/idle/" >/dev/null
expect_eq "after 5 s idle it is gone on every node" 302 "$(code)"

# --- absolute expiry holds across nodes
get ab "$A/abs/" >/dev/null
login ab "$A" alice secret >/dev/null
t0=$SECONDS
alive=1
while [ $((SECONDS - t0)) -lt 4 ]; do
    get ab "$B/abs/" >/dev/null
    [ "$(code)" = 200 ] || alive=0
    sleep 0.5
done
expect_eq "an active session lives until its absolute timeout" 1 "$alive"
sleep 2
get ab "$A/abs/" >/dev/null
expect_eq "and ends at 5 s on every node, however active" 302 "$(code)"

# --- round trips, from Redis INFO commandstats
calls() { # calls CMD: how many times Redis ran CMD since the last reset
    redis_cli redis info commandstats | tr -d '\r' | sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p" | grep . || echo 0
}
login rt "$A" alice secret >/dev/null
get rt "$A/private/" >/dev/null
redis_cli redis config resetstat >/dev/null
for i in $(seq 1 20); do get rt "$A/private/cgi/session.cgi" >/dev/null; done
# The lean load: one GET; the script (EVALSHA) only for a touch, which
# /private/'s 30-minute idle timeout makes due once a minute at most.
scripts=$(($(calls evalsha) + $(calls eval)))
echo "# 20 requests that read the session: $(calls get) GET, $scripts script calls, $(calls set) SET"
expect_eq "one round trip per load: 20 reads, 20 GET" 20 "$(calls get)"
expect_eq "... and no script (no touch due)" 0 "$scripts"
expect_eq "a read that changes nothing writes nothing" 0 "$(calls set)"
redis_cli redis config resetstat >/dev/null
for i in $(seq 1 10); do get rt "$A/private/cgi/count.cgi" >/dev/null; done
# The save of a changed session is one script call: a compare-and-set on the
# record's revision (its own GET and SET count in Redis's stats too). The
# first one after the script cache was empty is sent again as EVAL.
scripts=$(($(calls evalsha) + $(calls eval)))
echo "# 10 requests that change the session: $(calls get) GET, $scripts script calls, $(calls set) SET"
expect_eq "a changed session: one load (GET) and the save script's GET ..." 20 "$(calls get)"
expect_eq "... one save script call (EVALSHA) per request" 10 "$(calls evalsha)"
check "... sent again as EVAL at most once (the script cache's first fill)" [ "$(calls eval)" -le 1 ]
expect_eq "... and one SET per request, inside it" 10 "$(calls set)"
# (CONFIG and INFO are this test's own.)
others=$(redis_cli redis info commandstats | tr -d '\r' | sed -n 's/^cmdstat_\([a-z|]*\):.*/\1/p' |
    grep -vxE 'get|set|eval|evalsha|config\|resetstat|info' | tr '\n' ' ')
expect_eq "and no other command reaches Redis" "" "$others"

# --- counters: 24 clients, each with its own session, alternating nodes
clients=20
rounds=16
for c in $(seq 1 $clients); do
    login "c$c" "$A" alice secret >/dev/null
done
run_client() {
    local c=$1 r url
    for r in $(seq 1 $rounds); do
        if [ $((r % 2)) = 0 ]; then url=$A; else url=$B; fi
        curl -sS --max-time 10 -b "$(jar "c$c")" "$url/private/cgi/count.cgi" >/dev/null
    done
}
for c in $(seq 1 $clients); do run_client "$c" & done
wait
bad=0
for c in $(seq 1 $clients); do
    v=$(get "c$c" "$F/private/cgi/session.cgi" | grep -o 'counter=[0-9]*' | head -1)
    [ "$v" = "counter=$rounds" ] || { bad=$((bad + 1)); echo "# client $c: $v"; }
done
expect_eq "$clients parallel clients x $rounds requests on alternating nodes: every counter exact" 0 "$bad"

finish_nodes() {
    redis_cleanup
    finish
}
finish_nodes
