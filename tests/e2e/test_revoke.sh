#!/usr/bin/env bash
# "Log out everywhere": SessionStoreRevokeHeader. Two httpd nodes share one
# redis-server (node A event + mod_cgid, node B prefork + mod_cgi: both ways a
# CGI script's headers arrive); several owners are logged in from several
# clients on both nodes. A CGI answering "X-Session-Revoke: user" ends every
# session of its user on both nodes at once, "others" all but its own; the
# other owners keep theirs and the header never reaches the client. The same
# on one shm node.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_nodes.sh"

RP=$(free_port)
redis_start redis "$RP"
REDIS_URI="redis://127.0.0.1:$RP/0?prefix=e2e:"

# node NAME PORT MPM BACKEND: the standard site, the revoke header on, and
# revoke.cgi, which asks for what its query string says.
node() {
    local name=$1 port=$2 mpm=$3 backend=$4
    httpd_conf "$name" "$port" "$mpm" "SessionStoreBackend $backend" \
        "SessionStoreRevokeHeader X-Session-Revoke" "Header always set X-Node $name" \
        "<Location /metrics>" "SetHandler sessstore-metrics" "</Location>"
    cat >"$WORK/$name/htdocs/private/cgi/revoke.cgi" <<'CGI'
#!/bin/sh
printf 'X-Session-Revoke: %s\r\n' "${QUERY_STRING:-user}"
printf 'Content-Type: text/plain\r\n\r\n'
printf 'asked=%s\n' "${QUERY_STRING:-user}"
CGI
    chmod 755 "$WORK/$name/htdocs/private/cgi/revoke.cgi"
    htpasswd -bB -C 4 "$WORK/$name/htpasswd" carol s3cret 2>/dev/null
}

PA=$(free_port)
PB=$(free_port)
PS=$(free_port)
node a "$PA" event "$REDIS_URI"
node b "$PB" prefork "$REDIS_URI"
node s "$PS" event shm
httpd_start a "$PA"
httpd_start b "$PB"
httpd_start s "$PS"
A=http://127.0.0.1:$PA
B=http://127.0.0.1:$PB
S=http://127.0.0.1:$PS

# --- logins: alice x3, bob x2, carol x2, spread over both nodes
login_owners "$A $B" alice a1 a2 a3 bob b1 b2 carol c1 c2
keys=$(redis_cli redis --scan --pattern 'e2e:*' | sort)
check "Redis holds one index per owner" \
    test "$(echo "$keys" | grep -c '^e2e:owner:[0-9a-f]\{32\}$')" = 3
check "no owner name in any Redis key" bash -c "! echo '$keys' | grep -qiE 'alice|bob|carol'"

# --- "user" from a CGI on node B (prefork, mod_cgi): every alice session ends
body=$(get a1 "$B/private/cgi/revoke.cgi?user")
expect_eq "the revoking request is answered" 200 "$(code)"
expect_eq "its body is the script's" "asked=user" "$body"
check "the revoke header never reaches the client" \
    bash -c "! grep -qi '^x-session-revoke' '$WORK/last.headers'"
check "the revoking browser's cookie is cleared" \
    bash -c "grep -i '^set-cookie: sid=;' '$WORK/last.headers' | grep -qi 'expires=\\|max-age=0'"
expect_eq "and only one Set-Cookie for sid is sent" 1 \
    "$(grep -ci '^set-cookie: sid=' "$WORK/last.headers")"
expect_eq "every alice session is ended on both nodes (sent to the login form)" 6 \
    "$(answer_count 302 "$A $B" a1 a2 a3)"
expect_eq "bob's and carol's sessions live on, on both nodes" 8 \
    "$(answer_count 200 "$A $B" b1 b2 c1 c2)"
expect_eq "node B counts the 3 revoked sessions" "sessstore_revocations_total 3" \
    "$(curl -s "$B/metrics" | grep '^sessstore_revocations_total')"
check "alice's index is gone" \
    test "$(redis_cli redis --scan --pattern 'e2e:owner:*' | wc -l)" = 2

# --- "others" from a CGI on node A (event, mod_cgid): bob keeps this one only
login b3 "$B" bob hunter2 >/dev/null
body=$(get b1 "$A/private/cgi/revoke.cgi?others")
expect_eq "'others' is answered" 200 "$(code)"
check "no header, no clearing cookie" \
    bash -c "! grep -qiE '^x-session-revoke|^set-cookie: sid=' '$WORK/last.headers'"
expect_eq "bob's current session lives on (A)" 200 "$(alive b1 "$A")"
expect_eq "bob's current session lives on (B)" 200 "$(alive b1 "$B")"
expect_eq "bob's other session on B is ended" 302 "$(alive b2 "$B")"
expect_eq "bob's newest other session is ended" 302 "$(alive b3 "$A")"
expect_eq "carol keeps hers" "200 200" "$(alive c1 "$A") $(alive c2 "$B")"

# --- a value that is neither: nothing ends, the header is still dropped
body=$(get c1 "$A/private/cgi/revoke.cgi?everything")
check "a bad value is not forwarded either" \
    bash -c "! grep -qi '^x-session-revoke' '$WORK/last.headers'"
expect_eq "and ends nothing" "200 200" "$(alive c1 "$B") $(alive c2 "$A")"
check "the bad value is logged" grep -q "neither 'user' nor 'others'" "$WORK/a/logs/error.log"

# --- while Redis is down, a revoke fails: never a success that ended nothing
redis_stop redis
get c1 "$A/private/cgi/revoke.cgi?user" >/dev/null
expect_eq "a revoke while the store is down is a 503" 503 "$(code)"
redis_start redis "$RP"

# --- the shm store: the same on one node
login_owners "$S" alice sa1 sa2 bob sb1
get sa2 "$S/private/cgi/revoke.cgi?others" >/dev/null
expect_eq "shm: 'others' keeps the current session" 200 "$(alive sa2 "$S")"
expect_eq "shm: and ends the other one" 302 "$(alive sa1 "$S")"
get sa2 "$S/private/cgi/revoke.cgi?user" >/dev/null
expect_eq "shm: 'user' ends the last one" 302 "$(alive sa2 "$S")"
expect_eq "shm: bob keeps his" 200 "$(alive sb1 "$S")"

redis_cleanup
finish
