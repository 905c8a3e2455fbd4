# lib.sh - shared helpers for the end-to-end tests (sourced, not run).
#
# Each test script starts its own httpd instances (Debian's apache2 binary,
# our freshly built module, a generated config) on free loopback ports, drives
# them with curl, and prints "N passed, N failed" at the end.

set -u

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$E2E_DIR/../.." && pwd)
HTTPD=${HTTPD:-/usr/sbin/apache2}
MODDIR=${MODDIR:-/usr/lib/apache2/modules}
MODULE=${MODULE:-$TOP/.libs/mod_sessstore.so}
# A wrapper may run httpd. VALGRIND=1 runs every httpd (parent and children)
# under memcheck, one log per process; any error reported fails the script.
HTTPD_WRAPPER=${HTTPD_WRAPPER:-}
PASSED=0
FAILED=0
# A request that takes longer has hung (raised under VALGRIND=1).
CURL_MAX_TIME=10
STARTED=()

WORK=$(mktemp -d /tmp/sessstore-e2e.XXXXXX)
chmod 755 "$WORK"
if [ -n "${VALGRIND:-}" ]; then
    command -v valgrind >/dev/null || { echo "FATAL: VALGRIND=1 but valgrind is not installed" >&2; exit 1; }
    # children run as nobody: the log directory must be theirs to write too
    mkdir -p "$WORK/valgrind" && chmod 1777 "$WORK/valgrind"
    # valgrind slows httpd tenfold: give clients and the Redis client room
    CURL_MAX_TIME=60
    REDIS_SLOW_OPTIONS="&connect_timeout=5000&command_timeout=5000"
    HTTPD_WRAPPER="valgrind --quiet --error-exitcode=99 --leak-check=no --track-origins=yes --num-callers=30 --log-file=$WORK/valgrind/%p.log"
fi

die() {
    echo "FATAL: $*" >&2
    FAILED=$((FAILED + 1))
    finish
}

[ -x "$HTTPD" ] || die "httpd binary $HTTPD not found (install apache2)"
[ -f "$MODULE" ] || die "module $MODULE not built (run make first)"
command -v curl >/dev/null || die "curl not found (install curl)"

ok() {
    PASSED=$((PASSED + 1))
    echo "ok - $*"
}

not_ok() {
    FAILED=$((FAILED + 1))
    echo "not ok - $*"
}

# check "description" command...: passes when the command succeeds.
check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# expect_eq "description" expected actual
expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (expected '$2', got '$3')"; fi
}

# A TCP port nobody listens on, from a range that avoids common services.
# Ports handed out are remembered: a port is not bound until its server
# starts, and two calls in a row must not return the same one. They come from
# below the kernel's ephemeral range, where no outgoing connection can take
# one between this check and the server's bind.
EPHEMERAL_LOW=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
EPHEMERAL_LOW=${EPHEMERAL_LOW:-32768}
free_port() {
    local p
    while :; do
        p=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
        grep -qx "$p" "$WORK/ports" 2>/dev/null && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p" >>"$WORK/ports"
            echo "$p"
            return
        fi
    done
}

# write_site DIR: document root with a login form, a protected area, CGIs.
write_site() {
    local dir=$1
    mkdir -p "$dir/htdocs/private/cgi" "$dir/htdocs/public"
    cp "$E2E_DIR/site/login.html" "$dir/htdocs/login.html"
    echo "SECRET PAGE" >"$dir/htdocs/private/index.html"
    echo "PUBLIC PAGE" >"$dir/htdocs/public/index.html"
    cp "$E2E_DIR/site/session.cgi" "$E2E_DIR/site/count.cgi" "$E2E_DIR/site/big.cgi" \
        "$dir/htdocs/private/cgi/"
    chmod 755 "$dir/htdocs/private/cgi/"*.cgi
    # alice/secret and bob/hunter2, bcrypt at the minimum cost to keep tests fast.
    htpasswd -bcB -C 4 "$dir/htpasswd" alice secret 2>/dev/null
    htpasswd -bB -C 4 "$dir/htpasswd" bob hunter2 2>/dev/null
    chmod -R a+rX "$dir"
}

# server_lines DIR PORT LOGLEVEL MODULE...: the lines every instance starts
# with: where it lives, where it listens, its logs, its modules, its user.
server_lines() {
    local dir=$1 port=$2 level=$3 m
    shift 3
    echo "ServerRoot $dir"
    echo "ServerName 127.0.0.1"
    echo "Listen 127.0.0.1:$port"
    echo "PidFile $dir/run/httpd.pid"
    echo "DefaultRuntimeDir $dir/run"
    echo "ErrorLog $dir/logs/error.log"
    echo "LogLevel $level"
    for m in "$@"; do
        echo "LoadModule ${m}_module $MODDIR/mod_$m.so"
    done
    if [ "$(id -u)" = 0 ]; then
        echo "User nobody"
        echo "Group nogroup"
    fi
}

# httpd_conf NAME PORT MPM [extra directives...]: a complete config for one
# instance in $WORK/NAME. Extra arguments are appended as lines; ROOT_EXTRA
# (lines) goes inside the <Location /> that turns the store on.
httpd_conf() {
    local name=$1 port=$2 mpm=$3
    shift 3
    local dir="$WORK/$name"
    mkdir -p "$dir/logs" "$dir/run"
    [ -d "$dir/htdocs" ] || write_site "$dir"
    local cgi=cgid
    [ "$mpm" = prefork ] && cgi=cgi
    {
        server_lines "$dir" "$port" "${LOGLEVEL:-info}" "mpm_$mpm" authz_core authz_user \
            authn_core authn_file auth_form request session mime dir alias env headers $cgi
        # %P (the child's pid) last, so tests can see which process served what.
        echo "LogFormat \"%h %l %u %t \\\"%r\\\" %>s %b %P\" common"
        echo "CustomLog $dir/logs/access.log common"
        echo "LoadModule sessstore_module $MODULE"
        [ "$cgi" = cgid ] && echo "ScriptSock $dir/run/cgid.sock"
        echo "TypesConfig /etc/mime.types"
        echo "DocumentRoot $dir/htdocs"
        echo "Timeout 10"
        echo "MaxConnectionsPerChild 0"
        cat <<CONF
<Directory $dir/htdocs>
    Require all granted
</Directory>
<Location />
    Session On
    SessionEnv On
    SessionHeader X-Replace-Session
    SessionStoreCookieName sid
${ROOT_EXTRA:-}
</Location>
<Location /dologin>
    SetHandler form-login-handler
    AuthType form
    AuthName site
    AuthFormProvider file
    AuthUserFile $dir/htpasswd
    AuthFormLoginRequiredLocation /login.html
    AuthFormLoginSuccessLocation /private/
</Location>
<Location /logout>
    SetHandler form-logout-handler
    AuthType form
    AuthName site
    AuthFormLogoutLocation /login.html
</Location>
<Location /private>
    AuthType form
    AuthName site
    AuthFormProvider file
    AuthUserFile $dir/htpasswd
    AuthFormLoginRequiredLocation /login.html
    Require valid-user
</Location>
<Directory $dir/htdocs/private/cgi>
    Options +ExecCGI
    SetHandler cgi-script
</Directory>
CONF
        local line
        for line in "$@"; do echo "$line"; done
    } >"$dir/httpd.conf"
}

# httpd_configtest NAME: prints the configtest output, returns its status.
httpd_configtest() {
    "$HTTPD" -d "$WORK/$1" -f "$WORK/$1/httpd.conf" -t 2>&1
}

wait_port() {
    local port=$1 i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# wait_for TENTHS command...: polls the command every 0.1 s until it
# succeeds; fails after TENTHS tries.
wait_for() {
    local n=$1 i
    shift
    for ((i = 0; i < n; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

# Lines in NAME's error log saying a generation is up (start, graceful, restart).
httpd_generations() {
    local n
    n=$(grep -c 'resuming normal operations' "$WORK/$1/logs/error.log" 2>/dev/null)
    echo "${n:-0}"
}

httpd_alive() {
    local pid
    pid=$(httpd_pid "$1")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# httpd_wait_ready NAME PORT GENERATIONS [FAILURES]: waits until the error
# log shows at least GENERATIONS "resuming normal operations" lines, the pid
# file names a live process and the port accepts connections. FAILURES, the
# number of "Configuration Failed" lines before the start or signal, lets it
# give up as soon as another one appears.
httpd_wait_ready() {
    local name=$1 port=$2 gen=$3 failed=${4:-}
    [ -n "$failed" ] || failed=$(httpd_failures "$name")
    _gen_reached() {
        [ "$(httpd_generations "$name")" -ge "$gen" ] || [ "$(httpd_failures "$name")" -gt "$failed" ]
    }
    wait_for 300 _gen_reached && [ "$(httpd_failures "$name")" -eq "$failed" ] &&
        wait_for 100 httpd_alive "$name" && wait_port "$port"
}

# Lines in NAME's error log saying the configuration failed at start-up.
httpd_failures() {
    local n
    n=$(grep -c 'Configuration Failed' "$WORK/$1/logs/error.log" 2>/dev/null)
    echo "${n:-0}"
}

# httpd_start NAME PORT
httpd_start() {
    local name=$1 port=$2 gen failed
    gen=$(($(httpd_generations "$name") + 1))
    failed=$(httpd_failures "$name")
    $HTTPD_WRAPPER "$HTTPD" -d "$WORK/$name" -f "$WORK/$name/httpd.conf" -k start ||
        die "httpd $name failed to start: $(tail -5 "$WORK/$name/logs/error.log")"
    STARTED+=("$name")
    # The port is bound before the configuration is fully applied (and a
    # failing post_config exits after that), so wait for the running parent.
    httpd_wait_ready "$name" "$port" "$gen" "$failed" ||
        die "httpd $name is not up on $port: $(tail -5 "$WORK/$name/logs/error.log")"
}

httpd_pid() {
    cat "$WORK/$1/run/httpd.pid" 2>/dev/null
}

# httpd_signal NAME graceful|restart|stop
httpd_signal() {
    "$HTTPD" -d "$WORK/$1" -f "$WORK/$1/httpd.conf" -k "$2"
}

# reap PID: waits up to 10 s for a process asked to stop, then kills it.
reap() {
    local pid=$1 i
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null
}

httpd_stop() {
    local name=$1 pid
    pid=$(httpd_pid "$name")
    [ -n "$pid" ] || return 0
    httpd_signal "$name" stop 2>/dev/null
    reap "$pid"
}

# Under VALGRIND=1: every process's log must be empty (--quiet prints only errors).
valgrind_verdict() {
    local f bad=0
    for f in "$WORK"/valgrind/*.log; do
        [ -s "$f" ] || continue
        bad=$((bad + 1))
        echo "# --- $f ---" >&2
        head -60 "$f" >&2
    done
    if [ "$bad" -eq 0 ]; then
        ok "valgrind: no memory errors in any httpd process"
    else
        not_ok "valgrind: $bad httpd process(es) reported memory errors"
    fi
}

cleanup() {
    local name
    for name in "${STARTED[@]+"${STARTED[@]}"}"; do httpd_stop "$name"; done
    # redis-server instances of lib_nodes.sh, when it is in use
    if declare -F redis_cleanup >/dev/null; then redis_cleanup; fi
    if [ "$FAILED" -gt 0 ] || [ -n "${KEEP_WORK:-}" ]; then
        echo "# logs kept in $WORK" >&2
        for name in "${STARTED[@]+"${STARTED[@]}"}"; do
            echo "# --- $name error.log (tail) ---" >&2
            tail -20 "$WORK/$name/logs/error.log" >&2 2>/dev/null
        done
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

finish() {
    trap - EXIT
    for name in "${STARTED[@]+"${STARTED[@]}"}"; do httpd_stop "$name"; done
    [ -n "${VALGRIND:-}" ] && valgrind_verdict
    cleanup
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}

# ---- HTTP helpers: each "client" is a cookie jar file ----

jar() {
    echo "$WORK/jar.$1"
}

# get JAR URL [curl args...]: prints the body; the status code goes to $WORK/last.code
get() {
    local j=$1 url=$2
    shift 2
    curl -sS --max-time "$CURL_MAX_TIME" -b "$(jar "$j")" -c "$(jar "$j")" -o "$WORK/last.body" \
        -D "$WORK/last.headers" -w '%{http_code}' "$@" "$url" >"$WORK/last.code" 2>"$WORK/last.err"
    cat "$WORK/last.body"
}

code() {
    cat "$WORK/last.code"
}

# login JAR BASEURL USER PASSWORD: posts the login form; returns the status.
login() {
    get "$1" "$2/dologin" -d "httpd_username=$3" -d "httpd_password=$4" >/dev/null
    code
}

# alive JAR URL: the status of /private/ at URL with JAR's cookie: 200 while
# its session is live there, 302 (to the login form) once it has ended.
alive() {
    get "$1" "$2/private/" >/dev/null
    code
}

# answer_count CODE "URL..." JAR...: how many (JAR, URL) pairs answer
# /private/ with CODE (200: the session is open; 302: sent to the login
# form, the session is ended). URL... is one word, the node URLs separated
# by spaces. Count the ended ones with 302, not the open ones with 0: a
# node that is down or failing answers neither.
answer_count() {
    local want=$1 urls=$2 j u n=0
    shift 2
    for j in "$@"; do
        for u in $urls; do
            [ "$(alive "$j" "$u")" = "$want" ] && n=$((n + 1))
        done
    done
    echo "$n"
}

# login_owners "URL..." OWNER JAR... [OWNER JAR...]...: logs each JAR in as
# the OWNER named before it: alice (secret) and bob (hunter2) of write_site,
# carol (s3cret) once the script has added her to each node's htpasswd. The
# JARs take the URLs (one word, separated by spaces) in turn, so their
# sessions are spread over the nodes. Then one test line checks that every
# session opens /private/ on every URL (the nodes share the store).
# Leaves behind: one live session in each $WORK/jar.JAR, and the last.*
# files of that check. Example: login_owners "$A $B" alice a1 a2 bob b1
# logs a1 in on A, a2 on B, b1 on A.
login_owners() {
    local urls=($1) owner="" pw="" jars=() w
    shift
    for w in "$@"; do
        case $w in
        alice) owner=alice pw=secret ;;
        bob) owner=bob pw=hunter2 ;;
        carol) owner=carol pw=s3cret ;;
        *)
            [ -n "$owner" ] || die "login_owners: jar $w comes before any owner"
            login "$w" "${urls[$((${#jars[@]} % ${#urls[@]}))]}" "$owner" "$pw" >/dev/null
            jars+=("$w")
            ;;
        esac
    done
    expect_eq "${#jars[@]} sessions logged in, each open on all ${#urls[@]} node(s)" \
        $((${#jars[@]} * ${#urls[@]})) "$(answer_count 200 "${urls[*]}" "${jars[@]}")"
}

# The session ID our cookie jar holds for cookie "sid" ("" if none).
jar_sid() {
    awk '$6 == "sid" { print $7 }' "$(jar "$1")" 2>/dev/null | tail -1
}

set_jar_sid() {
    local f
    f=$(jar "$1")
    printf '127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\t%s\n' "$2" >"$f"
}

last_set_cookie() {
    grep -i '^set-cookie:' "$WORK/last.headers" | tr -d '\r'
}

# The value of response header NAME in the last response ("" if absent).
last_header() {
    grep -i "^$1:" "$WORK/last.headers" | tail -1 | cut -d: -f2- | sed 's/^ *//' | tr -d '\r'
}

# Number of Set-Cookie headers in the last response.
set_cookie_count() {
    grep -ci '^set-cookie:' "$WORK/last.headers"
}

# A well-formed session ID (43 base64url characters, last one 'A') that no
# server issued.
random_id() {
    printf '%sA\n' "$(head -c 48 /dev/urandom | base64 -w0 | tr '+/' '-_' | cut -c1-42)"
}

# True when NAME's error log shows a crashed child.
log_has_crash() {
    grep -Eq 'segfault|child pid [0-9]+ exit signal|AH00052|AH00060' "$WORK/$1/logs/error.log"
}

# run_parallel FUNC...: runs the functions at the same time, each in a
# subshell whose $WORK is a private directory (so jars and the last.* files of
# get/login/code do not collide; $TOP_WORK still names the real one), then
# prints their output in order and adds their ok/not ok lines to the counts.
# The functions must not start or stop servers, nor call die or finish.
TOP_WORK=$WORK
run_parallel() {
    local f pids=() i=0 rc
    for f in "$@"; do
        mkdir -p "$TOP_WORK/par.$f"
        (
            WORK=$TOP_WORK/par.$f
            "$f"
            exit 0 # only an abort (e.g. an unset variable) is a failure
        ) >"$TOP_WORK/par.$f/out" 2>&1 &
        pids+=($!)
    done
    for f in "$@"; do
        rc=0
        wait "${pids[$i]}" || rc=$?
        i=$((i + 1))
        cat "$TOP_WORK/par.$f/out"
        PASSED=$((PASSED + $(grep -c '^ok - ' "$TOP_WORK/par.$f/out")))
        FAILED=$((FAILED + $(grep -c '^not ok - ' "$TOP_WORK/par.$f/out")))
        [ "$rc" = 0 ] || not_ok "$f exited with status $rc"
    done
}
