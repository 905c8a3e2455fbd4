#!/usr/bin/env bash
# Redis stopped under traffic: every request answers within the timeouts, no
# child crashes, nobody is let in without a verified session, the outage is
# logged once per process; Redis back: logins work again without touching httpd.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_nodes.sh"

RP=$(free_port)
redis_start redis "$RP"
PA=$(free_port)
httpd_conf a "$PA" event \
    "SessionStoreBackend redis://127.0.0.1:$RP/0?connect_timeout=200&command_timeout=200&breaker=500" \
    "<Location /private2>" "SessionStoreOutage nosession" "</Location>" \
    "ErrorDocument 503 /outage.html" \
    "Alias /open/ $WORK/a/htdocs/private/cgi/" \
    "<Location /open/>" "SessionStoreOutage nosession" "</Location>"
mkdir -p "$WORK/a/htdocs/private2" && echo "SECRET 2" >"$WORK/a/htdocs/private2/index.html"
echo "OUTAGE PAGE" >"$WORK/a/htdocs/outage.html"
# An application's own logout: it empties the session through SessionHeader.
cat >"$WORK/a/htdocs/private/cgi/clear.cgi" <<'CGI'
#!/bin/sh
printf 'X-Replace-Session: counter=\r\nContent-Type: text/plain\r\n\r\nyou are logged out\n'
CGI
chmod 755 "$WORK/a/htdocs/private/cgi/clear.cgi"
cat >>"$WORK/a/httpd.conf" <<CONF
<Location /private2>
    AuthType form
    AuthName site
    AuthFormProvider file
    AuthUserFile $WORK/a/htpasswd
    AuthFormLoginRequiredLocation /login.html
    Require valid-user
</Location>
CONF
httpd_start a "$PA"
A=http://127.0.0.1:$PA

login u "$A" alice secret >/dev/null
get u "$A/private/" >/dev/null
expect_eq "logged in while Redis runs" 200 "$(code)"
expect_eq "an anonymous counter while Redis runs" counter=1 "$(get c "$A/open/count.cgi")"

# A hung Redis (SIGSTOP): connections open, replies never come.
kill -STOP "$(cat "$WORK/redis/redis.pid")"
hung=0
hung_codes=""
for i in 1 2 3 4 5; do
    t=$(curl -s -o /dev/null -b "$(jar u)" -w '%{http_code} %{time_total}' --max-time 5 "$A/private/")
    hung_codes="$hung_codes ${t% *}"
    ms=$(awk -v t="${t#* }" 'BEGIN { printf "%d", t * 1000 }')
    [ "$ms" -gt "$hung" ] && hung=$ms
done
OUT=$(get c "$A/open/clear.cgi")
expect_eq "Redis hung, nosession: an application's logout cannot be saved: 503" 503 "$(code)"
check "... and does not say 'logged out'" eval '! grep -q "logged out" <<<"$OUT"'
get c "$A/open/session.cgi" >/dev/null
expect_eq "... while a read-only page with the same cookie is served (nosession)" 200 "$(code)"
kill -CONT "$(cat "$WORK/redis/redis.pid")"
echo "# Redis hung: codes:$hung_codes; slowest ${hung} ms (command_timeout 200 ms)"
check "Redis hung: requests with a session get 503, none is let in" \
    bash -c "[ -z \"\$(echo '$hung_codes' | tr ' ' '\n' | grep -v '^503$' | grep -v '^$')\" ]"
check "Redis hung: no request waits past the timeouts (${hung} ms < 1000 ms)" test "$hung" -lt 1000
sleep 1.2 # let the breaker window pass
t0=$(date +%s%N)
until [ "$(curl -s -o /dev/null -b "$(jar u)" -w '%{http_code}' "$A/private/")" = 200 ]; do
    [ $((($(date +%s%N) - t0) / 1000000)) -gt 3000 ] && break
    sleep 0.1
done
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# Redis resumed: the session is served again after ${ms} ms"
check "Redis resumed: the same session is served again, no login needed (${ms} ms)" test "$ms" -lt 3000
expect_eq "... and the counter the failed logout did not clear goes on" counter=2 \
    "$(get c "$A/open/count.cgi")"

redis_stop redis
worst=0
codes=""
for i in $(seq 1 20); do
    t=$(curl -s -o /dev/null -b "$(jar u)" -w '%{http_code} %{time_total}' --max-time 5 "$A/private/")
    codes="$codes ${t% *}"
    ms=$(awk -v t="${t#* }" 'BEGIN { printf "%d", t * 1000 }')
    [ "$ms" -gt "$worst" ] && worst=$ms
done
echo "# Redis down: 20 requests with a session, codes:$codes; slowest ${worst} ms"
check "Redis down: every request with a session gets 503 (SessionStoreOutage unavailable)" \
    bash -c "[ -z \"\$(echo '$codes' | tr ' ' '\n' | grep -v '^503$' | grep -v '^$')\" ]"
check "Redis down: each answered within connect+command timeout and slack (${worst} ms < 1000 ms)" \
    test "$worst" -lt 1000
get u "$A/private2/" >/dev/null
expect_eq "Redis down, SessionStoreOutage nosession: not let in, sent to the login page" 302 "$(code)"
expect_eq "Redis down: the 503 is the ErrorDocument's page" "OUTAGE PAGE" "$(get u "$A/private/")"
expect_eq "... still with 503" 503 "$(code)"

get anon "$A/private/" >/dev/null
expect_eq "Redis down: a request without a session is sent to log in" 302 "$(code)"
# The login cannot be saved: 503 with Retry-After, not a success redirect
# without a cookie that lands the user back on the login page.
expect_eq "Redis down: a login cannot be completed, and says so" 503 "$(login n "$A" alice secret)"
expect_eq "... with Retry-After" 2 "$(last_header Retry-After)"
expect_eq "... no redirect" "" "$(last_header Location)"
expect_eq "... no cookie" 0 "$(set_cookie_count)"
get n "$A/private/" >/dev/null
check "Redis down: ... the next request is still not authenticated" test "$(code)" != 200

errs=$(grep -c '\[sessstore:error\]' "$WORK/a/logs/error.log")
children=$(grep -o '\[pid [0-9]*' "$WORK/a/logs/error.log" | sort -u | wc -l)
echo "# error lines during the outage: $errs (processes that logged anything: $children)"
check "each outage is logged once per process, not per request ($errs lines for 30+ requests)" \
    test "$errs" -ge 1 -a "$errs" -le 8
check "no child crashed" bash -c "! grep -qE 'exit signal|Segmentation' '$WORK/a/logs/error.log'"

redis_start redis "$RP"
t0=$(date +%s%N)
recovered=0
for i in $(seq 1 50); do
    rm -f "$(jar r)"
    if [ "$(login r "$A" alice secret)" = 302 ] && [ -n "$(jar_sid r)" ]; then
        get r "$A/private/" >/dev/null
        if [ "$(code)" = 200 ]; then
            recovered=1
            break
        fi
    fi
    sleep 0.1
done
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# Redis back: a login works again after ${ms} ms"
expect_eq "Redis back: logins work again without touching httpd" 1 "$recovered"
check "... within 2 s (${ms} ms)" test "$ms" -lt 2000
check "the recovery is logged" grep -q 'sessstore:notice' "$WORK/a/logs/error.log"
check "the log never shows the session ID" bash -c "! grep -qF '$(jar_sid r)' '$WORK/a/logs/error.log'"

redis_cleanup
finish
