#!/usr/bin/env bash
# rediss:// against real redis-server processes with --tls-port and
# certificates made here with the openssl command: two nodes behind the
# balancer, mutual TLS with a client key only root can read (the parent loads
# it, the children running as nobody use the loaded context), TLS with an ACL
# user, a db and a prefix. Every refusal (unknown CA, wrong host name, expired
# certificate, no client certificate, plain TCP on rediss://, TLS on
# redis://) fails closed with its reason in the error log; a bad TLS file
# fails configtest naming the option. Redis killed, hung and restarted under
# TLS: 503s within the timeouts, then recovery without touching httpd.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_nodes.sh"

OPENSSL=${OPENSSL:-/usr/bin/openssl}
[ -x "$OPENSSL" ] || die "openssl not found at $OPENSSL (install openssl)"
command -v runuser >/dev/null || die "runuser not found (install util-linux)"

# ---- certificates ----
PKI=$WORK/pki
mkdir -p "$PKI/newcerts"
chmod 755 "$PKI"
K=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
mkcert() { # mkcert NAME CA SAN [openssl ca options...]: NAME.pem/NAME.key signed by CA
    local name=$1 ca=$2 san=$3
    shift 3
    "$OPENSSL" req "${K[@]}" -keyout "$PKI/$name.key" -out "$PKI/$name.csr" -subj "/CN=$name" &&
        printf 'subjectAltName=%s\n' "$san" >"$PKI/$name.ext" &&
        "$OPENSSL" ca -batch -config "$PKI/ca.cnf" -name "ca_$ca" -in "$PKI/$name.csr" \
            -out "$PKI/$name.pem" -extfile "$PKI/$name.ext" -notext "$@"
}
{
    for ca in ca ca2; do
        "$OPENSSL" req -x509 "${K[@]}" -keyout "$PKI/$ca.key" -out "$PKI/$ca.pem" -days 2 \
            -subj "/CN=test $ca" || exit 1
        : >"$PKI/$ca.index"
        cat <<CNF
[ ca_$ca ]
database = $PKI/$ca.index
new_certs_dir = $PKI/newcerts
certificate = $PKI/$ca.pem
private_key = $PKI/$ca.key
rand_serial = yes
default_md = sha256
default_days = 2
policy = any
CNF
    done >"$PKI/ca.cnf"
    echo "[ any ]" >>"$PKI/ca.cnf"
    echo "commonName = supplied" >>"$PKI/ca.cnf"
    mkcert server ca "DNS:localhost,IP:127.0.0.1" &&
        mkcert client ca "DNS:client" &&
        mkcert otherca ca2 "DNS:localhost,IP:127.0.0.1" &&
        mkcert otherhost ca "DNS:other.example" &&
        mkcert expired ca "DNS:localhost,IP:127.0.0.1" -startdate 20200101000000Z \
            -enddate 20200102000000Z
} >"$PKI/openssl.log" 2>&1 || die "making certificates failed: $(tail -5 "$PKI/openssl.log")"
# The client key: root's alone. httpd's children run as nobody.
chmod 600 "$PKI"/*.key
check "the client key is unreadable to nobody" \
    bash -c "! runuser -u nobody -- cat '$PKI/client.key' >/dev/null 2>&1"
echo "not a certificate" >"$PKI/garbage.pem"

# ---- redis servers ----
# tls_redis NAME CERT AUTH_CLIENTS [options]: TLS only on a free port ($PORT_NAME)
tls_redis() {
    local name=$1 cert=$2 auth=$3 port
    shift 3
    port=$(free_port)
    redis_start "$name" "$port" --port 0 --tls-port "$port" --tls-cert-file "$PKI/$cert.pem" \
        --tls-key-file "$PKI/$cert.key" --tls-ca-cert-file "$PKI/ca.pem" \
        --tls-auth-clients "$auth" "$@"
    eval "PORT_$name=$port"
}
ACL=(--requirepass adminpw --user sessuser on '>s3cret' '~tls:*' '+@all')
export REDISCLI_AUTH=adminpw
tls_redis main server no "${ACL[@]}"
tls_redis mutual server yes
tls_redis otherca otherca no
tls_redis otherhost otherhost no
tls_redis expired expired no
PORT_plain=$(free_port)
redis_start plain "$PORT_plain"
check "redis-server answers over TLS (redis-cli --tls)" bash -c \
    "redis-cli --tls --cacert '$PKI/ca.pem' -h localhost -p $PORT_main --user sessuser --pass s3cret \
     --no-auth-warning ping | grep -q PONG"

# ---- httpd ----
TIMEOUTS=${REDIS_SLOW_OPTIONS:-&connect_timeout=200&command_timeout=200}
CA="tls_ca_file=$PKI/ca.pem"
MAIN_URI="rediss://sessuser:s3cret@localhost:$PORT_main/2?prefix=tls:&$CA&breaker=500$TIMEOUTS"
node() { # node NAME PORT URI
    httpd_conf "$1" "$2" event "SessionStoreBackend $3" "Header always set X-Node $1"
}
PA=$(free_port)
PB=$(free_port)
PF=$(free_port)
PM=$(free_port)
node a "$PA" "$MAIN_URI"
node b "$PB" "$MAIN_URI"
balancer_conf front "$PF" 0 "$PA" "$PB"
node m "$PM" "rediss://127.0.0.1:$PORT_mutual?$CA&tls_cert_file=$PKI/client.pem&tls_key_file=$PKI/client.key$TIMEOUTS"

# One instance, a virtual host per refusal case.
PR=$(free_port)
CASES=(
    "unknown-ca|rediss://127.0.0.1:$PORT_otherca?$CA|certificate verification failed: (unable to get local issuer certificate|self-signed certificate in certificate chain)"
    "wrong-host|rediss://localhost:$PORT_otherhost?$CA|certificate verification failed: hostname mismatch"
    "expired|rediss://127.0.0.1:$PORT_expired?$CA|certificate verification failed: certificate has expired"
    "no-client-cert|rediss://127.0.0.1:$PORT_mutual?$CA|certificate required|require a client certificate"
    "plain-on-rediss|rediss://127.0.0.1:$PORT_plain?$CA|TLS handshake"
    "tls-on-redis|redis://127.0.0.1:$PORT_mutual?prefix=x:|that needs rediss://|use a rediss:// URI"
)
vhosts=()
for c in "${CASES[@]}"; do
    IFS='|' read -r name uri _ <<<"$c"
    p=$(free_port)
    eval "PORT_case_${name//-/_}=$p"
    vhosts+=("Listen 127.0.0.1:$p" "<VirtualHost 127.0.0.1:$p>"
        "SessionStoreBackend $uri$TIMEOUTS" "</VirtualHost>")
done
httpd_conf r "$PR" event "${vhosts[@]}"

# ---- configtest: a bad file is named ----
bad_conf() { # bad_conf URI: configtest output of a config with that backend
    httpd_conf bad "$(free_port)" event "SessionStoreBackend $1"
    httpd_configtest bad
}
out=$(bad_conf "rediss://127.0.0.1:1?tls_ca_file=$PKI/missing.pem")
check "configtest: a missing tls_ca_file fails, named" \
    grep -q "tls_ca_file $PKI/missing.pem: No such file" <<<"$out"
check "... and configtest exits non-zero" bash -c "! '$HTTPD' -d '$WORK/bad' -f '$WORK/bad/httpd.conf' -t 2>/dev/null"
out=$(bad_conf "rediss://127.0.0.1:1?$CA&tls_cert_file=$PKI/client.pem&tls_key_file=$PKI/garbage.pem")
check "configtest: a bad tls_key_file fails, named" grep -q "tls_key_file $PKI/garbage.pem" <<<"$out"
out=$(bad_conf "rediss://127.0.0.1:1?$CA&tls_cert_file=$PKI/client.pem&tls_key_file=$PKI/server.key")
check "configtest: a key that is not the certificate's fails, named" \
    grep -qE "tls_key_file $PKI/server.key: key values mismatch|is not the key of" <<<"$out"
out=$(bad_conf "rediss://127.0.0.1:1?tls_ca_file=$PKI/garbage.pem")
check "configtest: a tls_ca_file holding no certificate fails" grep -q "tls_ca_file $PKI/garbage.pem: no CA" <<<"$out"
out=$(bad_conf "unix://$WORK/main/redis.sock?tls_verify=full")
check "configtest: TLS over a Unix socket is refused" grep -q "TLS over a Unix socket" <<<"$out"
out=$(bad_conf "$MAIN_URI")
check "configtest: the good URI passes" grep -q "Syntax OK" <<<"$out"

httpd_start a "$PA"
httpd_start b "$PB"
httpd_start front "$PF"
httpd_start m "$PM"
httpd_start r "$PR"
F=http://127.0.0.1:$PF
A=http://127.0.0.1:$PA
M=http://127.0.0.1:$PM

# ---- rediss:// on two nodes behind the balancer, ACL user, db 2, prefix tls:
expect_eq "rediss://: a login through the balancer" 302 "$(login u "$F" alice secret)"
bad=0
seen=""
for i in $(seq 1 10); do
    body=$(get u "$F/private/cgi/session.cgi")
    [ "$(code)" = 200 ] && grep -q '^user=alice$' <<<"$body" || bad=$((bad + 1))
    seen="$seen $(last_header X-Node)"
done
expect_eq "rediss://: 10 requests through the balancer, all authenticated" 0 "$bad"
check "rediss://: both nodes served them ($seen)" bash -c "grep -q a <<<'$seen' && grep -q b <<<'$seen'"
keys=$(redis_cli main -n 2 --scan --pattern 'tls:*' | grep -v ':owner:')
expect_eq "the session is one key in db 2 under the prefix tls:" 1 "$(grep -c . <<<"$keys")"
expect_eq "db 0 holds nothing" 0 "$(redis_cli main -n 0 dbsize)"
check "the store is described with its TLS options, without the password" \
    grep -q "session store: rediss://sessuser:\*\*\*@localhost:$PORT_main/2?.*tls_verify=full&tls_protocols=TLSv1.2&tls_ca_file=$PKI/ca.pem" \
    "$WORK/a/logs/error.log"

# ---- mutual TLS; the key only root reads
expect_eq "mutual TLS: a login" 302 "$(login mu "$M" bob hunter2)"
get mu "$M/private/" >/dev/null
expect_eq "mutual TLS: the session holds" 200 "$(code)"
# The child that served it (the access log's last field is its pid).
served_by=$(tail -1 "$WORK/m/logs/access.log" | awk '{ print $NF }')
expect_eq "mutual TLS: the child that used the key runs as nobody" nobody \
    "$(ps -o user= -p "$served_by" | tr -d ' ')"

# ---- refusals: fail closed, with the reason in the log
for c in "${CASES[@]}"; do
    IFS='|' read -r name uri reason <<<"$c"
    eval "p=\$PORT_case_${name//-/_}"
    U=http://127.0.0.1:$p
    set_jar_sid "x$name" "$(random_id)"
    t0=$(date +%s%N)
    get "x$name" "$U/private/" >/dev/null
    ms=$((($(date +%s%N) - t0) / 1000000))
    expect_eq "$name: a request with a session cookie fails closed ($ms ms)" 503 "$(code)"
    expect_eq "$name: a login answers 503, no session is made" 503 "$(login "l$name" "$U" alice secret)"
    expect_eq "$name: ... with no cookie" 0 "$(set_cookie_count)"
    port=${uri#*://*:}
    port=${port%%[/?]*}
    check "$name: the reason is in the error log" \
        grep -qE ":$port/0 unavailable: .*($reason)" "$WORK/r/logs/error.log"
done
check "no password in any error log" bash -c "! grep -qE 's3cret|adminpw' '$WORK'/{a,b,m,r}/logs/error.log"
check "no key material in any error log" bash -c "! grep -q 'PRIVATE KEY' '$WORK'/{a,b,m,r}/logs/error.log"

# ---- Redis hung, killed and restarted under TLS
slowest() { # slowest N URL JAR: the slowest of N requests in ms; their codes in $WORK/codes
    local n=$1 url=$2 j=$3 worst=0 i t ms
    : >"$WORK/codes"
    for i in $(seq 1 "$n"); do
        t=$(curl -s -o /dev/null -b "$(jar "$j")" -w '%{http_code} %{time_total}' \
            --max-time "$CURL_MAX_TIME" "$url")
        echo "${t% *}" >>"$WORK/codes"
        ms=$(awk -v t="${t#* }" 'BEGIN { printf "%d", t * 1000 }')
        [ "$ms" -gt "$worst" ] && worst=$ms
    done
    echo "$worst"
}
only_503() { [ -z "$(grep -vx 503 "$WORK/codes")" ]; }
LIMIT=1000
[ -n "${VALGRIND:-}" ] && LIMIT=30000

kill -STOP "$(cat "$WORK/main/redis.pid")"
worst=$(slowest 5 "$A/private/" u)
kill -CONT "$(cat "$WORK/main/redis.pid")"
echo "# TLS Redis hung: codes $(tr '\n' ' ' <"$WORK/codes"); slowest $worst ms"
check "TLS Redis hung: requests with a session get 503" only_503
check "TLS Redis hung: none waits past the timeouts ($worst ms < $LIMIT ms)" test "$worst" -lt "$LIMIT"
ok_again() { [ "$(curl -s -o /dev/null -b "$(jar u)" -w '%{http_code}' "$A/private/")" = 200 ]; }
check "TLS Redis resumed: the same session is served again" wait_for 50 ok_again

kill -9 "$(cat "$WORK/main/redis.pid")"
worst=$(slowest 10 "$A/private/" u)
echo "# TLS Redis killed: codes $(tr '\n' ' ' <"$WORK/codes"); slowest $worst ms"
check "TLS Redis killed: requests with a session get 503" only_503
check "TLS Redis killed: none waits past the timeouts ($worst ms < $LIMIT ms)" test "$worst" -lt "$LIMIT"
expect_eq "TLS Redis killed: a login answers 503" 503 "$(login k "$A" alice secret)"
if log_has_crash a || log_has_crash b; then not_ok "no child crashed"; else ok "no child crashed"; fi

redis_start main "$PORT_main" --port 0 --tls-port "$PORT_main" --tls-cert-file "$PKI/server.pem" \
    --tls-key-file "$PKI/server.key" --tls-ca-cert-file "$PKI/ca.pem" --tls-auth-clients no "${ACL[@]}"
relogin() {
    rm -f "$(jar re)"
    [ "$(login re "$A" alice secret)" = 302 ] && get re "$A/private/" >/dev/null && [ "$(code)" = 200 ]
}
t0=$(date +%s%N)
check "TLS Redis restarted: logins work again without touching httpd" wait_for 50 relogin
echo "# TLS Redis back: a login works again after $((($(date +%s%N) - t0) / 1000000)) ms"
check "the recovery is logged" grep -q 'answers again' "$WORK/a/logs/error.log"

redis_cleanup
finish
