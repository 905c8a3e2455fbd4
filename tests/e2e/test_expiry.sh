#!/bin/bash
# test_expiry.sh - idle and absolute timeouts, and per-directory values.
#
# Server a: SessionStoreIdleTimeout 2 site-wide; a <Location /private/cgi>
# switches idle expiry off there and sets SessionStoreAbsoluteTimeout 4.
# Server s: SessionStoreIdleTimeout 30 site-wide, 2 in <Location /private/cgi>.
# Each client follows its own timeline (seconds after its login), all at once:
#   K    a: /private/ every second up to 5 s         -> always 200 (idle slides)
#   I    a: idle, then /private/ at 3 s               -> 302 (idle 2)
#   L    a: idle, then /private/cgi/ at 2.6 s         -> 200 (idle off there)
#   ABS  a: /private/cgi/count.cgi every second       -> 200 until 4 s, then 302
#   S    s: /private/cgi/ at 0.5 s, then /private/ every 0.8 s up to 4 s
#                                                     -> always 200: visiting the
#        strict place must not shorten the session for the rest of the site.
#
# Checks that a session is still alive are only meaningful when the response
# came back before the session could legitimately have ended; on a machine so
# loaded that it did not, the check is reported as "# skip", not as a pass.
source "$(dirname "$0")/lib.sh"

P=$(free_port)
httpd_conf a "$P" prefork \
    "SessionStoreIdleTimeout 2" \
    "<Location /private/cgi>" \
    "    SessionStoreIdleTimeout 0" \
    "    SessionStoreAbsoluteTimeout 4" \
    "</Location>"
httpd_start a "$P"
A=http://127.0.0.1:$P

PS=$(free_port)
httpd_conf s "$PS" prefork \
    "SessionStoreIdleTimeout 30" \
    "<Location /private/cgi>" \
    "    SessionStoreIdleTimeout 2" \
    "</Location>"
httpd_start s "$PS"
S=http://127.0.0.1:$PS

now() {
    date +%s.%N
}

# at BASE SECONDS: sleep until SECONDS after the time BASE.
at() {
    sleep "$(awk -v t0="$1" -v d="$2" -v now="$(now)" \
        'BEGIN { s = t0 + d - now; if (s < 0) s = 0; printf "%.3f", s }')"
}

# secs FROM TO: TO - FROM, one decimal.
secs() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'
}

# before A B: true when time A is earlier than time B.
before() {
    awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'
}

plus() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a + b }'
}

# tget JAR URL: GET, setting START and END (epoch seconds), CODE and BODY.
tget() {
    START=$(now)
    BODY=$(get "$1" "$2")
    CODE=$(code)
    END=$(now)
}

# tlogin JAR BASE USER PW: login, setting LS and LE (its start and end).
tlogin() {
    local c
    LS=$(now)
    c=$(login "$1" "$2" "$3" "$4")
    LE=$(now)
    expect_eq "$1 logs in" 302 "$c"
}

# expect_alive DESC BODY_REGEX LATEST: the last tget must have answered 200
# with a body matching BODY_REGEX. When it did not, and the response ended
# after LATEST (the earliest moment the session may legitimately have
# ended), the check could not tell: a skip.
expect_alive() {
    local desc=$1 re=$2 latest=$3
    if [ "$CODE" = 200 ] && grep -Eq -- "$re" <<<"$BODY"; then
        ok "$desc"
    elif before "$END" "$latest"; then
        not_ok "$desc (got $CODE: ${BODY:0:60})"
    else
        echo "# skip - $desc: got $CODE, but $(secs "$latest" "$END") s too late to tell"
    fi
}

# K: /private/ every second for 5 s; idle 2 slides. Alive is certain while
# the gap since K's previous request, less a 0.2 s touch slice, is under 2 s.
client_K() {
    local i prev
    tlogin K "$A" alice secret
    prev=$LS
    for i in 1 2 3 4 5; do
        at "$LE" "$i"
        tget K "$A/private/"
        expect_alive "K: /private/ $(secs "$LE" "$START") s after login, $(secs "$prev" "$START") s after the previous request" \
            '^SECRET PAGE$' "$(plus "$prev" 1.8)"
        prev=$START
    done
    check "K: alive $(secs "$LE" "$END") s after login (> 5 s), past /private/cgi's absolute 4 s too" \
        eval '[ "$CODE" = 200 ] && before "$(plus "$LE" 5)" "$START"'
}

# I: logs in, then idles for 3 s.
client_I() {
    tlogin I "$A" alice secret
    at "$LE" 3
    tget I "$A/private/"
    expect_eq "I: idle for $(secs "$LE" "$START") s (> 2): /private/ redirects" 302 "$CODE"
    expect_eq "I: ... to the login page" /login.html "$(last_header Location)"
    tget I "$A/private/cgi/session.cgi"
    # One rule on every backend: each location judges by its own timeouts, and
    # the store keeps the session while a more lenient one still accepts it.
    expect_eq "I: ... while /private/cgi (idle off) still serves it" 200 "$CODE"
}

# L: idles for 2.6 s, then asks where idle expiry is off (absolute 4).
client_L() {
    tlogin L "$A" alice secret
    at "$LE" 2.6
    tget L "$A/private/cgi/session.cgi"
    expect_alive "L: idle for $(secs "$LE" "$START") s (> 2), but idle expiry is off in /private/cgi" \
        '^user=alice$' "$(plus "$LS" 4)"
}

# ABS: count.cgi every second; absolute 4 s from the login.
client_ABS() {
    local i
    tlogin ABS "$A" bob hunter2
    for i in 1 2 3; do
        at "$LE" "$i"
        tget ABS "$A/private/cgi/count.cgi"
        expect_alive "ABS: count.cgi $(secs "$LE" "$START") s after login" "^counter=$i\$" \
            "$(plus "$LS" 4)"
    done
    at "$LE" 4.5
    tget ABS "$A/private/cgi/count.cgi"
    expect_eq "ABS: count.cgi $(secs "$LE" "$START") s after login, past the absolute 4 s despite activity" \
        302 "$CODE"
    tget ABS "$A/private/"
    expect_eq "ABS: the rest of the site (no absolute limit) still serves it" 200 "$CODE"
}

# S (server s): the strict place once, then the lenient rest of the site.
client_S() {
    local t
    tlogin S "$S" bob hunter2
    at "$LE" 0.5
    tget S "$S/private/cgi/session.cgi"
    expect_alive "S: the strict location (idle 2) serves" '^user=bob$' "$(plus "$LS" 2)"
    for t in 0.8 1.6 2.4 3.2 4.0; do
        at "$LE" "$t"
        tget S "$S/private/"
        expect_alive "S: /private/ (idle 30) $(secs "$LE" "$START") s after login, strict place visited at 0.5 s" \
            '^SECRET PAGE$' "$(plus "$LS" 30)"
    done
}

run_parallel client_K client_I client_L client_ABS client_S

check "no child crashed (a)" eval '! log_has_crash a'
check "no child crashed (s)" eval '! log_has_crash s'
finish
