#!/bin/bash
# test_restart.sh - sessions survive graceful and plain restarts (the arena is
# kept by the parent process), and are lost across stop + start. Under
# prefork (mod_cgi) and event (mod_cgid, whose daemon restarts too), and with
# an arena of 300M (the size for a million sessions): each restart walks it,
# stripe by stripe.
source "$(dirname "$0")/lib.sh"

# signal_and_wait NAME PORT graceful|restart: signals, then waits for the new
# generation to be up and answering.
signal_and_wait() {
    local name=$1 port=$2 sig=$3 gen failed
    gen=$(($(httpd_generations "$name") + 1))
    failed=$(httpd_failures "$name")
    httpd_signal "$name" "$sig" || return 1
    httpd_wait_ready "$name" "$port" "$gen" "$failed" &&
        wait_for 100 eval '[ "$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$port/public/")" = 200 ]'
}

for run in prefork event event:300M; do
    mpm=${run%%:*}
    size=${run#"$mpm"}
    size=${size#:}
    n=r_$mpm${size:+_$size}
    P=$(free_port)
    httpd_conf "$n" "$P" "$mpm" ${size:+"SessionStoreShmSize $size"}
    httpd_start "$n" "$P"
    U=http://127.0.0.1:$P
    PARENT=$(httpd_pid "$n")
    c=c_$mpm${size:+_$size}
    label=$mpm${size:+ $size}

    expect_eq "$label: login" 302 "$(login "$c" "$U" alice secret)"
    SID=$(jar_sid "$c")
    expect_eq "$label: counter=1" counter=1 "$(get "$c" "$U/private/cgi/count.cgi")"

    step=1
    for sig in graceful restart graceful restart; do
        step=$((step + 1))
        check "$label: $sig #$step: the server is back" signal_and_wait "$n" "$P" "$sig"
        expect_eq "$label: $sig #$step: same parent process" "$PARENT" "$(httpd_pid "$n")"
        expect_eq "$label: $sig #$step: the same cookie reaches the secret page" "SECRET PAGE" \
            "$(get "$c" "$U/private/")"
        expect_eq "$label: $sig #$step: no new cookie" 0 "$(set_cookie_count)"
        expect_eq "$label: $sig #$step: the counter continues" "counter=$step" \
            "$(get "$c" "$U/private/cgi/count.cgi")"
        expect_eq "$label: $sig #$step: the ID is unchanged" "$SID" "$(jar_sid "$c")"
    done
    expect_eq "$label: a new login after the restarts works" 302 "$(login "new_$c" "$U" bob hunter2)"
    expect_eq "$label: ... and reaches the secret page" "SECRET PAGE" "$(get "new_$c" "$U/private/")"

    if [ "$run" = prefork ]; then
        # A changed arena size cannot apply to the running arena: it is kept,
        # with its sessions, and the log says so.
        httpd_conf "$n" "$P" prefork "SessionStoreShmSize 8M"
        check "$label: graceful with a new SessionStoreShmSize" signal_and_wait "$n" "$P" graceful
        expect_eq "$label: ... the session survives" "SECRET PAGE" "$(get "$c" "$U/private/")"
        check "$label: ... and the log says the arena was kept" \
            grep -q 'SessionStoreShmSize or SessionStoreMaxSessionSize changed' \
            "$WORK/$n/logs/error.log"
    fi

    httpd_stop "$n"
    check "$label: stopped" eval '! kill -0 "$PARENT" 2>/dev/null'
    httpd_start "$n" "$P"
    check "$label: started again as a new process" test "$(httpd_pid "$n")" != "$PARENT"
    get "$c" "$U/private/" >/dev/null
    expect_eq "$label: after stop + start the session is gone (302)" 302 "$(code)"
    check "$label: no child crashed" eval '! log_has_crash "$n"'
    httpd_stop "$n"
done

finish
