#!/usr/bin/env bash
# Redis Cluster (redis-cluster://, rediss-cluster://) against real
# redis-server processes: three masters and three replicas made by
# redis-cli --cluster create, one httpd in front, 30 clients each writing its
# session (the probe's counter) over and over while the cluster changes:
#
#   - sessions land on all three masters (their keys' slots, CLUSTER KEYSLOT);
#   - kill -9 of a master: clients on the other masters never see an error;
#     those on the dead one get 503s until its replica is promoted, then
#     their sessions are back (the counter goes on);
#   - redis-cli --cluster reshard of a slot range holding live sessions, and a
#     slot migrated by hand (SETSLOT IMPORTING/MIGRATING, MIGRATE, held open a
#     moment): no session lost, no 5xx, MOVED and ASK redirects followed
#     (the status page counts them);
#   - a TLS cluster (tls-cluster yes, mutual TLS, the client key readable by
#     root alone): sessions over every master.
#
# The cluster runs with cluster-require-full-coverage no, as
# docs/deployment.md advises: otherwise every node refuses every slot while
# one master's slots are without an owner. Measured times are printed as
# "# measured" lines.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_nodes.sh"

OPENSSL=${OPENSSL:-/usr/bin/openssl}
[ -x "$OPENSSL" ] || die "openssl not found at $OPENSSL (install openssl)"
PROBE=${PROBE:-$(dirname "$MODULE")/../tests/probe/.libs/mod_sessprobe.so}
[ -f "$PROBE" ] || die "the probe module $PROBE is not built (make check builds it)"
command -v sha256sum >/dev/null || die "sha256sum not found (install coreutils)"
NCLIENTS=30
PREFIX=e2e:

# ---- the cluster ----
# cluster_start NAME N REPLICAS [redis-server options...]: N nodes
# NAME1..NAMEN, then redis-cli --cluster create; ports in $NAME_PORTS.
cluster_start() {
    local name=$1 n=$2 replicas=$3 i p ports=() addrs=()
    shift 3
    for i in $(seq 1 "$n"); do
        p=$(free_port)
        ports+=("$p")
        redis_start "$name$i" "$p" --cluster-enabled yes --cluster-config-file nodes.conf \
            --cluster-port "$(free_port)" \
            --cluster-node-timeout 1000 --cluster-require-full-coverage no "$@"
        addrs+=("127.0.0.1:$p")
    done
    eval "${name}_PORTS=(${ports[*]})"
    "$REDIS_CLI" "${CLI_TLS[@]+"${CLI_TLS[@]}"}" --cluster create "${addrs[@]}" \
        --cluster-replicas "$replicas" --cluster-yes >"$WORK/$name.create.log" 2>&1 ||
        die "redis-cli --cluster create failed: $(tail -5 "$WORK/$name.create.log")"
    for p in "${ports[@]}"; do
        wait_for 200 cluster_ok "$p" || die "node $p: the cluster is not ok"
    done
}

rcli() { # rcli PORT args...
    local port=$1
    shift
    "$REDIS_CLI" "${CLI_TLS[@]+"${CLI_TLS[@]}"}" -p "$port" "$@"
}

cluster_ok() {
    rcli "$1" cluster info 2>/dev/null | grep -q 'cluster_state:ok' &&
        [ "$(rcli "$1" cluster nodes 2>/dev/null | grep -cw connected)" -ge "${EXPECT_NODES:-6}" ]
}

# The port of the master owning slot $2, as node $1 sees it (CLUSTER SHARDS
# as redis-cli prints it: "slots", start/end pairs, "nodes", name/value lines).
slot_owner() {
    rcli "$1" cluster shards | awk -v s="$2" '
        /^slots$/ { inslots = 1; has = 0; lo = ""; next }
        /^nodes$/ { inslots = 0; next }
        inslots { if (lo == "") lo = $0; else { if (s + 0 >= lo + 0 && s + 0 <= $0 + 0) has = 1; lo = "" }; next }
        /^port$/ { getline; port = $0; next }
        /^tls-port$/ { getline; port = $0; next }
        /^role$/ { getline; role = $0; next }
        /^health$/ { getline; if (has && role == "master" && $0 == "online") print port; next }' |
        head -1
}

# The slot ranges ("start end" lines) of the master on port $2, as node $1 sees them.
master_slots() {
    rcli "$1" cluster shards | awk -v me="$2" '
        /^slots$/ { inslots = 1; n = 0; next }
        /^nodes$/ { inslots = 0; next }
        inslots { r[n++] = $0; next }
        /^port$/ { getline; port = $0; next }
        /^tls-port$/ { getline; port = $0; next }
        /^role$/ { getline; if ($0 == "master" && port == me) for (k = 0; k < n; k += 2) print r[k], r[k + 1]; next }' |
        sort -n
}

# The name (r1...) of the node on port $1.
node_name() {
    local k
    for k in "${!r_PORTS[@]}"; do [ "${r_PORTS[$k]}" = "$1" ] && echo "r$((k + 1))"; done
}

# The Redis key of the session in jar $1, and its slot.
session_key() {
    printf '%s%s' "$PREFIX" "$(printf '%s' "$(jar_sid "$1")" | sha256sum | cut -c1-64)"
}

# ---- httpd ----
status() { # status PORT FIELD: a counter of the status page
    curl -s --max-time "$CURL_MAX_TIME" "http://127.0.0.1:$1/status" | sed -n "s/^$2: //p"
}
# One process (the counters are per process), threads enough for the clients.
ONE_PROCESS=("StartServers 1" "ServerLimit 1" "ThreadsPerChild 64" "MaxRequestWorkers 64"
    "MinSpareThreads 1" "MaxSpareThreads 64")
web() { # web NAME PORT URI
    httpd_conf "$1" "$2" event "SessionStoreBackend $3" "${ONE_PROCESS[@]}" \
        "LoadModule sessprobe_module $PROBE" \
        "<Location /probe>" "SetHandler sessprobe" "</Location>" \
        "<Location /status>" "SetHandler sessstore-status" "</Location>" \
        "<Location /metrics>" "SetHandler sessstore-metrics" "</Location>"
}

# ---- load ----
# client I URL: until $WORK/stop exists, /probe?w=1 with jar c$I, one line
# per answer in $TOP_WORK/load.I: "ms code n".
client() {
    local i=$1 url=$2 out code n
    out=$TOP_WORK/body.$i
    while [ ! -e "$TOP_WORK/stop" ]; do
        code=$(curl -s --max-time "$CURL_MAX_TIME" -b "$TOP_WORK/jar.c$i" -c "$TOP_WORK/jar.c$i" -o "$out" \
            -w '%{http_code}' "$url/probe?w=1")
        n=-
        [ "$code" = 200 ] && n=$(tr -dc 0-9 <"$out")
        echo "$(date +%s%3N) $code ${n:--}" >>"$TOP_WORK/load.$i"
        sleep 0.1
    done
}
load_start() { # load_start URL
    rm -f "$TOP_WORK/stop" "$TOP_WORK"/load.*
    LOAD_PIDS=()
    local i
    for i in $(seq 1 $NCLIENTS); do
        client "$i" "$1" &
        LOAD_PIDS+=($!)
    done
}
load_stop() {
    touch "$TOP_WORK/stop"
    wait "${LOAD_PIDS[@]}"
}
# load_verdict I: the client's counter went up by one on every 200 and never
# restarted (a lost session answers 0). Prints: answers 200, other answers,
# counter breaks, time of the first and last other answer, their codes.
load_verdict() {
    awk '
        $2 == 200 { if (prev != "" && $3 != prev + 1) lost++; prev = $3; ok++; next }
        { bad++; if (first == "") first = $1; last = $1; codes[$2] = 1 }
        END {
            c = ""; for (k in codes) c = c k " ";
            printf "%d %d %d %s %s %s\n", ok + 0, bad + 0, lost + 0, first == "" ? "-" : first,
                last == "" ? "-" : last, c == "" ? "-" : c
        }' "$TOP_WORK/load.$1"
}

# Log the clients in: one session each, then the slot and master of each.
open_sessions() { # open_sessions URL SEED_PORT
    local i
    for i in $(seq 1 $NCLIENTS); do
        rm -f "$WORK/jar.c$i"
        curl -s --max-time "$CURL_MAX_TIME" -b "$WORK/jar.c$i" -c "$WORK/jar.c$i" "$1/probe?w=1" >/dev/null
    done
    locate_sessions "$2"
}
locate_sessions() { # locate_sessions SEED_PORT: SLOT[i], OWNER[i]
    local i
    for i in $(seq 1 $NCLIENTS); do
        SLOT[$i]=$(rcli "$1" cluster keyslot "$(session_key c$i)")
        OWNER[$i]=$(slot_owner "$1" "${SLOT[$i]}")
    done
}

# ==== plain cluster ====
cluster_start r 6 1
P1=${r_PORTS[0]}
SEEDS="127.0.0.1:${r_PORTS[0]},127.0.0.1:${r_PORTS[1]}"
PW=$(free_port)
TIMEOUTS=${REDIS_SLOW_OPTIONS:-&connect_timeout=200&command_timeout=300}
web w "$PW" "redis-cluster://$SEEDS?prefix=$PREFIX&breaker=200$TIMEOUTS"
httpd_start w "$PW"
W=http://127.0.0.1:$PW

expect_eq "the status page counts 6 cluster nodes" 6 "$(status "$PW" cluster_nodes)"
curl -s --max-time "$CURL_MAX_TIME" "http://127.0.0.1:$PW/metrics" >"$WORK/metrics.prom"
check "the metrics page is valid Prometheus text" python3 "$E2E_DIR/prom_check.py" "$WORK/metrics.prom"
check "... and counts 6 cluster nodes too" \
    grep -q '^sessstore_store_cluster_nodes{store="redis-cluster://.*"} 6$' "$WORK/metrics.prom"
MASTERS=$(for p in "${r_PORTS[@]}"; do rcli "$p" role | head -1 | grep -q master && echo "$p"; done | sort)
expect_eq "three masters" 3 "$(echo "$MASTERS" | wc -l)"

# The per-owner index on the cluster: each index command goes to the node of
# its one key. Logins by name, then "sessstore revoke --user" ends one
# user's sessions; SCAN of every session is refused there.
SESSSTORE=${SESSSTORE:-$(cd "$(dirname "$MODULE")/.." && pwd)/cli/sessstore}
[ -x "$SESSSTORE" ] || die "sessstore not found at $SESSSTORE (make builds cli/sessstore)"
PU=$(free_port)
httpd_conf u "$PU" event "SessionStoreBackend redis-cluster://$SEEDS?prefix=$PREFIX$TIMEOUTS"
httpd_start u "$PU"
U=http://127.0.0.1:$PU
expect_eq "index: alice logs in" 302 "$(login ua1 "$U" alice secret)"
expect_eq "index: alice logs in again" 302 "$(login ua2 "$U" alice secret)"
expect_eq "index: bob logs in" 302 "$(login ub1 "$U" bob hunter2)"
"$SESSSTORE" -b "redis-cluster://$SEEDS?prefix=$PREFIX" revoke --user alice >"$WORK/ss.out" 2>"$WORK/ss.err"
expect_eq "index: sessstore revoke --user alice exits 0" 0 "$?"
expect_eq "index: it ends her 2 sessions" "revoked 2 session(s) of alice" "$(cat "$WORK/ss.out")"
get ua1 "$U/private/" >/dev/null
expect_eq "index: her first session is ended" 302 "$(code)"
get ua2 "$U/private/" >/dev/null
expect_eq "index: her second too" 302 "$(code)"
get ub1 "$U/private/" >/dev/null
expect_eq "index: bob keeps his" 200 "$(code)"
"$SESSSTORE" -b "redis-cluster://$SEEDS?prefix=$PREFIX" count >"$WORK/ss.out" 2>"$WORK/ss.err"
expect_eq "index: count (a SCAN of every session) is refused on a cluster" 1 "$?"
httpd_stop u

open_sessions "$W" "$P1"
for i in $(seq 1 $NCLIENTS); do
    [ -n "$(jar_sid c$i)" ] || not_ok "client $i has no session"
done
# Each session's key is where its slot says, and nowhere else.
misplaced=0
for i in $(seq 1 $NCLIENTS); do
    [ "$(rcli "${OWNER[$i]}" exists "$(session_key c$i)")" = 1 ] || misplaced=$((misplaced + 1))
done
expect_eq "every session's key is on the master of its slot (CLUSTER KEYSLOT)" 0 "$misplaced"
spread=$(printf '%s\n' "${OWNER[@]}" | sort -u | tr '\n' ' ')
expect_eq "the $NCLIENTS sessions spread over all three masters" "$(echo $MASTERS) " "$spread"
check "no redirect was needed with a fresh map" test "$(status "$PW" moved)" = 0

# ---- kill -9 of a master under load ----
VICTIM=${OWNER[1]}
load_start "$W"
sleep 2
t_kill=$(date +%s%3N)
kill -9 "$(cat "$WORK/$(node_name "$VICTIM")/redis.pid")"
OTHER=$(echo "$MASTERS" | grep -vx "$VICTIM" | head -1)
promoted() { [ -n "$(slot_owner "$OTHER" "${SLOT[1]}")" ] && [ "$(slot_owner "$OTHER" "${SLOT[1]}")" != "$VICTIM" ]; }
wait_for 150 promoted || not_ok "no replica took over the slots of the killed master"
t_promoted=$(date +%s%3N)
sleep 3
load_stop
victims=0 others_bad=0 victims_back=0 lost=0 last_bad=0
for i in $(seq 1 $NCLIENTS); do
    read -r okn badn lostn first last codes <<<"$(load_verdict "$i")"
    lost=$((lost + lostn))
    if [ "${OWNER[$i]}" = "$VICTIM" ]; then
        victims=$((victims + 1))
        [ "$(tail -1 "$WORK/load.$i" | cut -d' ' -f2)" = 200 ] && victims_back=$((victims_back + 1))
        [ "$last" != - ] && [ "$last" -gt "$last_bad" ] && last_bad=$last
    else
        others_bad=$((others_bad + badn))
        [ "$badn" = 0 ] || echo "# client $i (master ${OWNER[$i]}): $badn failed answers ($codes)"
    fi
done
check "some sessions were on the killed master" test "$victims" -gt 0
expect_eq "sessions on the other masters: no failed request during the failover" 0 "$others_bad"
expect_eq "sessions on the killed master are back after the promotion" "$victims" "$victims_back"
expect_eq "no session lost or rolled back (every counter went on by one)" 0 "$lost"
echo "# measured: kill -9 to replica promoted (cluster-node-timeout 1000 ms): $((t_promoted - t_kill)) ms"
[ "$last_bad" -gt 0 ] && echo "# measured: kill -9 to the last failed request: $((last_bad - t_kill)) ms"
EXPECT_NODES=5
P1=$OTHER # r1 may be dead
WAS_VICTIM=("${OWNER[@]}")
locate_sessions "$P1"
NEWMASTER=${OWNER[1]}
taken=0
for i in $(seq 1 $NCLIENTS); do
    [ "${WAS_VICTIM[$((i - 1))]}" = "$VICTIM" ] && [ "${OWNER[$i]}" = "$NEWMASTER" ] && taken=$((taken + 1))
done
check "a former replica ($NEWMASTER) now serves the killed master's slots" \
    bash -c "[ -n '$NEWMASTER' ] && ! grep -qx '$NEWMASTER' <<<'$MASTERS'"
expect_eq "... all of its sessions" "$victims" "$taken"
check "the failover made httpd read the slot map again" test "$(status "$PW" slotmap_refreshes)" -gt 0

# ---- reshard of a slot range holding live sessions, under load ----
node_id() { rcli "$1" cluster myid; }
# redis-cli --cluster reshard takes the source's lowest slots first: the
# source is the master whose second lowest session slot comes first among its
# slots, and the range moved ends at that slot, so that it holds two sessions
# or more (redis-cli moves a slot in some 50 ms here).
best=
for m in $(printf '%s\n' "${OWNER[@]}" | sort -u); do
    first=$(for i in $(seq 1 $NCLIENTS); do [ "${OWNER[$i]}" = "$m" ] && echo "${SLOT[$i]}"; done | sort -n | sed -n 2p)
    idx=$(master_slots "$P1" "$m" | awk -v w="$first" '{ for (s = $1; s <= $2; s++) { n++; if (s == w) { print n; exit } } }')
    if [ -n "$first" ] && [ -n "$idx" ] && { [ -z "$best" ] || [ "$idx" -lt "${best%% *}" ]; }; then best="$idx $m $first"; fi
done
read -r nslots SRC want <<<"$best"
[ -n "$nslots" ] || die "cannot find the slots of the sessions' masters"
DST=$(printf '%s\n' "${OWNER[@]}" | grep . | sort -u | grep -vx "$SRC" | head -1)
[ -n "$DST" ] || die "no master but $SRC holds sessions"
# The sessions that move with those slots: on SRC, at or below the last one.
inrange=$(master_slots "$P1" "$SRC" | awk -v w="$want" '{ for (s = $1; s <= $2 && s <= w; s++) print s }' >"$WORK/moving"
    for i in $(seq 1 $NCLIENTS); do [ "${OWNER[$i]}" = "$SRC" ] && echo "${SLOT[$i]}"; done | grep -cxFf "$WORK/moving")
check "the slot range to reshard holds live sessions ($inrange)" test "$inrange" -ge 2
moved_before=$(status "$PW" moved)
load_start "$W"
sleep 1
t0=$(date +%s%3N)
"$REDIS_CLI" --cluster reshard "127.0.0.1:$SRC" --cluster-from "$(node_id "$SRC")" \
    --cluster-to "$(node_id "$DST")" --cluster-slots "$nslots" --cluster-yes \
    >"$WORK/reshard.log" 2>&1 || not_ok "redis-cli --cluster reshard failed: $(tail -3 "$WORK/reshard.log")"
t1=$(date +%s%3N)
echo "# measured: redis-cli --cluster reshard of $nslots slots holding $inrange live sessions: $((t1 - t0)) ms"
sleep 1

# A slot migrated by hand, held half-way for 2 s: the key is already on the
# destination, so its old owner answers ASK.
for i in $(seq 1 $NCLIENTS); do
    [ "$(slot_owner "$P1" "${SLOT[$i]}")" = "$DST" ] && continue
    MIG=$i
    break
done
MSRC=$(slot_owner "$P1" "${SLOT[$MIG]}")
MS=${SLOT[$MIG]}
rcli "$DST" cluster setslot "$MS" importing "$(node_id "$MSRC")" >/dev/null
rcli "$MSRC" cluster setslot "$MS" migrating "$(node_id "$DST")" >/dev/null
for k in $(rcli "$MSRC" cluster getkeysinslot "$MS" 100); do
    rcli "$MSRC" migrate 127.0.0.1 "$DST" "$k" 0 5000 >/dev/null
done
sleep 2
for p in "$DST" "$MSRC"; do rcli "$p" cluster setslot "$MS" node "$(node_id "$DST")" >/dev/null; done
sleep 1
load_stop
bad=0 lost=0
for i in $(seq 1 $NCLIENTS); do
    read -r okn badn lostn first last codes <<<"$(load_verdict "$i")"
    bad=$((bad + badn))
    lost=$((lost + lostn))
    [ "$badn" = 0 ] || echo "# client $i: $badn failed answers ($codes)"
done
expect_eq "reshard under load: no failed request" 0 "$bad"
expect_eq "reshard under load: 0 sessions lost (every counter went on by one)" 0 "$lost"
locate_sessions "$P1"
check "the resharded sessions now live on the destination" \
    test "$(slot_owner "$P1" "$want")" = "$DST"
missing=0
for i in $(seq 1 $NCLIENTS); do
    [ "$(rcli "${OWNER[$i]}" exists "$(session_key c$i)")" = 1 ] || missing=$((missing + 1))
done
expect_eq "every session's key is on its slot's new master" 0 "$missing"
MOVED=$(status "$PW" moved)
ASKED=$(status "$PW" asked)
echo "# measured: redirects followed: MOVED $MOVED, ASK $ASKED; slot maps read $(status "$PW" slotmap_refreshes)"
check "MOVED redirects were followed (counted: $MOVED)" test "$MOVED" -gt "$moved_before"
check "ASK redirects were followed (counted: $ASKED)" test "$ASKED" -gt 0
check "no child crashed" bash -c "! grep -Eq 'segfault|exit signal' '$WORK/w/logs/error.log'"
httpd_stop w
for k in "${!r_PORTS[@]}"; do redis_stop "r$((k + 1))"; done

# ==== TLS cluster ====
PKI=$WORK/pki
mkdir -p "$PKI"
chmod 755 "$PKI"
K=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
{
    "$OPENSSL" req -x509 "${K[@]}" -keyout "$PKI/ca.key" -out "$PKI/ca.pem" -days 2 \
        -subj "/CN=test ca" &&
        for n in server client; do
            "$OPENSSL" req "${K[@]}" -keyout "$PKI/$n.key" -out "$PKI/$n.csr" -subj "/CN=$n" &&
                printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$PKI/$n.ext" &&
                "$OPENSSL" x509 -req -in "$PKI/$n.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" \
                    -CAcreateserial -days 2 -extfile "$PKI/$n.ext" -out "$PKI/$n.pem" || exit 1
        done
} >"$PKI/openssl.log" 2>&1 || die "making certificates failed: $(tail -5 "$PKI/openssl.log")"
chmod 644 "$PKI/server.key" # the servers run as this user
chmod 600 "$PKI/client.key" # root's alone: httpd's parent loads it for its children
CLI_TLS=(--tls --cacert "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client.key")
# Each node listens on TLS only; the cluster bus and replication use TLS too.
EXPECT_NODES=3
TLS_NODE=(--tls-cluster yes --tls-replication yes --tls-cert-file "$PKI/server.pem"
    --tls-key-file "$PKI/server.key" --tls-ca-cert-file "$PKI/ca.pem" --tls-auth-clients yes)
tls_cluster_start() {
    local i p ports=() addrs=()
    for i in 1 2 3; do
        p=$(free_port)
        ports+=("$p")
        mkdir -p "$WORK/t$i"
        chmod 777 "$WORK/t$i"
        "$REDIS_SERVER" --port 0 --tls-port "$p" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$WORK/t$i" --logfile "$WORK/t$i/redis.log" --pidfile "$WORK/t$i/redis.pid" \
            --daemonize yes --cluster-enabled yes --cluster-config-file nodes.conf \
            --cluster-port "$(free_port)" \
            --cluster-node-timeout 1000 --cluster-require-full-coverage no "${TLS_NODE[@]}" ||
            die "redis-server t$i failed to start"
        REDIS_STARTED+=("t$i")
        addrs+=("127.0.0.1:$p")
    done
    t_PORTS=("${ports[@]}")
    for p in "${ports[@]}"; do wait_for 50 bash -c "'$REDIS_CLI' ${CLI_TLS[*]} -p $p ping 2>/dev/null | grep -q PONG" || die "TLS node $p does not answer"; done
    "$REDIS_CLI" "${CLI_TLS[@]}" --cluster create "${addrs[@]}" --cluster-replicas 0 \
        --cluster-yes >"$WORK/t.create.log" 2>&1 ||
        die "redis-cli --cluster create (TLS) failed: $(tail -5 "$WORK/t.create.log")"
    for p in "${ports[@]}"; do wait_for 200 cluster_ok "$p" || die "TLS node $p: the cluster is not ok"; done
}
tls_cluster_start
PT=$(free_port)
web t "$PT" "rediss-cluster://127.0.0.1:${t_PORTS[0]}?prefix=$PREFIX&tls_ca_file=$PKI/ca.pem&tls_cert_file=$PKI/client.pem&tls_key_file=$PKI/client.key${REDIS_SLOW_OPTIONS:-}"
httpd_start t "$PT"
T=http://127.0.0.1:$PT
expect_eq "TLS: the status page counts 3 cluster nodes" 3 "$(status "$PT" cluster_nodes)"
open_sessions "$T" "${t_PORTS[0]}"
spread=$(printf '%s\n' "${OWNER[@]}" | sort -u | wc -l)
expect_eq "TLS: the sessions spread over all three masters" 3 "$spread"
good=0
for i in $(seq 1 $NCLIENTS); do
    n=$(curl -s --max-time "$CURL_MAX_TIME" -b "$WORK/jar.c$i" -c "$WORK/jar.c$i" "$T/probe?w=1")
    [ "$n" = 1 ] && good=$((good + 1))
done
expect_eq "TLS: every session read back and written again (counter 1)" $NCLIENTS "$good"
check "TLS: no error in the log" bash -c "! grep -E '\\[sessstore:(error|crit)' '$WORK/t/logs/error.log'"
finish
