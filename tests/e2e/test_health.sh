#!/bin/bash
# test_health.sh - SetHandler sessstore-health, as a balancer polls it: 200
# while the store saves and loads, 503 with the reason (no address, no
# password) within a second of Redis being killed, 200 again within a
# second of its return, in every process; shm answers 200.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_nodes.sh"

HEALTH=("<Location /health>" "SetHandler sessstore-health" "</Location>")

# poll URL: one health request; prints its status code, the body to $WORK/health.body.
poll() {
    curl -sS --max-time "$CURL_MAX_TIME" -o "$WORK/health.body" -w '%{http_code}' "$1/health" 2>/dev/null
}
now_ms() {
    echo $(($(date +%s%N) / 1000000))
}
# until_code URL CODE SINCE_MS: polls every 50 ms (at most 10 s) until the
# answer is CODE; prints the milliseconds from SINCE_MS to that answer.
until_code() {
    local url=$1 want=$2 since=$3 i
    for i in $(seq 200); do
        if [ "$(poll "$url")" = "$want" ]; then
            echo $(($(now_ms) - since))
            return 0
        fi
        sleep 0.05
    done
    echo 99999
}
# all_code URL CODE N: N polls in a row (20 ms apart) all answer CODE.
all_code() {
    local i
    for i in $(seq "$3"); do
        [ "$(poll "$1")" = "$2" ] || return 1
        sleep 0.02
    done
}

# ---- shm ----
P=$(free_port)
httpd_conf shm "$P" prefork "StartServers 2" "${HEALTH[@]}"
httpd_start shm "$P"
expect_eq "shm: 200" 200 "$(poll "http://127.0.0.1:$P")"
check "shm: says it saves and loads" grep -q '^OK: the session store (shm) saves and loads' "$WORK/health.body"
expect_eq "shm: not cached by anyone" "no-store" \
    "$(curl -sS -D - -o /dev/null "http://127.0.0.1:$P/health" | tr -d '\r' | sed -n 's/^Cache-Control: //Ip')"
expect_eq "shm: POST is refused" 405 \
    "$(curl -sS -o /dev/null -w '%{http_code}' -d x "http://127.0.0.1:$P/health")"
httpd_stop shm

# ---- Redis, event with three processes, no keep-alive: each poll may
# reach another process, each with its own cached verdict ----
RP=$(free_port)
redis_start redis "$RP" --requirepass pw4health
P=$(free_port)
httpd_conf ev "$P" event "StartServers 3" "ServerLimit 4" "ThreadsPerChild 5" \
    "MinSpareThreads 15" "MaxSpareThreads 20" "MaxRequestWorkers 20" "KeepAlive Off" \
    "SessionStoreBackend redis://:pw4health@127.0.0.1:$RP/0?breaker=100${REDIS_SLOW_OPTIONS:-&connect_timeout=200&command_timeout=300}" \
    "${HEALTH[@]}"
httpd_start ev "$P"
U=http://127.0.0.1:$P
check "redis: 200 from every process (20 polls)" all_code "$U" 200 20

kill -9 "$(cat "$WORK/redis/redis.pid")"
t0=$(now_ms)
ms=$(until_code "$U" 503 "$t0")
check "redis killed: 503 within 1 s (${ms} ms)" test "$ms" -le 1000
check "redis killed: the reason is given" grep -q '^UNAVAILABLE: the session store (redis): the store cannot save: .*refused' \
    "$WORK/health.body"
check "redis killed: no password, address or port in the body" \
    eval '! grep -qE "pw4health|127\.0\.0\.1|$RP" "$WORK/health.body"'
sleep 0.6 # every process's cached verdict has run out
check "redis killed: 503 from every process (20 polls)" all_code "$U" 503 20

t1=$(now_ms)
redis_start redis "$RP" --requirepass pw4health
ms=$(until_code "$U" 200 "$t1")
check "redis back: 200 within 1 s (${ms} ms)" test "$ms" -le 1000
sleep 0.6
check "redis back: 200 from every process (20 polls)" all_code "$U" 200 20
check "no child crashed" eval '! log_has_crash ev'
httpd_stop ev

# ---- mod_proxy_hcheck drains the node that cannot reach its store ----
# Two nodes, each with a Redis of its own (a node cut off from the store);
# the balancer polls sessstore-health every second.
RA=$(free_port)
RB=$(free_port)
redis_start ra "$RA"
redis_start rb "$RB"
PA=$(free_port)
PB=$(free_port)
for n in a b; do
    port=$PA rport=$RA
    [ "$n" = b ] && port=$PB rport=$RB
    httpd_conf "$n" "$port" event "Header always set X-Node $n" \
        "SessionStoreBackend redis://127.0.0.1:$rport/0?breaker=100${REDIS_SLOW_OPTIONS:-&connect_timeout=200&command_timeout=300}" \
        "${HEALTH[@]}"
    httpd_start "$n" "$port"
done
PL=$(free_port)
mkdir -p "$WORK/lb/logs" "$WORK/lb/run"
{
    server_lines "$WORK/lb" "$PL" warn mpm_event authz_core proxy proxy_http proxy_balancer \
        lbmethod_byrequests slotmem_shm proxy_hcheck
    echo "<Proxy balancer://nodes>"
    for p in "$PA" "$PB"; do
        echo "    BalancerMember http://127.0.0.1:$p hcmethod=GET hcuri=/health hcinterval=1 hcfails=1 hcpasses=1"
    done
    echo "    ProxySet lbmethod=byrequests"
    echo "</Proxy>"
    echo "ProxyPass / balancer://nodes/"
} >"$WORK/lb/httpd.conf"
httpd_start lb "$PL"
L=http://127.0.0.1:$PL
# nodes N: which nodes served N requests through the balancer, sorted, unique.
nodes() {
    local i
    for i in $(seq "$1"); do
        curl -sS --max-time "$CURL_MAX_TIME" -D - -o /dev/null "$L/public/index.html" |
            tr -d '\r' | sed -n 's/^X-Node: //Ip'
    done | sort -u | tr '\n' ' '
}
expect_eq "balancer: both nodes serve" "a b " "$(nodes 10)"
redis_stop rb
t0=$(now_ms)
only_a() { [ "$(nodes 6)" = "a " ]; }
if wait_for 100 only_a; then
    ms=$(($(now_ms) - t0))
    check "balancer: node b drained within 3 s of its Redis stopping (${ms} ms)" test "$ms" -le 3000
else
    not_ok "balancer: node b is never drained"
fi
expect_eq "balancer: only node a serves" "a " "$(nodes 10)"
redis_start rb "$RB"
t1=$(now_ms)
both() { [ "$(nodes 6)" = "a b " ]; }
if wait_for 100 both; then
    ms=$(($(now_ms) - t1))
    check "balancer: node b back within 3 s of its Redis (${ms} ms)" test "$ms" -le 3000
else
    not_ok "balancer: node b never comes back"
fi
finish
