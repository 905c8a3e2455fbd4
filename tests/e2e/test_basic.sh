#!/bin/bash
# test_basic.sh - login, the session cookie, the session as CGIs see it,
# forged and garbage cookies, logout, owner change, the size limit, and what
# never reaches the error log.
source "$(dirname "$0")/lib.sh"

PA=$(free_port)
# /anon/ serves the same CGIs without the login requirement: anonymous
# sessions.
httpd_conf a "$PA" prefork "SessionStoreMaxSessionSize 4096" \
    "Alias /anon/ $WORK/a/htdocs/private/cgi/"
httpd_start a "$PA"
A=http://127.0.0.1:$PA
# A second, independent server: its IDs are well-formed but unknown to "a".
PB=$(free_port)
httpd_conf b "$PB" prefork
httpd_start b "$PB"
B=http://127.0.0.1:$PB

ID_RE='^[A-Za-z0-9_-]{43}$'
ALL_IDS=() # every ID any server issued, to look for in the logs

# The ID set by the last response's Set-Cookie ("" when none).
last_cookie_id() {
    last_set_cookie | sed -n 's/^[Ss]et-[Cc]ookie: *sid=\([^;]*\).*/\1/p' | tail -1
}

remember_id() {
    [ -n "$1" ] && ALL_IDS+=("$1")
}

# status URL [curl args...]: just the status code, with a raw Cookie header
# given as curl args, no jar.
status() {
    local url=$1
    shift
    curl -sS --max-time "$CURL_MAX_TIME" -o /dev/null -w '%{http_code}' "$@" "$url" 2>/dev/null
}

is_id() {
    [[ $1 =~ $ID_RE ]]
}

# ---- anonymous access ----
get anon "$A/private/" >/dev/null
expect_eq "anonymous /private/ is redirected" 302 "$(code)"
expect_eq "... to the login page" /login.html "$(last_header Location)"
expect_eq "... without a session cookie" 0 "$(set_cookie_count)"

# ---- login ----
expect_eq "login answers with a redirect" 302 "$(login c "$A" alice secret)"
expect_eq "login redirects to the success location" /private/ "$(last_header Location)"
expect_eq "login sets exactly one cookie" 1 "$(set_cookie_count)"
SC=$(last_set_cookie)
SID=$(last_cookie_id)
remember_id "$SID"
check "the cookie value is a 43-char base64url ID ($SID)" is_id "$SID"
check "the cookie holds neither user nor password" \
    eval '! grep -qiE "alice|secret|site-" <<<"$SC"'
check "the cookie has Path=/" grep -q '; Path=/;' <<<"$SC"
check "the cookie is HttpOnly" grep -q '; HttpOnly' <<<"$SC"
check "the cookie is SameSite=Lax" grep -q '; SameSite=Lax' <<<"$SC"
check "the cookie is not Secure over plain http" eval '! grep -qi "; Secure" <<<"$SC"'
expect_eq "the jar holds the issued ID" "$SID" "$(jar_sid c)"

# ---- the session at work ----
expect_eq "the protected page is served" "SECRET PAGE" "$(get c "$A/private/")"
expect_eq "... with 200" 200 "$(code)"
expect_eq "an unchanged session sends no Set-Cookie" 0 "$(set_cookie_count)"
OUT=$(get c "$A/private/cgi/session.cgi")
check "session.cgi sees REMOTE_USER alice" grep -qx 'user=alice' <<<"$OUT"
check "session.cgi sees the user in HTTP_SESSION" grep -q '^session=.*site-user=alice' <<<"$OUT"
for n in 1 2 3; do
    expect_eq "count.cgi increments to $n" "counter=$n" "$(get c "$A/private/cgi/count.cgi")"
    expect_eq "count.cgi $n: the ID is kept, no Set-Cookie" 0 "$(set_cookie_count)"
done
OUT=$(get c "$A/private/cgi/session.cgi")
check "session.cgi then shows counter=3" grep -q '^session=.*counter=3' <<<"$OUT"
check "... and still the user" grep -q '^session=.*site-user=alice' <<<"$OUT"
expect_eq "the ID never changed" "$SID" "$(jar_sid c)"

# ---- forged IDs are never adopted ----
expect_eq "login on server b" 302 "$(login other "$B" alice secret)"
FOREIGN=$(jar_sid other)
remember_id "$FOREIGN"
check "server b issued a well-formed ID" is_id "$FOREIGN"
expect_eq "b's ID works on b" "SECRET PAGE" "$(get other "$B/private/")"
set_jar_sid f1 "$FOREIGN"
get f1 "$A/private/" >/dev/null
expect_eq "b's ID is refused by a (302)" 302 "$(code)"
RANDOM_ID=$(random_id)
check "the random forged ID is well-formed" is_id "$RANDOM_ID"
set_jar_sid f2 "$RANDOM_ID"
get f2 "$A/private/" >/dev/null
expect_eq "a random well-formed ID is refused (302)" 302 "$(code)"
for forged in FOREIGN RANDOM_ID; do
    j=f_$forged
    set_jar_sid "$j" "${!forged}"
    expect_eq "login with the $forged cookie in the jar" 302 "$(login "$j" "$A" alice secret)"
    NEW=$(last_cookie_id)
    remember_id "$NEW"
    check "a new ID is issued at login ($forged)" is_id "$NEW"
    check "... and it differs from the forged one" test "$NEW" != "${!forged}"
    expect_eq "... the jar now holds the new ID" "$NEW" "$(jar_sid "$j")"
    expect_eq "... which reaches the protected page" "SECRET PAGE" "$(get "$j" "$A/private/")"
    set_jar_sid replay "${!forged}"
    get replay "$A/private/" >/dev/null
    expect_eq "... while the forged ID is still refused" 302 "$(code)"
done

# ---- garbage cookies ----
LONG44=$(random_id)x
BADCHAR=$(random_id | cut -c1-42)!
STRAYBITS=$(random_id | cut -c1-42)B
TENKB=$(head -c 10240 /dev/zero | tr '\0' 'A')
declare -a GARBAGE=(
    "sid=$LONG44"
    "sid=$BADCHAR"
    "sid=${BADCHAR//!/.}"
    "sid=${BADCHAR//!/+}"
    "sid=${BADCHAR//!//}"
    "sid=$STRAYBITS"
    "sid="
    "sid"
    "sid=;sid=;sid="
    "sid=\"$(random_id)\""
    "sid=%41%41%41"
    "sid = $(random_id)"
    ";;; ; =; =sid; sid==="
    "sid=$(random_id); sid=$(random_id); sid=$(random_id); sid=$(random_id); sid=$(random_id); sid=$LONG44"
    "sid=$TENKB"
    "sid=${TENKB:0:8000}"
)
n=0
for cookie in "${GARBAGE[@]}"; do
    n=$((n + 1))
    code=$(status "$A/private/" -H "Cookie: $cookie")
    case $code in
    302 | 400) ok "garbage cookie #$n (${cookie:0:40}...) answered $code" ;;
    *) not_ok "garbage cookie #$n (${cookie:0:40}...) answered $code, expected 302 (or 400 when too long)" ;;
    esac
    code=$(status "$A/public/" -H "Cookie: $cookie")
    case $code in
    200 | 400) ok "garbage cookie #$n on /public/ answered $code" ;;
    *) not_ok "garbage cookie #$n on /public/ answered $code" ;;
    esac
done
expect_eq "after the garbage, /public/ still answers 200" 200 "$(status "$A/public/")"
expect_eq "after the garbage, the session still works" "SECRET PAGE" "$(get c "$A/private/")"
check "no child crashed" eval '! log_has_crash a'

# ---- several sid cookies: the valid one wins, in either order ----
UNKNOWN=$(random_id)
for bogus in "$UNKNOWN" "$LONG44" ""; do
    label=${bogus:0:8}
    expect_eq "valid sid then bogus sid ($label...)" 200 \
        "$(status "$A/private/" -H "Cookie: sid=$SID; sid=$bogus")"
    expect_eq "bogus sid ($label...) then valid sid" 200 \
        "$(status "$A/private/" -H "Cookie: sid=$bogus; sid=$SID")"
done
curl -sS -o "$WORK/dup.body" -H "Cookie: other=1; sid=$UNKNOWN; x=y; sid=$SID" "$A/private/"
expect_eq "... and the page is the secret one" "SECRET PAGE" "$(cat "$WORK/dup.body")"
curl -sS -o "$WORK/dup.body" -H "Cookie: sid=$UNKNOWN" -H "Cookie: sid=$SID" "$A/private/"
expect_eq "valid sid in a second Cookie header" "SECRET PAGE" "$(cat "$WORK/dup.body")"

# ---- logout ----
expect_eq "logout client: login" 302 "$(login lo "$A" alice secret)"
LO=$(jar_sid lo)
remember_id "$LO"
expect_eq "logout client: count.cgi" counter=1 "$(get lo "$A/private/cgi/count.cgi")"
get lo "$A/logout" >/dev/null
expect_eq "logout redirects" 307 "$(code)"
expect_eq "logout redirects to the login page" /login.html "$(last_header Location)"
# A logout ends the session: the application's data (the counter) goes too,
# not to a new anonymous ID the next person on this browser would inherit.
check "logout (with other data in the session) clears the cookie" \
    grep -qi '^set-cookie: sid=;.*Max-Age=0' <<<"$(last_set_cookie)"
expect_eq "... and issues no new ID" "" "$(last_cookie_id)"
expect_eq "... the jar holds no session" "" "$(jar_sid lo)"
OUT=$(get lo "$A/anon/session.cgi")
check "... the next anonymous page sees no counter" eval '! grep -q counter <<<"$OUT"'
get lo "$A/private/" >/dev/null
expect_eq "after logout the client is not logged in" 302 "$(code)"
set_jar_sid replay "$LO"
get replay "$A/private/" >/dev/null
expect_eq "the pre-logout cookie replayed in a fresh jar is refused" 302 "$(code)"
get replay "$A/private/cgi/session.cgi" >/dev/null
expect_eq "... for the CGI too" 302 "$(code)"

expect_eq "plain logout client: login" 302 "$(login lo2 "$A" bob hunter2)"
LO2=$(jar_sid lo2)
remember_id "$LO2"
get lo2 "$A/logout" >/dev/null
check "logout of a session holding only the login clears the cookie" \
    grep -qi '^set-cookie: sid=;.*Max-Age=0' <<<"$(last_set_cookie)"
expect_eq "... the jar no longer holds it" "" "$(jar_sid lo2)"
set_jar_sid replay "$LO2"
get replay "$A/private/" >/dev/null
expect_eq "... and replaying it is refused" 302 "$(code)"

# ---- owner change: alice, then bob in the same jar ----
expect_eq "owner change: alice logs in" 302 "$(login oc "$A" alice secret)"
OA=$(jar_sid oc)
remember_id "$OA"
expect_eq "owner change: alice's application data" counter=1 "$(get oc "$A/private/cgi/count.cgi")"
expect_eq "owner change: bob logs in in the same jar" 302 "$(login oc "$A" bob hunter2)"
OB=$(last_cookie_id)
remember_id "$OB"
check "bob gets a new ID" test -n "$OB" -a "$OB" != "$OA"
OUT=$(get oc "$A/private/cgi/session.cgi")
check "the session is bob's" grep -qx 'user=bob' <<<"$OUT"
check "... without alice in it" eval '! grep -q alice <<<"$OUT"'
check "... and without alice's data (the new owner starts empty)" eval '! grep -q counter <<<"$OUT"'
expect_eq "bob's own counter starts at 1" counter=1 "$(get oc "$A/private/cgi/count.cgi")"
set_jar_sid replay "$OA"
get replay "$A/private/" >/dev/null
expect_eq "alice's old ID is refused" 302 "$(code)"

# ---- the size limit (SessionStoreMaxSessionSize 4096) ----
expect_eq "size: login" 302 "$(login big "$A" alice secret)"
remember_id "$(jar_sid big)"
expect_eq "size: counter=1" counter=1 "$(get big "$A/private/cgi/count.cgi")"
for size in 20000 5000; do
    BODY=$(get big "$A/private/cgi/big.cgi?$size")
    # The change cannot be saved: the response says so instead of "stored".
    expect_eq "size: big.cgi?$size answers 500" 500 "$(code)"
    check "size: ... and not the script's success body" eval '! grep -q stored <<<"$BODY"'
    OUT=$(get big "$A/private/cgi/session.cgi")
    check "size: the previous version (counter=1) is intact" grep -q '^session=.*counter=1' <<<"$OUT"
    check "size: the oversized data was not stored" eval '! grep -q "big=" <<<"$OUT"'
    check "size: still logged in" grep -qx 'user=alice' <<<"$OUT"
done
# A response replaced by the refusal carries nothing of the original: not
# the application's own cookie either.
cat >"$WORK/a/htdocs/private/cgi/bigcookie.cgi" <<'CGI'
#!/bin/sh
printf 'Set-Cookie: remember_me=TOKEN-FOR-ALICE\r\n'
printf 'X-Replace-Session: big=%s\r\n' "$(head -c 4500 /dev/zero | tr '\0' x)"
printf 'Content-Type: text/plain\r\n\r\nstored\n'
CGI
chmod 755 "$WORK/a/htdocs/private/cgi/bigcookie.cgi"
get big "$A/private/cgi/bigcookie.cgi" >/dev/null
expect_eq "size: a refused save answers 500" 500 "$(code)"
check "size: ... without the application's Set-Cookie" eval '! grep -qi remember_me "$WORK/last.headers"'
for i in $(seq 10); do get big "$A/private/cgi/big.cgi?6000" >/dev/null; done
# Logged, but at most once a minute by each process, however often refused.
lines=$(grep 'SessionStoreMaxSessionSize' "$WORK/a/logs/error.log" | grep -o '\[pid [0-9]*' | sort)
check "size: refusals are logged ($(wc -l <<<"$lines") lines for 12)" test -n "$lines"
expect_eq "size: ... at most one line per process" "" "$(uniq -d <<<"$lines")"
check "size: the log line gives the size and the limit" \
    grep -qE 'not saved: [0-9]+ bytes exceed the limit of 4096 \(SessionStoreMaxSessionSize\)' \
    "$WORK/a/logs/error.log"
expect_eq "size: a session that fits is stored" "stored 3000" "$(get big "$A/private/cgi/big.cgi?3000")"
OUT=$(get big "$A/private/cgi/session.cgi")
check "size: ... and visible" grep -q "big=$(head -c 3000 /dev/zero | tr '\0' x)" <<<"$OUT"
expect_eq "size: the counter continues" counter=2 "$(get big "$A/private/cgi/count.cgi")"
expect_eq "size: the server keeps serving" 200 "$(status "$A/public/")"

# A large session (about 100 arena blocks) round-trips intact on server b
# (default limit 16K), alongside the ID-only one.
expect_eq "size: 12000 bytes fit b's default limit" "stored 12000" \
    "$(get other "$B/private/cgi/big.cgi?12000")"
OUT=$(get other "$B/private/cgi/session.cgi")
# (the CGI sends it in 4000-byte header lines, joined with an encoded ", ")
expect_eq "size: ... and come back whole" 12000 \
    "$(sed -n 's/^session=.*big=\([^&]*\).*/\1/p' <<<"$OUT" | tr -cd x | wc -c)"
check "size: ... with the login still in the session" grep -q '^session=.*site-user=alice' <<<"$OUT"

# ---- anonymous sessions, login, and an emptied session ----
expect_eq "anon: count.cgi without login" counter=1 "$(get an "$A/anon/count.cgi")"
AN=$(last_cookie_id)
remember_id "$AN"
check "anon: an anonymous session gets an ID" is_id "$AN"
expect_eq "anon: counter=2" counter=2 "$(get an "$A/anon/count.cgi")"
expect_eq "anon: ... same ID, no Set-Cookie" 0 "$(set_cookie_count)"
expect_eq "anon: login in the same jar" 302 "$(login an "$A" alice secret)"
AL=$(last_cookie_id)
remember_id "$AL"
check "anon: login issues a new ID (the pre-login ID is not kept)" test -n "$AL" -a "$AL" != "$AN"
OUT=$(get an "$A/private/cgi/session.cgi")
check "anon: the session data survives the login" grep -q '^session=.*counter=2' <<<"$OUT"
check "anon: ... and the session is alice's" grep -qx user=alice <<<"$OUT"
set_jar_sid replay "$AN"
OUT=$(get replay "$A/anon/session.cgi")
expect_eq "anon: the pre-login ID no longer holds anything" "session=" "$(grep '^session=' <<<"$OUT")"
get replay "$A/private/" >/dev/null
expect_eq "anon: ... and does not log anyone in" 302 "$(code)"
expect_eq "empty: an anonymous session" "stored 10" "$(get em "$A/anon/big.cgi?10")"
EM=$(last_cookie_id)
remember_id "$EM"
check "empty: ... gets an ID" is_id "$EM"
expect_eq "empty: emptying it" "stored 0" "$(get em "$A/anon/big.cgi?0")"
check "empty: ... clears the cookie" grep -qi '^set-cookie: sid=;.*Max-Age=0' <<<"$(last_set_cookie)"
set_jar_sid replay "$EM"
OUT=$(get replay "$A/anon/session.cgi")
expect_eq "empty: the record is gone" "session=" "$(grep '^session=' <<<"$OUT")"
check "empty: ... and its ID is not revived" eval '! grep -qF -- "sid=$EM" <<<"$(last_set_cookie)"'

# ---- what the error log must never hold ----
check "error log of a has no crash" eval '! log_has_crash a'
check "error log of b has no crash" eval '! log_has_crash b'
leaks=0
for id in "${ALL_IDS[@]}"; do
    if grep -qF -- "$id" "$WORK/a/logs/error.log" "$WORK/b/logs/error.log"; then
        leaks=$((leaks + 1))
        echo "# ID $id found in an error log"
    fi
done
expect_eq "no session ID (${#ALL_IDS[@]} issued) in the error logs" 0 "$leaks"
check "no password in the error logs" \
    eval '! grep -qE "secret|hunter2" "$WORK/a/logs/error.log" "$WORK/b/logs/error.log"'
check "the access log has no session ID" eval '! grep -qF -- "$SID" "$WORK/a/logs/access.log"'

finish
