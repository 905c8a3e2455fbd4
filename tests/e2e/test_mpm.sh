#!/bin/bash
# test_mpm.sh - one arena for every child: prefork with several children and
# no keep-alive, the basic flow under worker and event, and parallel clients.
source "$(dirname "$0")/lib.sh"

# ---- prefork: many processes, one session ----
P=$(free_port)
httpd_conf pf "$P" prefork "StartServers 4" "MinSpareServers 4" "MaxSpareServers 8" "KeepAlive Off"
httpd_start pf "$P"
U=http://127.0.0.1:$P
children() {
    pgrep -P "$(httpd_pid pf)" | wc -l
}
check "prefork: 4 children are up" wait_for 100 eval '[ "$(children)" -ge 4 ]'
expect_eq "prefork: login" 302 "$(login c "$U" alice secret)"
before_lines=$(wc -l <"$WORK/pf/logs/access.log")
# One client, 40 requests, each on a new connection (KeepAlive Off), one
# curl process: each response must carry the next counter value, whichever
# child served it.
urls=()
for i in $(seq 40); do urls+=("$U/private/cgi/count.cgi"); done
curl -sS --max-time 60 -b "$(jar c)" -D "$WORK/pf.headers" -w '%{http_code}\n' "${urls[@]}" >"$WORK/pf.out"
expect_eq "prefork: 40 responses, all 200" 40 "$(grep -cx 200 "$WORK/pf.out")"
expect_eq "prefork: the counters run 1..40 in order" "$(seq 40 | sed 's/^/counter=/')" \
    "$(grep '^counter=' "$WORK/pf.out")"
expect_eq "prefork: no Set-Cookie in 40 responses" 0 "$(grep -ci '^set-cookie:' "$WORK/pf.headers")"
tail -n +$((before_lines + 1)) "$WORK/pf/logs/access.log" | grep 'count.cgi' >"$WORK/pf.log"
expect_eq "prefork: 40 requests in the access log" 40 "$(wc -l <"$WORK/pf.log")"
PIDS=$(awk '{ print $NF }' "$WORK/pf.log" | sort -u | wc -l)
check "prefork: served by more than one child ($PIDS pids)" test "$PIDS" -gt 1
expect_eq "prefork: session.cgi sees counter=40" 1 \
    "$(get c "$U/private/cgi/session.cgi" | grep -c '^session=.*counter=40')"
check "prefork: no child crashed" eval '! log_has_crash pf'
httpd_stop pf

# ---- worker and event: the basic flow ----
for mpm in worker event; do
    P=$(free_port)
    httpd_conf "$mpm" "$P" "$mpm"
    httpd_start "$mpm" "$P"
    U=http://127.0.0.1:$P
    get "a_$mpm" "$U/private/" >/dev/null
    expect_eq "$mpm: anonymous /private/ redirects" 302 "$(code)"
    expect_eq "$mpm: login" 302 "$(login "c_$mpm" "$U" alice secret)"
    SID=$(jar_sid "c_$mpm")
    check "$mpm: a 43-char ID is issued" eval '[[ $SID =~ ^[A-Za-z0-9_-]{43}$ ]]'
    expect_eq "$mpm: the secret page" "SECRET PAGE" "$(get "c_$mpm" "$U/private/")"
    OUT=$(get "c_$mpm" "$U/private/cgi/session.cgi")
    check "$mpm: session.cgi sees alice" grep -q '^session=.*site-user=alice' <<<"$OUT"
    for i in 1 2 3; do
        expect_eq "$mpm: counter=$i" "counter=$i" "$(get "c_$mpm" "$U/private/cgi/count.cgi")"
    done
    OUT=$(get "c_$mpm" "$U/private/cgi/session.cgi")
    check "$mpm: session.cgi sees counter=3" grep -q '^session=.*counter=3' <<<"$OUT"
    get "c_$mpm" "$U/logout" >/dev/null
    expect_eq "$mpm: logout" 307 "$(code)"
    set_jar_sid "r_$mpm" "$SID"
    get "r_$mpm" "$U/private/" >/dev/null
    expect_eq "$mpm: the old ID is refused after logout" 302 "$(code)"
    expect_eq "$mpm: the ID is unchanged until logout" "$SID" "$(jar_sid "r_$mpm")"

    # ---- parallel (event only, to keep the suite short): 10 clients x 20
    # count.cgi, all at once ----
    if [ "$mpm" = worker ]; then
        check "$mpm: no child crashed" eval '! log_has_crash "$mpm"'
        httpd_stop "$mpm"
        continue
    fi
    for c in $(seq 10); do
        [ "$(login "p${c}_$mpm" "$U" alice secret)" = 302 ] || not_ok "$mpm: parallel client $c logs in"
    done
    urls=()
    for i in $(seq 20); do urls+=("$U/private/cgi/count.cgi"); done
    pids=()
    for c in $(seq 10); do
        curl -sS --max-time 60 -b "$(jar "p${c}_$mpm")" -D "$WORK/par.$c.headers" \
            -w '%{http_code}\n' "${urls[@]}" >"$WORK/par.$c.out" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}"
    good=0
    for c in $(seq 10); do
        if [ "$(grep -cx 200 "$WORK/par.$c.out")" = 20 ] &&
            [ "$(grep '^counter=' "$WORK/par.$c.out")" = "$(seq 20 | sed 's/^/counter=/')" ]; then
            good=$((good + 1))
        else
            echo "# client $c: $(tr '\n' ' ' <"$WORK/par.$c.out" | cut -c1-200)"
        fi
    done
    expect_eq "$mpm: 10 parallel clients each counted 1..20 with 200s" 10 "$good"
    expect_eq "$mpm: ... and got no Set-Cookie" 0 "$(cat "$WORK"/par.*.headers | grep -ci '^set-cookie:')"
    distinct=$(for c in $(seq 10); do jar_sid "p${c}_$mpm"; done | sort -u | wc -l)
    expect_eq "$mpm: ... with 10 distinct IDs" 10 "$distinct"
    for c in 1 10; do
        OUT=$(get "p${c}_$mpm" "$U/private/cgi/session.cgi")
        check "$mpm: client $c's session ends at counter=20" grep -q '^session=.*counter=20' <<<"$OUT"
    done
    check "$mpm: no child crashed" eval '! log_has_crash "$mpm"'
    check "$mpm: no error in the log" eval '! grep -E "\[(sessstore|cgid?|core|mpm_[a-z]+):(error|crit|alert|emerg)\]" "$WORK/$mpm/logs/error.log"'
    httpd_stop "$mpm"
done

finish
