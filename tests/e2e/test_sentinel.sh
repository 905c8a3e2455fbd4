#!/usr/bin/env bash
# Redis Sentinel under load: one master, two replicas, three sentinels
# (down-after-milliseconds 1000), two httpd nodes behind a round-robin
# balancer with redis-sentinel://...?wait=1, and 24 clients logged in and
# writing (count.cgi) all along. Faults in turn: kill -9 of the master;
# SIGSTOP of the master (SIGCONT after); SENTINEL FAILOVER with the old
# master alive and demoted; the first listed sentinel dead, then the master
# killed; sentinels with requirepass (sentinel_password), then the master
# killed. After each: no acknowledged write lost (a client's counter never
# goes back), no session lost, writes work again within 2 x down-after + 2 s
# without touching httpd, and no READONLY error after the first failed
# request of each process. Then: WAIT shortfalls and NOREPLICAS refusals
# fail the save; "no sentinel reachable" and "unknown master name" are
# logged as such; the status page names the master.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_nodes.sh"

DOWN_AFTER=1000
# The machine running the tests may be loaded: room on top of the
# requirement, for the clients' own lateness. Printed with the figures.
LOAD_MARGIN_MS=${LOAD_MARGIN_MS:-1000}
LIMIT_MS=$((2 * DOWN_AFTER + 2000))
CLIENTS=24
MASTER=mymaster
SENTINEL_PASSWORD=s3ntinel-pw

# The sentinel binary: Debian's redis-sentinel, else redis-server --sentinel
# (the same program).
sentinel_run() { # sentinel_run CONF
    if command -v redis-sentinel >/dev/null; then
        redis-sentinel "$1"
    else
        "$REDIS_SERVER" "$1" --sentinel
    fi
}

now_ms() { date +%s%3N; }

STOP=$WORK/stop-clients
CLIENT_PIDS=()
stop_clients() {
    touch "$STOP"
    local p
    for p in "${CLIENT_PIDS[@]+"${CLIENT_PIDS[@]}"}"; do wait "$p" 2>/dev/null; done
    CLIENT_PIDS=()
}

# ---- Redis nodes, named by port
redis_node() { # redis_node PORT [options]: a data node
    local port=$1
    shift
    redis_start "r$port" "$port" --repl-diskless-sync yes --repl-diskless-sync-delay 0 "$@"
}
rcli() { # rcli PORT args...
    "$REDIS_CLI" -p "$1" "${@:2}"
}
node_pid() { cat "$WORK/r$1/redis.pid"; }

M0=$(free_port)
R1=$(free_port)
R2=$(free_port)
redis_node "$M0"
redis_node "$R1" --replicaof 127.0.0.1 "$M0"
redis_node "$R2" --replicaof 127.0.0.1 "$M0"

# ---- sentinels
SP=($(free_port) $(free_port) $(free_port))
SENTINEL_PIDS=()
sentinel_conf() { # sentinel_conf I [extra lines]: writes a fresh config
    local i=$1 dir="$WORK/s$1"
    shift
    mkdir -p "$dir"
    {
        echo "port ${SP[$i]}"
        echo "bind 127.0.0.1"
        echo "daemonize yes"
        echo "pidfile $dir/sentinel.pid"
        echo "logfile $dir/sentinel.log"
        echo "dir $dir"
        echo "sentinel monitor $MASTER 127.0.0.1 $(current_master_port_or "$M0") 2"
        echo "sentinel down-after-milliseconds $MASTER $DOWN_AFTER"
        echo "sentinel failover-timeout $MASTER 5000"
        echo "sentinel parallel-syncs $MASTER 2"
        local l
        for l in "$@"; do echo "$l"; done
    } >"$dir/sentinel.conf"
}
sentinel_start() { # sentinel_start I
    local i=$1 dir="$WORK/s$1"
    sentinel_run "$dir/sentinel.conf" || die "sentinel $i failed to start"
    wait_port "${SP[$i]}" || die "sentinel $i does not listen: $(tail -5 "$dir/sentinel.log")"
    SENTINEL_PIDS[$i]=$(cat "$dir/sentinel.pid")
}
sentinel_kill() { # sentinel_kill I
    local pid=${SENTINEL_PIDS[$1]:-}
    [ -n "$pid" ] || return 0
    kill -9 "$pid" 2>/dev/null
    reap "$pid"
    SENTINEL_PIDS[$1]=""
}
scli() { # scli I args...: to sentinel I (REDISCLI_AUTH when they need a password)
    "$REDIS_CLI" -p "${SP[$1]}" "${@:2}"
}
# The master's port as a live sentinel says, or $1 when none answers.
current_master_port_or() {
    local i p
    for i in 0 1 2; do
        [ -n "${SENTINEL_PIDS[$i]:-}" ] || continue
        p=$(scli "$i" SENTINEL get-master-addr-by-name "$MASTER" 2>/dev/null | sed -n 2p)
        [ -n "$p" ] && { echo "$p"; return; }
    done
    echo "$1"
}
master_port() { current_master_port_or ""; }

# Clients and sentinels stop with the redis-servers, however the script ends.
eval "nodes_$(declare -f redis_cleanup)"
redis_cleanup() {
    stop_clients
    local i
    for i in 0 1 2; do sentinel_kill "$i"; done
    nodes_redis_cleanup
}
for i in 0 1 2; do
    sentinel_conf "$i"
    sentinel_start "$i"
done

# Every live sentinel names the same master, which says it is one and has
# $1 replicas online (default 1: enough for wait=1; the old master joins as
# the second when Sentinel gets round to it).
topology_ready() {
    local m n i
    m=$(master_port)
    [ -n "$m" ] || return 1
    for i in 0 1 2; do
        [ -n "${SENTINEL_PIDS[$i]:-}" ] || continue
        [ "$(scli "$i" SENTINEL get-master-addr-by-name "$MASTER" 2>/dev/null | sed -n 2p)" = "$m" ] ||
            return 1
    done
    [ "$(rcli "$m" ROLE 2>/dev/null | head -1)" = master ] || return 1
    n=$(rcli "$m" INFO replication 2>/dev/null | tr -d '\r' | grep -c '^slave[0-9]*:.*state=online')
    [ "$n" -ge "${1:-1}" ]
}
# At start: the sentinels also know each other and both replicas.
sentinels_ready() {
    local i n
    topology_ready 2 || return 1
    for i in 0 1 2; do
        [ "$(scli "$i" SENTINEL replicas "$MASTER" 2>/dev/null | grep -c '^flags$')" -ge 2 ] || return 1
        n=$(scli "$i" SENTINEL master "$MASTER" 2>/dev/null | sed -n '/^num-other-sentinels$/{n;p}')
        [ "${n:-0}" -ge 2 ] || return 1
    done
}
wait_for 300 sentinels_ready || die "master, replicas and sentinels not ready"
ok "one master, two replicas online, three sentinels agreeing"

# ---- httpd: two nodes behind a round-robin balancer
sentinel_list() {
    echo "127.0.0.1:${SP[0]},127.0.0.1:${SP[1]},127.0.0.1:${SP[2]}"
}
URI_OPTS="prefix=e2e:&wait=1,500&connect_timeout=500&command_timeout=500${REDIS_SLOW_OPTIONS:-}"
URI="redis-sentinel://$(sentinel_list)/$MASTER?$URI_OPTS"
PA=$(free_port)
PB=$(free_port)
PF=$(free_port)
node() { # node NAME PORT BACKEND
    httpd_conf "$1" "$2" event "SessionStoreBackend $3" "SetEnv NODE_NAME $1" \
        "Header always set X-Node $1" \
        "<Location /status>" "    SetHandler sessstore-status" "    Require all granted" \
        "</Location>" "<Location /metrics>" "    SetHandler sessstore-metrics" \
        "    Require all granted" "</Location>"
}
node a "$PA" "$URI"
node b "$PB" "$URI"
balancer_conf front "$PF" 0 "$PA" "$PB"
httpd_start a "$PA"
httpd_start b "$PB"
httpd_start front "$PF"
F=http://127.0.0.1:$PF

# ---- the clients: each logs in, then increments its counter until told to
# stop, logging "start_ms end_ms code counter" per request. Started again,
# a client goes on with its session.
client() { # client C
    local c=$1 j="$WORK/jar.c$1" log="$WORK/client.$1.log" t0 t1 code n
    while [ ! -e "$STOP" ]; do
        if [ ! -s "$j" ] || ! grep -q sid "$j"; then
            code=$(curl -sS --max-time 10 -b "$j" -c "$j" -o /dev/null -w '%{http_code}' \
                -d httpd_username=alice -d httpd_password=secret "$F/dologin" 2>/dev/null)
            echo "$(now_ms) $(now_ms) login$code 0" >>"$log"
            [ "$code" = 302 ] || { sleep 0.2; continue; }
        fi
        t0=$(now_ms)
        code=$(curl -sS --max-time 10 -b "$j" -c "$j" -o "$WORK/client.$c.body" -w '%{http_code}' \
            "$F/private/cgi/count.cgi" 2>/dev/null)
        t1=$(now_ms)
        n=$(sed -n 's/^counter=//p' "$WORK/client.$c.body" 2>/dev/null)
        echo "$t0 $t1 $code ${n:-0}" >>"$log"
        if [ "$code" = 302 ]; then
            rm -f "$j" # the session is gone: log in again
        fi
        grep -q READONLY "$WORK/client.$c.body" 2>/dev/null && echo "$t0 $t1 READONLY 0" >>"$log"
        sleep 0.1
    done
}
for c in $(seq 1 $CLIENTS); do
    client "$c" &
    CLIENT_PIDS+=($!)
done
all_writing() { # every client has had a 200 since $1 (ms)
    awk -v t="$1" -v n="$CLIENTS" '$1 >= t && $3 == 200 && !(FILENAME in w) { w[FILENAME] = 1; k++ }
        END { exit k < n }' "$WORK"/client.*.log 2>/dev/null
}
t=$(now_ms)
wait_for 300 all_writing "$t" || die "the $CLIENTS clients are not all logged in and writing"
ok "$CLIENTS clients logged in and writing through two nodes"

# ---- judging one fault, from the clients' logs
SUMMARY=()
# judge NAME T_FAULT T_END T_SWITCH: what happened to requests between the two times.
# A client's counter goes back when acknowledged writes were lost: those
# acknowledged before the fault must all be there; those acknowledged during
# the failover window (the old master accepts writes until it is demoted, its
# replicas acknowledge them) are counted and printed.
judge() {
    local name=$1 tf=$2 te=$3 tsw=$4 c res first_fail last_fail first_ok lost_b lost_w lost_s fails ro
    res=$(for c in $(seq 1 $CLIENTS); do
        awk -v tf="$tf" -v te="$te" '
            $1 >= te { exit }
            $3 == 200 && $2 < tf && $4 + 0 > before { before = $4 }
            $3 == 200 && $1 >= tf && (!seen || $4 + 0 < low) { low = $4; seen = 1 }
            $3 == 200 { if ($4 + 0 <= max && $1 >= tf) lost += max - ($4 - 1); if ($4 + 0 > max) max = $4 }
            $1 < tf || $1 >= te { next }
            $3 == "READONLY" { ro++ }
            $3 == 302 { sess++ }
            $3 != 200 && $3 !~ /^login/ && $3 != "READONLY" {
                fails++; if (!ff || $1 < ff) ff = $1; if ($2 > lf) lf = $2 }
            END { lb = seen && before > low - 1 ? before - (low - 1) : 0
                  printf "%.0f %.0f %.0f %.0f %.0f %.0f %.0f\n", fails, ff, lf, lost - lb, sess, ro, lb }' \
            "$WORK/client.$c.log"
    done | awk '{ f += $1; if ($2 && (!ff || $2 < ff)) ff = $2; if ($3 > lf) lf = $3
                  lw += $4; ls += $5; ro += $6; lb += $7 }
                END { printf "%.0f %.0f %.0f %.0f %.0f %.0f %.0f\n", f, ff, lf, lw, ls, ro, lb }')
    read -r fails first_fail last_fail lost_w lost_s ro lost_b <<<"$res"
    # The first success after the first failure, on any client.
    first_ok=$(cat "$WORK"/client.*.log | awk -v t="${first_fail:-0}" -v te="$te" \
        '$3 == 200 && $1 > t && $1 < te { if (!m || $2 < m) m = $2 } END { printf "%.0f\n", m }')
    local down_ms=0 outage_ms=0
    if [ "$fails" -gt 0 ]; then
        down_ms=$((first_ok - tf))
        outage_ms=$((last_fail - tf))
    fi
    echo "# $name: $fails failed requests; writes again ${down_ms} ms after the fault," \
        "last failure ends ${outage_ms} ms after it; writes acknowledged before the fault" \
        "lost: $lost_b, acknowledged during the failover and lost: $lost_w;" \
        "sessions lost: $lost_s; READONLY seen by users: $ro"
    SUMMARY+=("$name: failed=$fails switch_ms=$((tsw > 0 ? tsw - tf : 0)) writes_again_ms=$down_ms last_failure_ms=$outage_ms lost_before=$lost_b lost_during=$lost_w lost_sessions=$lost_s")
    expect_eq "$name: no write acknowledged (wait=1) before the fault lost" 0 "$lost_b"
    expect_eq "$name: no session lost" 0 "$lost_s"
    expect_eq "$name: no READONLY text reaches a user" 0 "$ro"
    if [ "$fails" -gt 0 ]; then
        check "$name: writes work again within 2 x down-after + 2 s + $LOAD_MARGIN_MS ms ($down_ms ms)" \
            [ "$down_ms" -le $((LIMIT_MS + LOAD_MARGIN_MS)) ]
        if [ "$tsw" -gt 0 ]; then
            echo "# $name: writes again $((first_ok - tsw)) ms after the sentinels' switch"
            check "$name: writes again at most 1 s + $LOAD_MARGIN_MS ms after the sentinels' switch" \
                [ $((first_ok - tsw)) -le $((1000 + LOAD_MARGIN_MS)) ]
        fi
        check "$name: no failure later than 2 x down-after + 2 s + breaker + $LOAD_MARGIN_MS ms ($outage_ms ms)" \
            [ "$outage_ms" -le $((LIMIT_MS + 1000 + LOAD_MARGIN_MS)) ]
    else
        ok "$name: no request failed at all"
    fi
}

# switch_events T: "MS FROM TO" for each +switch-master any sentinel logged
# at or after T (ms since the epoch), in time order; every sentinel logs
# the same switch.
switch_events() {
    local d m y hms from to ms
    while read -r d m y hms from to; do
        ms=$(date -d "$m $d $y $hms" +%s%3N)
        [ "$ms" -ge "$1" ] && echo "$ms $from $to"
    done < <(grep -h '+switch-master' "$WORK"/s*/sentinel.log | awk '{ print $2, $3, $4, $5, $10, $12 }') |
        sort -n
}

# switch_ms T: when the first sentinel logged +switch-master after T (0 if
# none did).
switch_ms() {
    switch_events "$1" | awk 'NR == 1 { print $1 } END { if (NR == 0) print 0 }'
}

# switches T TE: every change of master the sentinels logged between T and
# TE, once each, in order ("+2259 ms 23648->12345"): more than one after a
# fault (a second failover) explains writes acknowledged in the window and
# lost.
switches() {
    switch_events "$1" | awk -v t="$1" -v te="$2" '$1 < te && !seen[$2 "->" $3]++ {
        printf "%s+%.0f ms %s->%s", sep, $1 - t, $2, $3; sep = ", " }'
}

# READONLY lines in the nodes' error logs so far.
readonly_lines() { cat "$WORK"/a/logs/error.log "$WORK"/b/logs/error.log | grep -c READONLY; }
# httpd children of both nodes (each logs the first failure of an outage).
httpd_children() {
    local n=0 name
    for name in a b; do
        n=$((n + $(pgrep -c -P "$(httpd_pid $name)" 2>/dev/null || echo 0)))
    done
    echo "$n"
}

# after_fault NAME T_FAULT: waits for recovery and a settled topology, then judges.
after_fault() {
    local name=$1 tf=$2 ro0=$3 t sw
    wait_for 300 topology_ready || not_ok "$name: topology not back"
    echo "# $name: topology settled after $(($(now_ms) - tf)) ms"
    t=$(now_ms)
    wait_for 100 all_writing "$t" || not_ok "$name: not every client writes again"
    sleep 1
    sw=$(switch_ms "$tf")
    echo "# $name: the sentinels switched masters $((sw - tf)) ms after the fault ($(switches "$tf" "$(now_ms)"))"
    judge "$name" "$tf" "$(now_ms)" "$sw"
    local ro=$(($(readonly_lines) - ro0)) kids
    kids=$(httpd_children)
    echo "# $name: READONLY in the error logs: $ro line(s), $kids httpd children"
    check "$name: READONLY logged at most once per httpd process ($ro <= $kids)" [ "$ro" -le "$kids" ]
}

# moved_from M: every live sentinel names a master other than M.
moved_from() {
    local i p
    for i in 0 1 2; do
        [ -n "${SENTINEL_PIDS[$i]:-}" ] || continue
        p=$(scli "$i" SENTINEL get-master-addr-by-name "$MASTER" 2>/dev/null | sed -n 2p)
        [ -n "$p" ] && [ "$p" != "$1" ] || return 1
    done
}
# restart_as_replica M: the killed master M comes back, empty, as a replica
# of the new one, once every sentinel names it (an empty node restarted
# before would be taken for the master by a sentinel not yet told).
restart_as_replica() {
    local m=$1
    wait_for 200 moved_from "$m" || not_ok "the sentinels do not agree on a new master"
    rm -f "$WORK/r$m/dump.rdb"
    "$REDIS_SERVER" --port "$m" --bind 127.0.0.1 --save '' --appendonly no \
        --unixsocket "$WORK/r$m/redis.sock" --unixsocketperm 777 --dir "$WORK/r$m" \
        --logfile "$WORK/r$m/redis.log" --pidfile "$WORK/r$m/redis.pid" --daemonize yes \
        --repl-diskless-sync yes --repl-diskless-sync-delay 0 --replicaof 127.0.0.1 "$(master_port)"
}

# kill_master NAME: kill -9 of the master under load, its node restarted
# empty as a replica once the sentinels moved on, then the fault judged.
# KILLED: the killed master's port.
kill_master() {
    local name=$1 m ro0 tf
    m=$(master_port)
    KILLED=$m
    ro0=$(readonly_lines)
    tf=$(now_ms)
    kill -9 "$(node_pid "$m")"
    echo "# $name: the master was on port $m"
    wait_for 200 moved_from "$m" || not_ok "$name: no failover after 20 s"
    restart_as_replica "$m"
    after_fault "$name" "$tf" "$ro0"
}

# ---- the status page and the metrics: the master and its two replicas,
# from INFO replication asked as the page is made
# replicas_shown M R1 R2: node a's status page names master M (role master)
# and both replicas online with a lag; its metrics count 2 replicas and give
# each a lag. The page is fetched into $WORK/status.txt and metrics.txt.
replicas_shown() {
    local m=$1 r
    curl -sS --max-time 5 "http://127.0.0.1:$PA/status" >"$WORK/status.txt" 2>/dev/null || return 1
    curl -sS --max-time 5 "http://127.0.0.1:$PA/metrics" >"$WORK/metrics.txt" 2>/dev/null || return 1
    grep -qx "redis_master: 127.0.0.1:$m (role master)" "$WORK/status.txt" || return 1
    grep -q "^redis_replicas: 2 connected: " "$WORK/status.txt" || return 1
    grep -q '^sessstore_redis_replicas{store=".*"} 2$' "$WORK/metrics.txt" || return 1
    grep -q "^sessstore_redis_master_info{store=\".*\",master=\"127.0.0.1:$m\",role=\"master\"} 1$" \
        "$WORK/metrics.txt" || return 1
    for r in "$2" "$3"; do
        grep -q "127.0.0.1:$r state=online lag=[0-9][0-9]* s offset_behind=[0-9][0-9]*" \
            "$WORK/status.txt" || return 1
        grep -q "^sessstore_redis_replica_lag_seconds{store=\".*\",replica=\"127.0.0.1:$r\"} [0-9][0-9]*$" \
            "$WORK/metrics.txt" || return 1
    done
}
if wait_for 100 replicas_shown "$M0" "$R1" "$R2"; then
    ok "status page and metrics: master 127.0.0.1:$M0, replicas $R1 and $R2 online with their lag"
else
    not_ok "status page and metrics: master 127.0.0.1:$M0, replicas $R1 and $R2 online with their lag"
    sed 's/^/#   /' "$WORK/status.txt" "$WORK/metrics.txt" | grep -i 'redis_\|replica' >&2 || true
fi

# --- 1. kill -9 of the master
kill_master "kill -9 of the master"
# The new master, with the other replica and the old master (back as a
# replica) under it.
nm=$(master_port)
others=()
for p in $M0 $R1 $R2; do [ "$p" != "$nm" ] && others+=("$p"); done
if [ -n "$nm" ] && [ "$nm" != "$KILLED" ] && wait_for 200 replicas_shown "$nm" "${others[@]}"; then
    ok "after kill -9: status page and metrics name the new master 127.0.0.1:$nm and its 2 replicas"
else
    not_ok "after kill -9: status page and metrics name the new master 127.0.0.1:${nm:-?} and its 2 replicas"
    sed 's/^/#   /' "$WORK/status.txt" "$WORK/metrics.txt" | grep -i 'redis_\|replica' >&2 || true
fi

# --- 2. SIGSTOP of the master, SIGCONT after the failover
m=$(master_port)
ro0=$(readonly_lines)
tf=$(now_ms)
kill -STOP "$(node_pid "$m")"
echo "# SIGSTOP of the master on port $m"
wait_for 200 moved_from "$m" ||
    not_ok "SIGSTOP: no failover after 20 s"
sleep 1
kill -CONT "$(node_pid "$m")"
after_fault "SIGSTOP of the master" "$tf" "$ro0"

# --- 3. SENTINEL FAILOVER: the old master stays alive, demoted
m=$(master_port)
ro0=$(readonly_lines)
tf=$(now_ms)
# (NOGOODSLAVE until a sentinel has seen a replica in good health)
wait_for 200 bash -c "$REDIS_CLI -p ${SP[1]} SENTINEL FAILOVER $MASTER | grep -q OK" ||
    not_ok "SENTINEL FAILOVER refused for 20 s"
echo "# SENTINEL FAILOVER away from port $m"
wait_for 200 moved_from "$m" ||
    not_ok "SENTINEL FAILOVER: no new master after 20 s"
tn=$(now_ms)
# With wait=1 a save succeeds only once the new master has a replica online
# again (seconds on a loaded machine): the failures before are WAIT
# shortfalls of every process alike, not stale connections.
wait_for 100 topology_ready || not_ok "SENTINEL FAILOVER: the new master has no replica online after 10 s"
tready=$(now_ms)
echo "# SENTINEL FAILOVER: every sentinel names the new master $((tn - tf)) ms after the fault, which has a replica online after $((tready - tf)) ms"
wait_for 100 bash -c "[ \"\$($REDIS_CLI -p $m ROLE | head -1)\" = slave ]" ||
    not_ok "SENTINEL FAILOVER: the old master is not demoted"
after_fault "SENTINEL FAILOVER (old master alive, demoted)" "$tf" "$ro0"
# Once the sentinels name the new master and it can meet wait=1, a process
# fails at most its first requests (a pooled connection to the old master,
# answering READONLY or short of replicas, is retried at once on a new one; a
# fresh one that does is not). The test sees both up to 100 ms late (it
# polls), so a request already on its way to the old master then may fail
# too: at most two per process (one CI run on a loaded machine had 11 with 10
# processes; another had 22 counted from the name alone, before the new
# master's replica had synced).
late=$(cat "$WORK"/client.*.log | awk -v t="$tready" -v te="$(now_ms)" \
    '$1 >= t && $1 < te && $3 != 200 && $3 !~ /^login/' | wc -l)
kids=$(httpd_children)
echo "# SENTINEL FAILOVER: $late failed request(s) started after the new master was named and had a replica"
check "SENTINEL FAILOVER: at most two failed requests per httpd process once the new master is named and has a replica ($late <= 2 x $kids)" \
    [ "$late" -le "$((2 * kids))" ]
check "the demoted master is alive and a replica" bash -c "[ \"\$($REDIS_CLI -p $m ROLE | head -1)\" = slave ]"

# --- 4. the first listed sentinel dead, then the master killed
sentinel_kill 0
sleep 0.5
kill_master "first listed sentinel dead + kill -9 of the master"

# --- 5. sentinels with requirepass: restarted with it, httpd told the
# password (a graceful restart), then the master killed
stop_clients
for i in 0 1 2; do
    sentinel_kill "$i"
    # sentinel rewrote its config with what it learnt: keep it, add the password
    [ -f "$WORK/s$i/sentinel.conf" ] || sentinel_conf "$i"
    # its rewrite holds "user default on nopass", which would beat requirepass
    sed -i '/^user default /d' "$WORK/s$i/sentinel.conf"
    printf 'requirepass %s\nsentinel sentinel-pass %s\n' "$SENTINEL_PASSWORD" "$SENTINEL_PASSWORD" \
        >>"$WORK/s$i/sentinel.conf"
    sentinel_start "$i"
done
export REDISCLI_AUTH=$SENTINEL_PASSWORD
# (the data nodes have no password: redis-cli's AUTH to them would fail, so
# data-node commands below go without REDISCLI_AUTH)
rcli() { env -u REDISCLI_AUTH "$REDIS_CLI" -p "$1" "${@:2}"; }
wait_for 300 topology_ready || die "sentinels with requirepass: not ready"
ok "sentinels restarted with requirepass"
URI="redis-sentinel://$(sentinel_list)/$MASTER?$URI_OPTS&sentinel_password=$SENTINEL_PASSWORD"
node a "$PA" "$URI"
node b "$PB" "$URI"
for n in a b; do
    gen=$(($(httpd_generations $n) + 1))
    httpd_signal $n graceful
    httpd_wait_ready $n "$([ $n = a ] && echo "$PA" || echo "$PB")" "$gen" || die "graceful of $n failed"
done
rm -f "$STOP"
for c in $(seq 1 $CLIENTS); do
    client "$c" &
    CLIENT_PIDS+=($!)
done
t=$(now_ms)
wait_for 300 all_writing "$t" || not_ok "requirepass: the clients do not all write again"
kill_master "sentinels with requirepass + kill -9 of the master"
stop_clients

# ---- the whole run, per client: the counter never went back
lost=0
for c in $(seq 1 $CLIENTS); do
    lost=$((lost + $(awk '$3 == 200 { if ($4 + 0 <= max) l += max - ($4 - 1); if ($4 + 0 > max) max = $4 }
        END { print l + 0 }' "$WORK/client.$c.log")))
done
total=$(cat "$WORK"/client.*.log | awk '$3 == 200' | wc -l)
failed=$(cat "$WORK"/client.*.log | awk '$3 != 200 && $3 !~ /^login/' | wc -l)
echo "# whole run: $total acknowledged writes, $failed failed requests, $lost acknowledged writes lost" \
    "(all during failover windows: see above)"

# ---- the status page names the master
m=$(master_port)
body=$(get st "http://127.0.0.1:$PA/status")
check "the status page names the current master (127.0.0.1:$m)" \
    bash -c "echo \"\$1\" | grep -q \"master 127.0.0.1:$m\"" _ "$body"
check "the status page hides the sentinel password" bash -c "! echo \"\$1\" | grep -q '$SENTINEL_PASSWORD'" _ "$body"

# ---- a WAIT shortfall fails the save: both replicas stopped
login w "$F" alice secret >/dev/null
get w "$F/private/cgi/count.cgi" >/dev/null
expect_eq "a write with replicas up succeeds" 200 "$(code)"
replicas=()
for p in $M0 $R1 $R2; do [ "$p" != "$m" ] && replicas+=("$p"); done
for p in "${replicas[@]}"; do kill -STOP "$(node_pid "$p")"; done
get w "$F/private/cgi/count.cgi" >/dev/null
wcode=$(code)
for p in "${replicas[@]}"; do kill -CONT "$(node_pid "$p")"; done
expect_eq "with both replicas stopped, WAIT 1 times out: the save fails (503)" 503 "$wcode"
check "the error log says how many replicas acknowledged" \
    grep -q "WAIT: 0 of 1 replicas acknowledged" "$WORK/a/logs/error.log" "$WORK/b/logs/error.log"
wait_for 100 topology_ready || not_ok "replicas back"

# ---- NOREPLICAS (min-replicas-to-write) fails the save
rcli "$m" CONFIG SET min-replicas-to-write 3 >/dev/null
get w "$F/private/cgi/count.cgi" >/dev/null
ncode=$(code)
rcli "$m" CONFIG SET min-replicas-to-write 0 >/dev/null
expect_eq "min-replicas-to-write 3 with two replicas: NOREPLICAS fails the save (503)" 503 "$ncode"
check "the error log names NOREPLICAS" grep -q "NOREPLICAS" "$WORK/a/logs/error.log" "$WORK/b/logs/error.log"
get w "$F/private/cgi/count.cgi" >/dev/null
expect_eq "and writes work again once it is lifted" 200 "$(code)"

# ---- distinct log lines: unknown master name, no sentinel reachable
PC=$(free_port)
DEAD1=$(free_port)
DEAD2=$(free_port)
node c "$PC" "redis-sentinel://$(sentinel_list)/nosuchmaster?sentinel_password=$SENTINEL_PASSWORD"
httpd_start c "$PC"
login u "http://127.0.0.1:$PC" alice secret >/dev/null
expect_eq "unknown master name: the login fails (503)" 503 "$(code)"
check "... logged as 'unknown master name'" grep -q "unknown master name 'nosuchmaster'" "$WORK/c/logs/error.log"
httpd_stop c
node d "$(free_port)" "redis-sentinel://127.0.0.1:$DEAD1,127.0.0.1:$DEAD2/$MASTER"
PD=$(grep -o 'Listen 127.0.0.1:[0-9]*' "$WORK/d/httpd.conf" | cut -d: -f2)
httpd_start d "$PD"
login u "http://127.0.0.1:$PD" alice secret >/dev/null
expect_eq "no sentinel reachable: the login fails (503)" 503 "$(code)"
check "... logged as 'no sentinel reachable'" grep -q "no sentinel reachable: 2 of 2 asked" "$WORK/d/logs/error.log"
httpd_stop d

for name in a b; do
    check "no crashed child on node $name" bash -c "! grep -Eq 'segfault|exit signal' '$WORK/$name/logs/error.log'"
done
echo "# failover summary (down-after-milliseconds $DOWN_AFTER):"
for l in "${SUMMARY[@]}"; do echo "#   $l"; done

redis_cleanup
finish
