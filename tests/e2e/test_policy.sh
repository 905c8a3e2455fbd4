#!/bin/bash
# test_policy.sh - the session policy where only httpd can show it: internal
# redirects share one session, SessionMaxAge does not make every request a
# write, a Basic-auth user never inherits another user's session, and a Redis
# that does not answer is reported at start-up.
source "$(dirname "$0")/lib.sh"

P=$(free_port)
httpd_conf a "$P" event \
    "LoadModule auth_basic_module $MODDIR/mod_auth_basic.so" \
    "Alias /anon/ $WORK/a/htdocs/private/cgi/" \
    "ErrorDocument 404 /anon/count.cgi" \
    "<Location /status>" "SetHandler sessstore-status" "</Location>" \
    "<Location /aged/>" "SessionMaxAge 600" "</Location>" \
    "Alias /aged/ $WORK/a/htdocs/private/cgi/" \
    "Alias /basic/ $WORK/a/htdocs/private/cgi/" \
    "<Location /basic/>" "AuthType Basic" "AuthName basic" "AuthBasicProvider file" \
    "AuthUserFile $WORK/a/htpasswd" "Require valid-user" "</Location>" \
    "<Location /logout>" "SessionStoreIdleTimeout 2" "</Location>" \
    "<Directory $WORK/a/htdocs/ht>" "AllowOverride AuthConfig" "</Directory>"
mkdir -p "$WORK/a/htdocs/ht" && echo HT >"$WORK/a/htdocs/ht/index.html"
echo "SessionStoreIdleTimeout 60" >"$WORK/a/htdocs/ht/.htaccess"
httpd_start a "$P"
A=http://127.0.0.1:$P

stat() { get status "$A/status" | sed -n "s/^$1: //p"; }
loads() { echo $(($(stat hits) + $(stat misses) + $(stat expired))); }

# ---- internal redirects: one session per client request ----
expect_eq "redirect: an anonymous counter" counter=1 "$(get r "$A/anon/count.cgi")"
before=$(loads)
OUT=$(get r "$A/no/such/page")
expect_eq "redirect: a 404 runs the ErrorDocument CGI" 404 "$(code)"
expect_eq "redirect: ... which sees and changes the session" counter=2 "$OUT"
expect_eq "redirect: one load for the request and its redirect" 1 $(($(loads) - before))
expect_eq "redirect: the change made after the redirect is kept" counter=3 \
    "$(get r "$A/anon/count.cgi")"
expect_eq "redirect: the ID is kept (no new cookie)" 0 "$(set_cookie_count)"

# ---- SessionMaxAge: read-only requests write nothing ----
expect_eq "maxage: a counter under SessionMaxAge 600" counter=1 "$(get m "$A/aged/count.cgi")"
saves=$(stat saves)
for i in 1 2 3 4 5 6 7 8; do get m "$A/aged/session.cgi" >/dev/null; done
check "maxage: the session carries mod_session's expiry" \
    grep -q 'expiry=' <<<"$(get m "$A/aged/session.cgi")"
expect_eq "maxage: 9 read-only requests, 0 writes" 0 $(($(stat saves) - saves))
expect_eq "maxage: a change is still written" counter=2 "$(get m "$A/aged/count.cgi")"
expect_eq "maxage: ... once" 1 $(($(stat saves) - saves))

# ---- Basic auth: another user in the same browser starts empty ----
OUT=$(get b "$A/basic/count.cgi" -u alice:secret)
expect_eq "basic: alice's counter" counter=1 "$OUT"
get b "$A/basic/count.cgi" -u alice:secret >/dev/null
ALICE=$(jar_sid b)
OUT=$(get b "$A/basic/session.cgi" -u bob:hunter2)
check "basic: bob is the user" grep -qx 'user=bob' <<<"$OUT"
check "basic: bob does not see alice's counter" eval '! grep -q counter <<<"$OUT"'
set_jar_sid old "$ALICE"
OUT=$(get old "$A/anon/session.cgi")
check "basic: bob's first request, a read, already ended alice's record" \
    eval '! grep -q counter=2 <<<"$OUT"'
expect_eq "basic: bob's own counter starts at 1" counter=1 "$(get b "$A/basic/count.cgi" -u bob:hunter2)"
check "basic: bob's session has a new ID" test "$(jar_sid b)" != "$ALICE"
set_jar_sid old "$ALICE"
OUT=$(get old "$A/anon/session.cgi")
check "basic: alice's old ID names nothing any more" eval '! grep -q counter=2 <<<"$OUT"'

# ---- a logout where the session has already expired ends it everywhere ----
login lo "$A" alice secret >/dev/null
set_jar_sid copy "$(jar_sid lo)"
expect_eq "strict logout: logged in" "SECRET PAGE" "$(get copy "$A/private/")"
sleep 2.5 # idle past /logout's 2 s, well within the site's 1800 s
get lo "$A/logout" >/dev/null
expect_eq "strict logout: the logout answers its redirect" 307 "$(code)"
get copy "$A/private/" >/dev/null
expect_eq "strict logout: a copy of the old cookie is refused elsewhere" 302 "$(code)"

# ---- timeouts are not for .htaccess: the store must know them all up front ----
get h "$A/ht/" >/dev/null
expect_eq ".htaccess: SessionStoreIdleTimeout there is an error" 500 "$(code)"
check "... which the error log explains" grep -q 'SessionStoreIdleTimeout not allowed here' \
    "$WORK/a/logs/error.log"

check "no child crashed" eval '! log_has_crash a'
httpd_stop a

# ---- a Redis that does not answer is reported at start-up ----
RP=$(free_port)
P2=$(free_port)
httpd_conf down "$P2" event "SessionStoreBackend redis://:St4rtPw@127.0.0.1:$RP/0?connect_timeout=200"
httpd_start down "$P2"
LOG=$WORK/down/logs/error.log
expect_eq "start-up: one warning that Redis does not answer" 1 \
    "$(grep -c 'does not answer at start-up' "$LOG")"
check "start-up: it names the backend" grep -q "127.0.0.1:$RP" "$LOG"
check "start-up: without the password" eval '! grep -q St4rtPw "$LOG"'
expect_eq "start-up: httpd serves anyway" "PUBLIC PAGE" "$(get x "http://127.0.0.1:$P2/public/")"
httpd_stop down

finish
