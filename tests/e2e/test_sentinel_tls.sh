#!/usr/bin/env bash
# rediss-sentinel://: TLS to the sentinel and to the data nodes, with one set
# of tls_* options (a private CA, a client certificate: every server asks for
# one). A TLS-only master and replica, a TLS-only sentinel; one httpd node.
# A login and writes work, the status page names the master, and after
# SENTINEL FAILOVER writes go to the new master, over TLS, without touching
# httpd.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_nodes.sh"

OPENSSL=${OPENSSL:-/usr/bin/openssl}
[ -x "$OPENSSL" ] || die "openssl not found at $OPENSSL (install openssl)"

# ---- certificates: a CA, the servers' (127.0.0.1), the client's
PKI=$WORK/pki
mkdir -p "$PKI"
chmod 755 "$PKI"
K=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
mkcert() { # mkcert NAME SAN
    "$OPENSSL" req "${K[@]}" -keyout "$PKI/$1.key" -out "$PKI/$1.csr" -subj "/CN=$1" &&
        printf 'subjectAltName=%s\n' "$2" >"$PKI/$1.ext" &&
        "$OPENSSL" x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" \
            -CAcreateserial -days 2 -extfile "$PKI/$1.ext" -out "$PKI/$1.pem"
}
{
    "$OPENSSL" req -x509 "${K[@]}" -keyout "$PKI/ca.key" -out "$PKI/ca.pem" -days 2 \
        -subj "/CN=test ca" && mkcert server "IP:127.0.0.1" && mkcert client "DNS:client"
} >"$PKI/openssl.log" 2>&1 || die "making certificates failed: $(tail -5 "$PKI/openssl.log")"
chmod 644 "$PKI"/*.key # the redis-servers run as this user; httpd loads them as root
TLS_SERVER=(--tls-cert-file "$PKI/server.pem" --tls-key-file "$PKI/server.key"
    --tls-ca-cert-file "$PKI/ca.pem" --tls-auth-clients yes --tls-replication yes
    --repl-diskless-sync yes --repl-diskless-sync-delay 0
    --tls-client-cert-file "$PKI/client.pem" --tls-client-key-file "$PKI/client.key")
RCLI=("$REDIS_CLI" --tls --cacert "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client.key"
    -h 127.0.0.1)

# ---- a TLS-only master and replica, a TLS-only sentinel
M=$(free_port)
R=$(free_port)
S=$(free_port)
redis_start m "$M" --port 0 --tls-port "$M" "${TLS_SERVER[@]}"
redis_start r "$R" --port 0 --tls-port "$R" "${TLS_SERVER[@]}" --replicaof 127.0.0.1 "$M"
mkdir -p "$WORK/s"
cat >"$WORK/s/sentinel.conf" <<CONF
port 0
tls-port $S
bind 127.0.0.1
daemonize yes
pidfile $WORK/s/sentinel.pid
logfile $WORK/s/sentinel.log
dir $WORK/s
tls-cert-file $PKI/server.pem
tls-key-file $PKI/server.key
tls-ca-cert-file $PKI/ca.pem
tls-client-cert-file $PKI/client.pem
tls-client-key-file $PKI/client.key
tls-auth-clients yes
tls-replication yes
sentinel monitor m 127.0.0.1 $M 1
sentinel down-after-milliseconds m 1000
sentinel failover-timeout m 5000
CONF
if command -v redis-sentinel >/dev/null; then
    redis-sentinel "$WORK/s/sentinel.conf"
else
    "$REDIS_SERVER" "$WORK/s/sentinel.conf" --sentinel
fi || die "sentinel failed to start"
wait_port "$S" || die "sentinel does not listen: $(tail -5 "$WORK/s/sentinel.log")"
eval "nodes_$(declare -f redis_cleanup)"
redis_cleanup() {
    local pid
    pid=$(cat "$WORK/s/sentinel.pid" 2>/dev/null) && kill "$pid" 2>/dev/null && reap "$pid"
    nodes_redis_cleanup
}
scli() { "${RCLI[@]}" -p "$S" "$@"; }
master_port() { scli SENTINEL get-master-addr-by-name m 2>/dev/null | sed -n 2p; }
replica_known() { scli SENTINEL replicas m 2>/dev/null | grep -q "^127.0.0.1:$R$"; }
wait_for 200 replica_known || die "the sentinel does not see the replica over TLS"
replica_online() {
    "${RCLI[@]}" -p "$M" INFO replication 2>/dev/null | tr -d '\r' | grep -q '^slave0:.*state=online'
}
wait_for 200 replica_online || die "the replica does not sync over TLS: $(tail -3 "$WORK/r/redis.log")"
# Online is not yet acknowledging: the first WAIT after the sync can take
# longer than 500 ms (seen on a loaded CI machine, where it then failed the
# login). Ready once a write of our own is acknowledged by the replica
# within that time.
replica_acks() {
    "${RCLI[@]}" -p "$M" SET stls-ready 1 >/dev/null 2>&1 &&
        [ "$("${RCLI[@]}" -p "$M" WAIT 1 500 2>/dev/null | tr -d '\r')" = 1 ]
}
wait_for 100 replica_acks || die "the replica does not acknowledge writes over TLS"
ok "a TLS-only sentinel watches a TLS-only master and replica"

# ---- httpd
P=$(free_port)
TLS="tls_ca_file=$PKI/ca.pem&tls_cert_file=$PKI/client.pem&tls_key_file=$PKI/client.key"
# wait=1,2000: the first save's WAIT still missed 500 ms in two CI runs out of
# about fifteen, after the readiness check above had passed (the replica's
# acknowledgement late on a busy machine; 400 WAITs over TLS alone take 6 ms
# at most), failing the login and every check after it. What this test checks
# is the TLS path, not the replica's speed.
httpd_conf a "$P" event \
    "SessionStoreBackend rediss-sentinel://127.0.0.1:$S/m?prefix=stls:&wait=1,2000&$TLS${REDIS_SLOW_OPTIONS:-}" \
    "<Location /status>" "SetHandler sessstore-status" "Require all granted" "</Location>"
httpd_start a "$P"
A=http://127.0.0.1:$P

expect_eq "a login through rediss-sentinel:// works" 302 "$(login u "$A" alice secret)"
get u "$A/private/cgi/count.cgi" >/dev/null
expect_eq "a write (with WAIT 1 over TLS) works" 200 "$(code)"
check "the session is on the master, written over TLS" \
    bash -c "[ \"\$(${RCLI[*]} -p $M --scan --pattern 'stls:*' | wc -l)\" -ge 1 ]"
check "the status page names the master" \
    bash -c "curl -s '$A/status' | grep -q 'master 127.0.0.1:$M'"

scli SENTINEL FAILOVER m >/dev/null
moved() { [ "$(master_port)" = "$R" ]; }
wait_for 200 moved || not_ok "SENTINEL FAILOVER: the replica not promoted after 20 s"
t0=$SECONDS
writes_again() {
    get u "$A/private/cgi/count.cgi" >/dev/null
    [ "$(code)" = 200 ]
}
# (with wait=1, once the old master, the only replica, has resynchronised)
wait_for 300 writes_again
expect_eq "after SENTINEL FAILOVER writes work again, without touching httpd" 200 "$(code)"
echo "# writes again $((SECONDS - t0)) s after the sentinel named the new master"
check "the session survived the failover" \
    bash -c "curl -s -b '$(jar u)' '$A/private/cgi/session.cgi' | grep -q '^user=alice$'"
check "the status page names the new master" \
    bash -c "curl -s '$A/status' | grep -q 'master 127.0.0.1:$R'"
check "no crashed child" bash -c "! grep -Eq 'segfault|exit signal' '$WORK/a/logs/error.log'"

redis_cleanup
finish
