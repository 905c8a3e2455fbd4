# lib_nodes.sh - several httpd nodes, a balancer in front, and redis-server
# (sourced after lib.sh).

REDIS_SERVER=${REDIS_SERVER:-/usr/bin/redis-server}
REDIS_CLI=${REDIS_CLI:-/usr/bin/redis-cli}
REDIS_STARTED=()

[ -x "$REDIS_SERVER" ] || die "redis-server not found at $REDIS_SERVER (install redis-server)"

# redis_start NAME PORT [redis-server options...]: a throw-away server on
# loopback, no persistence, its Unix socket at $WORK/NAME/redis.sock.
redis_start() {
    local name=$1 port=$2
    shift 2
    mkdir -p "$WORK/$name"
    chmod 777 "$WORK/$name"
    "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --unixsocket "$WORK/$name/redis.sock" --unixsocketperm 777 \
        --dir "$WORK/$name" --logfile "$WORK/$name/redis.log" \
        --pidfile "$WORK/$name/redis.pid" --daemonize yes "$@" ||
        die "redis-server $name failed to start"
    REDIS_STARTED+=("$name")
    local i
    for i in $(seq 1 50); do
        if "$REDIS_CLI" -s "$WORK/$name/redis.sock" ping 2>/dev/null | grep -q PONG; then
            return 0
        fi
        # a server with requirepass answers NOAUTH: it is up
        if "$REDIS_CLI" -s "$WORK/$name/redis.sock" ping 2>&1 | grep -q NOAUTH; then
            return 0
        fi
        sleep 0.1
    done
    die "redis-server $name does not answer: $(tail -5 "$WORK/$name/redis.log")"
}

# redis_cli NAME args...: talks over the Unix socket (REDISCLI_AUTH for a password).
redis_cli() {
    local name=$1
    shift
    "$REDIS_CLI" -s "$WORK/$name/redis.sock" "$@"
}

redis_stop() {
    local name=$1 pid
    pid=$(cat "$WORK/$name/redis.pid" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null
    reap "$pid"
}

redis_cleanup() {
    local name
    for name in "${REDIS_STARTED[@]+"${REDIS_STARTED[@]}"}"; do redis_stop "$name"; done
}

# balancer_conf NAME PORT STICKY BACKEND_PORT...: a mod_proxy_balancer front,
# round robin (lbmethod=byrequests); STICKY=1 pins clients with a ROUTEID cookie.
balancer_conf() {
    local name=$1 port=$2 sticky=$3
    shift 3
    local dir="$WORK/$name" i=0 p
    mkdir -p "$dir/logs" "$dir/run"
    {
        server_lines "$dir" "$port" warn mpm_event authz_core proxy proxy_http proxy_balancer \
            lbmethod_byrequests slotmem_shm headers
        echo "<Proxy balancer://nodes>"
        for p in "$@"; do
            i=$((i + 1))
            echo "    BalancerMember http://127.0.0.1:$p route=n$i retry=1 timeout=5"
        done
        if [ "$sticky" = 1 ]; then
            echo "    ProxySet lbmethod=byrequests stickysession=ROUTEID"
        else
            echo "    ProxySet lbmethod=byrequests"
        fi
        echo "</Proxy>"
        if [ "$sticky" = 1 ]; then
            echo 'Header add Set-Cookie "ROUTEID=.%{BALANCER_WORKER_ROUTE}e; path=/" env=BALANCER_ROUTE_CHANGED'
        fi
        echo "ProxyPass / balancer://nodes/"
        echo "ProxyPassReverse / balancer://nodes/"
    } >"$dir/httpd.conf"
}

# node_of: which node served the last response (X-Node header).
node_of() {
    grep -i '^x-node:' "$WORK/last.headers" | tr -d '\r' | awk '{print $2}'
}
