#!/bin/bash
# test_metrics.sh - sessstore-metrics sums every child exactly (shm under
# prefork, Redis under event with several processes), its text parses as
# the Prometheus exposition format, sessstore-status?auto and mod_status's
# server-status show the same totals, and the session's log tag
# (%{sessstore-tag}n) in the access log is the one in the error log.
# The exact sums come from parallel clients with a session each (one load
# and one write per count.cgi); a burst of parallel requests of ONE session
# (compare-and-set conflicts, reloads, merges) is checked for consistent
# accounting instead, since its reloads and merged retries vary from run to run.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_nodes.sh"

PAGES=("<Location /metrics>" "SetHandler sessstore-metrics" "</Location>"
    "<Location /status>" "SetHandler sessstore-status" "</Location>"
    "<Location /health>" "SetHandler sessstore-health" "</Location>")
TAGLOG=("LogFormat \"%{sessstore-tag}n %>s %r\" tagged")

# metrics NAME URL: fetches the page into $WORK/NAME.prom and checks its format.
metrics() {
    curl -sS --max-time "$CURL_MAX_TIME" -o "$WORK/$1.prom" "$2/metrics" &&
        python3 "$E2E_DIR/prom_check.py" "$WORK/$1.prom"
}
# sample NAME SAMPLE: a value of the last page fetched as NAME.
sample() {
    python3 "$E2E_DIR/prom_check.py" "$WORK/$1.prom" "$2"
}
hit='sessstore_loads_total{result="hit"}'
miss='sessstore_loads_total{result="miss"}'
written='sessstore_saves_total{result="written"}'
rotations='sessstore_rotations_total'
deletes='sessstore_deletes_total'
load_count='sessstore_store_operation_duration_seconds_count{op="load"}'
save_count='sessstore_store_operation_duration_seconds_count{op="save"}'
SAVES=(written unchanged refused_oversize refused_gone error)

# commits NAME: the saves of every outcome on page NAME (one per commit).
commits() {
    local r n=0
    for r in "${SAVES[@]}"; do
        n=$((n + $(sample "$1" "sessstore_saves_total{result=\"$r\"}")))
    done
    echo "$n"
}
# delta BEFORE AFTER SAMPLE: how much SAMPLE grew between two pages.
delta() {
    echo $(($(sample "$2" "$3") - $(sample "$1" "$3")))
}
# shared_burst LABEL BASEURL JAR CLIENTS N: CLIENTS clients holding copies of
# JAR's one session send N count.cgi each at the same time (each request
# changes the session: its counter). Their saves conflict: every commit
# still has exactly one outcome, and the reloads of the merges are store
# loads of their own.
shared_burst() {
    local label=$1 u=$2 j=$3 clients=$4 n=$5 c i failed total=$(($4 * $5)) burl=() bpids=()
    for i in $(seq "$n"); do burl+=(-o /dev/null "$u/private/cgi/count.cgi"); done
    check "$label: metrics before a shared-session burst" metrics "$label.b0" "$u"
    for c in $(seq "$clients"); do
        cp "$(jar "$j")" "$(jar "$j.s$c")"
        curl -sS --max-time 120 -b "$(jar "$j.s$c")" -w '%{http_code}\n' "${burl[@]}" \
            >"$WORK/$label.shared.$c" &
        bpids+=($!)
    done
    wait "${bpids[@]}"
    expect_eq "$label: $total answers to the shared-session burst" "$total" \
        "$(cat "$WORK/$label".shared.* | grep -cE '^[0-9]{3}$')"
    check "$label: metrics after the shared-session burst" metrics "$label.b1" "$u"
    expect_eq "$label: shared burst: hits = $total requests" "$total" "$(delta "$label.b0" "$label.b1" "$hit")"
    expect_eq "$label: shared burst: written + unchanged + failed saves = $total changing requests" "$total" \
        $(($(commits "$label.b1") - $(commits "$label.b0")))
    # A failed commit (a merge that gave up) answers 503 instead of 200.
    failed=$(($(delta "$label.b0" "$label.b1" 'sessstore_saves_total{result="error"}') +
        $(delta "$label.b0" "$label.b1" 'sessstore_saves_total{result="refused_oversize"}')))
    expect_eq "$label: shared burst: failed saves = answers other than 200" \
        $((total - $(cat "$WORK/$label".shared.* | grep -cx 200))) "$failed"
    echo "# $label: shared burst of $total: written $(delta "$label.b0" "$label.b1" "$written")," \
        "unchanged $(delta "$label.b0" "$label.b1" 'sessstore_saves_total{result="unchanged"}'), failed $failed," \
        "store loads $(delta "$label.b0" "$label.b1" "$load_count"), store saves $(delta "$label.b0" "$label.b1" "$save_count")"
    check "$label: shared burst: store loads >= hits (merges reload)" \
        test "$(delta "$label.b0" "$label.b1" "$load_count")" -ge "$total"
    check "$label: shared burst: store saves >= records written" \
        test "$(delta "$label.b0" "$label.b1" "$save_count")" -ge "$(delta "$label.b0" "$label.b1" "$written")"
}

# ---- shm, prefork: four children, no keep-alive ----
P=$(free_port)
httpd_conf pf "$P" prefork "StartServers 4" "MinSpareServers 4" "MaxSpareServers 8" "KeepAlive Off" \
    "LoadModule status_module $MODDIR/mod_status.so" \
    "<Location /server-status>" "SetHandler server-status" "</Location>" \
    "${PAGES[@]}" "${TAGLOG[@]}" "CustomLog $WORK/pf/logs/tag.log tagged"
httpd_start pf "$P"
U=http://127.0.0.1:$P
check "prefork: the metrics page parses" metrics pf0 "$U"
expect_eq "prefork: text/plain version 0.0.4" "text/plain; version=0.0.4; charset=utf-8" \
    "$(curl -sS -o /dev/null -w '%{content_type}' "$U/metrics")"
expect_eq "prefork: no loads counted yet" 0 "$(sample pf0 "$hit")"

expect_eq "prefork: login" 302 "$(login c "$U" alice secret)"
SID=$(jar_sid c)
TAG=$(printf '%s' "$SID" | sha256sum | cut -c1-8)
check "prefork: metrics after login" metrics pf1 "$U"
expect_eq "prefork: the login wrote one session" 1 "$(sample pf1 "$written")"
expect_eq "prefork: ... under one new ID" 1 "$(sample pf1 "$rotations")"

# 60 count.cgi (a load and a write each) and 20 static pages (a load each),
# each request on a connection of its own, in one curl.
urls=()
for i in $(seq 60); do urls+=("$U/private/cgi/count.cgi"); done
for i in $(seq 20); do urls+=("$U/public/index.html"); done
curl -sS --max-time 120 -b "$(jar c)" -o /dev/null -w '%{http_code}\n' "${urls[@]}" >"$WORK/pf.codes"
expect_eq "prefork: 80 responses, all 200" 80 "$(grep -cx 200 "$WORK/pf.codes")"
# 5 clients, a login session each, x 20 count.cgi at the same time: each
# request one load and one write, no two requests of one session at once.
# The bodies ("counter=N") go to the output with the status codes.
pids=()
for c in $(seq 5); do
    expect_eq "prefork: login of parallel client $c" 302 "$(login "p$c" "$U" alice secret)"
done
for c in $(seq 5); do
    curl -sS --max-time 120 -b "$(jar "p$c")" -w '%{http_code}\n' \
        "${urls[@]:0:20}" >"$WORK/pf.par.$c" &
    pids+=($!)
done
wait "${pids[@]}"
expect_eq "prefork: 100 parallel responses, all 200" 100 "$(cat "$WORK"/pf.par.* | grep -cx 200)"
expect_eq "prefork: each parallel client's session counted to 20" 5 "$(cat "$WORK"/pf.par.* | grep -cx counter=20)"
PIDS=$(grep -E 'count.cgi|public' "$WORK/pf/logs/access.log" | awk '{ print $NF }' | sort -u | wc -l)
check "prefork: served by more than one child ($PIDS pids)" test "$PIDS" -gt 1
# An ID nobody issued: one miss.
set_jar_sid x "$(random_id)"
get x "$U/public/index.html" >/dev/null
check "prefork: metrics after the traffic" metrics pf2 "$U"
expect_eq "prefork: loads hit = 180 requests, whichever child served them" 180 "$(sample pf2 "$hit")"
expect_eq "prefork: one miss" 1 "$(sample pf2 "$miss")"
expect_eq "prefork: writes = 6 logins + 160 count.cgi" 166 "$(sample pf2 "$written")"
expect_eq "prefork: nothing left unchanged" 0 "$(sample pf2 'sessstore_saves_total{result="unchanged"}')"
expect_eq "prefork: one rotation per login" 6 "$(sample pf2 "$rotations")"
expect_eq "prefork: load histogram counts every store load" 181 "$(sample pf2 "$load_count")"
expect_eq "prefork: save histogram counts every store save" 166 "$(sample pf2 "$save_count")"
# alice's session, and the health probes' records (one per child that answered a page).
check "prefork: shm entries known" test "$(grep '^sessstore_store_entries{store="shm' "$WORK/pf2.prom" | awk '{print $NF}')" -ge 1
expect_eq "prefork: the store answered" 1 "$(grep '^sessstore_store_up{' "$WORK/pf2.prom" | awk '{print $NF}')"
expect_eq "prefork: no child has its store down" 0 "$(sample pf2 sessstore_children_store_down)"

# sessstore-status?auto and server-status show the same totals.
get st "$U/status?auto" >"$WORK/auto"
expect_eq "status?auto: 200" 200 "$(code)"
check "status?auto: every line is 'Key: value'" eval '! grep -vqE "^[A-Z][A-Za-z]*: " "$WORK/auto"'
expect_eq "status?auto: LoadsHit" "LoadsHit: 180" "$(grep '^LoadsHit:' "$WORK/auto")"
expect_eq "status?auto: SavesWritten" "SavesWritten: 166" "$(grep '^SavesWritten:' "$WORK/auto")"
get st "$U/status" >"$WORK/human"
expect_eq "status: loads_hit" "loads_hit: 180" "$(grep '^loads_hit:' "$WORK/human")"
get st "$U/server-status?auto" >"$WORK/ss"
expect_eq "server-status?auto: SessstoreLoadsHit" "SessstoreLoadsHit: 180" \
    "$(grep '^SessstoreLoadsHit:' "$WORK/ss")"
get st "$U/server-status" >"$WORK/ss.html"
check "server-status: a mod_sessstore section" grep -q '<h2>Session store (mod_sessstore)' "$WORK/ss.html"
check "server-status: its totals" grep -q '<dt>loads_hit: 180</dt>' "$WORK/ss.html"

# The log tag: 8 hex digits of SHA-256 of the ID, in the access log and the error log.
expect_eq "tag: the login's access-log line" "$TAG 302 POST /dologin HTTP/1.1" \
    "$(grep ' /dologin ' "$WORK/pf/logs/tag.log" | head -1)"
check "tag: the error log names the same session" \
    grep -q "session $TAG: new ID issued" "$WORK/pf/logs/error.log"
expect_eq "tag: every count.cgi line of the session carries it" 60 \
    "$(grep -c "^$TAG 200 GET /private/cgi/count.cgi" "$WORK/pf/logs/tag.log")"
expect_eq "tag: the parallel clients' sessions have tags of their own" 100 \
    "$(grep ' 200 GET /private/cgi/count.cgi' "$WORK/pf/logs/tag.log" | grep -vc "^$TAG ")"
get c "$U/logout" >/dev/null
expect_eq "tag: the logout's line" "$TAG 307 GET /logout HTTP/1.1" "$(grep ' /logout ' "$WORK/pf/logs/tag.log")"
check "tag: the error log says it ended" grep -q "session $TAG ended" "$WORK/pf/logs/error.log"
expect_eq "tag: '-' without a session" "- 200 GET /metrics HTTP/1.1" \
    "$(grep ' /metrics ' "$WORK/pf/logs/tag.log" | head -1)"
check "tag: no ID in any log" eval '! grep -rqF "$SID" "$WORK/pf/logs"'
check "metrics after logout" metrics pf3 "$U"
expect_eq "one session ended" 1 "$(sample pf3 "$deletes")"
expect_eq "the logout loaded it once more" 181 "$(sample pf3 "$hit")"

# Graceful restart: the totals run on.
httpd_signal pf graceful
httpd_wait_ready pf "$P" 2 || not_ok "prefork: graceful restart"
check "metrics after a graceful restart" metrics pf4 "$U"
expect_eq "the totals survive a graceful restart" 181 "$(sample pf4 "$hit")"
# Five clients sharing alice's new session at once: the merges' accounting.
expect_eq "prefork: alice logs in again" 302 "$(login c "$U" alice secret)"
shared_burst prefork "$U" c 5 20
check "prefork: no child crashed" eval '! log_has_crash pf'
httpd_stop pf

# ---- Redis, event with three processes ----
RP=$(free_port)
redis_start redis "$RP" --requirepass s3cr3tpw
P=$(free_port)
httpd_conf ev "$P" event "StartServers 3" "ServerLimit 4" "ThreadsPerChild 5" \
    "MinSpareThreads 15" "MaxSpareThreads 20" "MaxRequestWorkers 20" "KeepAlive Off" \
    "SessionStoreBackend redis://:s3cr3tpw@127.0.0.1:$RP/0?breaker=100${REDIS_SLOW_OPTIONS:-&connect_timeout=200&command_timeout=300}" \
    "${PAGES[@]}"
httpd_start ev "$P"
U=http://127.0.0.1:$P
expect_eq "event: login" 302 "$(login e "$U" bob hunter2)"
urls=()
for i in $(seq 25); do urls+=("$U/private/cgi/count.cgi"); done
# 8 clients, a login session each, x 25 count.cgi at the same time.
for c in $(seq 8); do
    expect_eq "event: login of parallel client $c" 302 "$(login "e$c" "$U" bob hunter2)"
done
pids=()
for c in $(seq 8); do
    curl -sS --max-time 120 -b "$(jar "e$c")" -w '%{http_code}\n' \
        "${urls[@]}" >"$WORK/ev.par.$c" &
    pids+=($!)
done
wait "${pids[@]}"
expect_eq "event: 200 parallel responses, all 200" 200 "$(cat "$WORK"/ev.par.* | grep -cx 200)"
expect_eq "event: each parallel client's session counted to 25" 8 "$(cat "$WORK"/ev.par.* | grep -cx counter=25)"
PIDS=$(grep 'count.cgi' "$WORK/ev/logs/access.log" | awk '{ print $NF }' | sort -u | wc -l)
check "event: served by more than one process ($PIDS pids)" test "$PIDS" -gt 1
check "event: the metrics page parses" metrics ev1 "$U"
expect_eq "event: loads hit = 200 requests" 200 "$(sample ev1 "$hit")"
expect_eq "event: writes = 9 logins + 200 count.cgi" 209 "$(sample ev1 "$written")"
expect_eq "event: load histogram counts every store load" 200 "$(sample ev1 "$load_count")"
expect_eq "event: save histogram counts every store save" 209 "$(sample ev1 "$save_count")"
check "event: no password on the page" eval '! grep -q s3cr3tpw "$WORK/ev1.prom"'
expect_eq "event: Redis's evicted_keys" 0 "$(grep '^sessstore_store_evictions_total{store="redis' "$WORK/ev1.prom" | awk '{print $NF}')"
expect_eq "event: Redis up" 1 "$(grep '^sessstore_store_up{' "$WORK/ev1.prom" | awk '{print $NF}')"
# Eight clients sharing bob's first session at once: the merges' accounting.
shared_burst event "$U" e 8 25

# Redis stopped: requests fail, the children say their store is down.
redis_stop redis
for i in 1 2 3 4 5 6; do get e "$U/private/cgi/count.cgi" >/dev/null; done
check "event: metrics while Redis is down" metrics ev2 "$U"
check "event: load errors counted" test "$(sample ev2 'sessstore_loads_total{result="error"}')" -ge 1
check "event: children with the store down" test "$(sample ev2 sessstore_children_store_down)" -ge 1
expect_eq "event: Redis down on the page" 0 "$(grep '^sessstore_store_up{' "$WORK/ev2.prom" | awk '{print $NF}')"
# Redis back: no process is reported down once its last failure is 10 s old,
# even one that has served nothing since.
redis_start redis "$RP" --requirepass s3cr3tpw
sleep 10.5
check "event: metrics with Redis back" metrics ev3 "$U"
expect_eq "event: no child has its store down 10 s later" 0 "$(sample ev3 sessstore_children_store_down)"
expect_eq "event: Redis up again" 1 "$(grep '^sessstore_store_up{' "$WORK/ev3.prom" | awk '{print $NF}')"
check "event: no child crashed" eval '! log_has_crash ev'
finish
