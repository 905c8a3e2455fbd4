#!/bin/bash
# redis_outages.sh - memory across Redis outages: httpd (event MPM, fixed
# children) serves session requests from parallel clients while redis-server
# is killed (-9) and restarted OUTAGES times (default 20). httpd's resident
# memory (parent and children) is sampled after every recovery; it must come
# back to its plateau: the growth over the second half of the outages stays
# under SLACK_KB (default 512 KiB in all, about 25 KiB an outage).
#   MODULE=build/normal/.libs/mod_sessstore.so tests/soak/redis_outages.sh
#   OUTAGES=3 ...  a short pass (scripts/test runs one)
#   CONTROL=1 ...  the same load and samples without killing Redis: the
#                  growth that traffic alone causes, to compare with
source "$(dirname "$0")/../e2e/lib.sh"
source "$(dirname "$0")/../e2e/lib_nodes.sh"

OUTAGES=${OUTAGES:-20}
SLACK_KB=${SLACK_KB:-512}
CLIENTS=${CLIENTS:-6}

RP=$(free_port)
redis_start redis "$RP"
P=$(free_port)
httpd_conf a "$P" event \
    "SessionStoreBackend redis://127.0.0.1:$RP/0?connect_timeout=100&command_timeout=100&breaker=200" \
    "StartServers 2" "ServerLimit 2" "MinSpareThreads 1" "MaxSpareThreads 64" \
    "ThreadsPerChild 16" "MaxRequestWorkers 32" "MaxConnectionsPerChild 0" \
    "Alias /anon/ $WORK/a/htdocs/private/cgi/" "LogLevel warn"
httpd_start a "$P"
A=http://127.0.0.1:$P

# rss_kb: resident KiB of httpd's parent and children.
rss_kb() {
    local parent total=0 pid kb
    parent=$(httpd_pid a)
    for pid in $parent $(pgrep -P "$parent"); do
        kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# A client: its own session, incremented until told to stop; it logs in
# again (a new anonymous session) whenever the store lost it.
client() {
    local n=$1
    while [ ! -f "$WORK/stop" ]; do
        curl -s -o /dev/null --max-time 5 -b "$WORK/c$n.jar" -c "$WORK/c$n.jar" "$A/anon/count.cgi"
    done
}

for n in $(seq 1 "$CLIENTS"); do client "$n" & done
sleep 3
samples=()
for i in $(seq 1 "$OUTAGES"); do
    if [ -z "${CONTROL:-}" ]; then
        kill -9 "$(cat "$WORK/redis/redis.pid")"
        sleep 1 # an outage under load: 503s, reconnect attempts, the breaker
        rm -f "$WORK/redis/redis.pid"
        redis_start redis "$RP"
    else
        sleep 1
    fi
    sleep 2 # recovery under load
    samples+=("$(rss_kb)")
    echo "# outage $i: httpd RSS ${samples[-1]} KiB"
done
touch "$WORK/stop"
wait

half=$((OUTAGES / 2))
first=${samples[$((half - 1))]}
last=${samples[-1]}
echo "# RSS after outage $half: $first KiB; after outage $OUTAGES: $last KiB (slack $SLACK_KB KiB)"
check "httpd's memory is back to its plateau: +$((last - first)) KiB over outages $((half + 1))-$OUTAGES" \
    test $((last - first)) -le "$SLACK_KB"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$WORK/c1.jar" "$A/anon/count.cgi")
expect_eq "sessions are served after the last outage" 200 "$code"
check "no child crashed" eval '! log_has_crash a'

redis_cleanup
finish
