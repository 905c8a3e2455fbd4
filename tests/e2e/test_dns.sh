#!/bin/bash
# test_dns.sh - a DNS server that never answers: the Redis host name of
# SessionStoreBackend cannot be resolved, and neither start-up nor any
# request waits longer than the configured timeouts for it.
#
# The script runs in a mount namespace of its own (unshare -m) where
# /etc/resolv.conf names a silent server on 127.0.0.2:53 (a UDP socket that
# reads queries and never replies); glibc would wait timeout x attempts = 10 s
# for it. Needs root for the namespace and port 53: fails loudly otherwise.
if [ -z "${SESSSTORE_DNS_NS:-}" ]; then
    exec unshare -m env SESSSTORE_DNS_NS=1 bash "$0" "$@" ||
        { echo "not ok - unshare -m is needed (root)"; echo "0 passed, 1 failed"; exit 1; }
fi
source "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || die "python3 is needed for the silent DNS server"
printf 'nameserver 127.0.0.2\noptions timeout:5 attempts:2\n' >"$WORK/resolv.conf"
mount --bind "$WORK/resolv.conf" /etc/resolv.conf || die "cannot bind-mount /etc/resolv.conf"

# The silent server: counts the queries it swallows.
python3 - "$WORK/dns.count" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.2", 53))
n = 0
while True:
    s.recvfrom(4096)
    n += 1
    with open(sys.argv[1], "w") as f:
        f.write(str(n))
PY
DNS_PID=$!
sleep 0.3
kill -0 "$DNS_PID" 2>/dev/null || die "the silent DNS server did not start (port 53 taken?)"

NAME=sessions.redis.test # not in /etc/hosts: only DNS could answer
P=$(free_port)
httpd_conf a "$P" event \
    "SessionStoreBackend redis://$NAME:6379/0?connect_timeout=300&command_timeout=300"
t0=$(date +%s%N)
httpd_start a "$P"
start_ms=$((($(date +%s%N) - t0) / 1000000))
A=http://127.0.0.1:$P

check "the resolver was asked (and never answered)" test "$(cat "$WORK/dns.count" 2>/dev/null || echo 0)" -ge 1
check "start-up does not wait for the resolver (${start_ms} ms, glibc would wait 10 s)" \
    test "$start_ms" -lt 5000
check "start-up warns that the store does not answer" \
    grep -q "SessionStoreBackend redis://$NAME:6379/0.*does not answer at start-up" "$WORK/a/logs/error.log"

worst=0
codes=""
for i in 1 2 3 4 5; do
    rm -f "$(jar l$i)"
    t0=$(date +%s%N)
    codes="$codes $(login "l$i" "$A" alice secret)"
    ms=$((($(date +%s%N) - t0) / 1000000))
    [ "$ms" -gt "$worst" ] && worst=$ms
done
echo "# logins while the name cannot be resolved: codes:$codes; slowest ${worst} ms"
check "every login fails closed with 503" bash -c "[ -z \"\$(echo '$codes' | tr ' ' '\n' | grep -v '^503$' | grep -v '^$')\" ]"
# connect_timeout + command_timeout = 600 ms; the margin covers curl,
# mod_auth_form's bcrypt and a loaded machine.
check "each within the timeouts and a margin (${worst} ms < 1000 ms)" test "$worst" -lt 1000
t0=$(date +%s%N)
expect_eq "no worker is stuck: a page without a session is served" "PUBLIC PAGE" "$(get p "$A/public/")"
ms=$((($(date +%s%N) - t0) / 1000000))
check "... at once (${ms} ms)" test "$ms" -lt 500
check "no child crashed" eval '! log_has_crash a'

kill "$DNS_PID" 2>/dev/null
finish
