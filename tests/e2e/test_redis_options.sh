#!/usr/bin/env bash
# Redis connection options against a real redis-server: an ACL user with a
# key-pattern restriction, a non-zero db, a key prefix, the Unix socket, a
# wrong password; the password never reaches the logs.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_nodes.sh"

RP=$(free_port)
redis_start redis "$RP" --requirepass adminpw \
    --user sessuser on '>s3cret' '~app1:*' '~app2:*' '+@all'
export REDISCLI_AUTH=adminpw
SOCK="$WORK/redis/redis.sock"

PT=$(free_port)
PU=$(free_port)
PW=$(free_port)
SLOW=${REDIS_SLOW_OPTIONS:-}
httpd_conf tcp "$PT" event "SessionStoreBackend redis://sessuser:s3cret@127.0.0.1:$RP/3?prefix=app1:$SLOW" \
    "<Location /status>" "SetHandler sessstore-status" "</Location>"
httpd_conf unix "$PU" event \
    "SessionStoreBackend unix://$SOCK?db=5&prefix=app2:&user=sessuser&password=s3cret$SLOW"
httpd_conf wrong "$PW" event "SessionStoreBackend redis://sessuser:WrongPass1@127.0.0.1:$RP/0?prefix=x:$SLOW"
httpd_start tcp "$PT"
httpd_start unix "$PU"
httpd_start wrong "$PW"

# --- ACL user over TCP, db 3, prefix app1:
login t "http://127.0.0.1:$PT" alice secret >/dev/null
get t "http://127.0.0.1:$PT/private/" >/dev/null
expect_eq "ACL user over TCP: login holds" 200 "$(code)"
keys=$(redis_cli redis -n 3 --scan --pattern 'app1:*' | grep -v ':owner:')
expect_eq "the session is one key in db 3 under the prefix" 1 "$(echo "$keys" | grep -c .)"
check "... next to alice's index, under the prefix too (app1:owner:HASH)" \
    test "$(redis_cli redis -n 3 --scan --pattern 'app1:owner:*' | grep -cE '^app1:owner:[0-9a-f]{32}$')" = 1
check "the key is the prefix and 64 hex digits (a hash, not the ID)" \
    bash -c "echo '$keys' | grep -qE '^app1:[0-9a-f]{64}$'"
check "the key does not contain the session ID" bash -c "! echo '$keys' | grep -qF '$(jar_sid t)'"
expect_eq "db 0 holds nothing" 0 "$(redis_cli redis -n 0 dbsize)"
ttl=$(redis_cli redis -n 3 pttl "$keys")
check "the key has a TTL (${ttl} ms, idle timeout 1800 s)" test "$ttl" -gt 0 -a "$ttl" -le 1800000

# --- Unix socket, db 5, prefix app2:, credentials as parameters
login u "http://127.0.0.1:$PU" bob hunter2 >/dev/null
get u "http://127.0.0.1:$PU/private/cgi/session.cgi" >/dev/null
expect_eq "Unix socket: login holds" 200 "$(code)"
expect_eq "the session is in db 5 under app2:" 1 "$(redis_cli redis -n 5 --scan --pattern 'app2:*' | grep -v ':owner:' | grep -c .)"

# --- the session of one application is not the session of another
set_jar_sid x "$(jar_sid t)"
get x "http://127.0.0.1:$PU/private/" >/dev/null
expect_eq "an ID from the app1 namespace is unknown in app2's" 302 "$(code)"

# --- a wrong password: the store is unavailable, never "no session but fine"
set_jar_sid w "$(jar_sid t)"
get w "http://127.0.0.1:$PW/private/" >/dev/null
expect_eq "wrong password: a request with a session gets 503" 503 "$(code)"
check "wrong password: the failure is logged" grep -q 'sessstore:error' "$WORK/wrong/logs/error.log"

for n in tcp unix wrong; do
    check "$n: no password in the error log" \
        bash -c "! grep -qE 's3cret|WrongPass1|adminpw' '$WORK/$n/logs/error.log'"
done
check "the store's description in the log hides the password" \
    grep -q 'redis://sessuser:\*\*\*@127.0.0.1' "$WORK/tcp/logs/error.log"

STATUS=$(get st "http://127.0.0.1:$PT/status")
check "status page: names the Redis target without the password" \
    grep -q '^backend: redis://sessuser:\*\*\*@127.0.0.1' <<<"$STATUS"
check "status page: spells out max_age (default 300 s)" grep -q '^backend: redis://.*&max_age=300' <<<"$STATUS"
check "status page: counts this process's saves" grep -qE '^saves: [0-9]+' <<<"$STATUS"
check "status page: never the password" bash -c "! grep -q s3cret <<<'$STATUS'"

# --- a logout whose delete Redis refuses fails closed (here: DEL not granted)
T=http://127.0.0.1:$PT
login lo "$T" alice secret >/dev/null
LO=$(jar_sid lo)
redis_cli redis ACL SETUSER sessuser -del >/dev/null
get lo "$T/logout" >/dev/null
expect_eq "logout refused by Redis: the request fails" 503 "$(code)"
expect_eq "... with no redirect to the logged-out page" "" "$(last_header Location)"
expect_eq "... and the cookie is not cleared" 0 "$(set_cookie_count)"
set_jar_sid again "$LO"
get again "$T/private/" >/dev/null
expect_eq "... since the old cookie still works" 200 "$(code)"
redis_cli redis ACL SETUSER sessuser +del >/dev/null
get lo "$T/logout" >/dev/null
expect_eq "DEL granted again: the logout goes through" 307 "$(code)"
get again "$T/private/" >/dev/null
expect_eq "... and the old cookie is refused" 302 "$(code)"

# --- the key's TTL follows the server's most lenient timeouts, no more: here
# idle off everywhere but /private/cgi, absolute 600 s (not the default 8 h)
PL=$(free_port)
httpd_conf ttl "$PL" event "SessionStoreBackend redis://sessuser:s3cret@127.0.0.1:$RP/4?prefix=app1:" \
    "SessionStoreIdleTimeout 0" "SessionStoreAbsoluteTimeout 600" \
    "<Location /private/cgi>" "SessionStoreIdleTimeout 120" "</Location>"
httpd_start ttl "$PL"
login l "http://127.0.0.1:$PL" alice secret >/dev/null
key=$(redis_cli redis -n 4 --scan --pattern 'app1:*' | grep -v ':owner:')
ttl=$(redis_cli redis -n 4 pttl "$key")
check "TTL from the lenient timeouts: absolute 600 s ($ttl ms)" test "$ttl" -gt 590000 -a "$ttl" -le 600000
get l "http://127.0.0.1:$PL/private/cgi/count.cgi" >/dev/null
ttl=$(redis_cli redis -n 4 pttl "$key")
check "... also after a save in the strict location ($ttl ms)" test "$ttl" -gt 590000 -a "$ttl" -le 600000
httpd_stop ttl

# ... and a default that no location runs on (8 h absolute) does not count
PL2=$(free_port)
ROOT_EXTRA=$'SessionStoreIdleTimeout 0\nSessionStoreAbsoluteTimeout 600' \
    httpd_conf ttl2 "$PL2" event "SessionStoreBackend redis://sessuser:s3cret@127.0.0.1:$RP/6?prefix=app1:"
httpd_start ttl2 "$PL2"
login l2 "http://127.0.0.1:$PL2" alice secret >/dev/null
key=$(redis_cli redis -n 6 --scan --pattern 'app1:*' | grep -v ':owner:')
ttl=$(redis_cli redis -n 6 pttl "$key")
check "timeouts set only where the store is on: TTL 600 s, not the defaults ($ttl ms)" \
    test "$ttl" -gt 590000 -a "$ttl" -le 600000
httpd_stop ttl2

# --- virtual hosts: one URI repeated is one store; shm after redis:// is shm
PV=$(free_port)
URI="redis://sessuser:s3cret@127.0.0.1:$RP/3?prefix=app1:"
httpd_conf vh "$PV" event "SessionStoreBackend $URI" \
    "<Location /status>" "SetHandler sessstore-status" "</Location>" \
    "<VirtualHost 127.0.0.1:$PV>" "ServerName one.test" "SessionStoreBackend $URI" "</VirtualHost>" \
    "<VirtualHost 127.0.0.1:$PV>" "ServerName two.test" "SessionStoreBackend $URI" "</VirtualHost>" \
    "<VirtualHost 127.0.0.1:$PV>" "ServerName three.test" "SessionStoreBackend $URI" \
    "SessionStoreBackend shm" "</VirtualHost>"
httpd_start vh "$PV"
expect_eq "three virtual hosts naming one Redis open one store" 1 \
    "$(grep -c 'session store: redis://' "$WORK/vh/logs/error.log")"
STATUS=$(curl -sS -H 'Host: two.test' "http://127.0.0.1:$PV/status")
check "... which the second virtual host uses" grep -q '^backend: redis://sessuser:\*\*\*@' <<<"$STATUS"
STATUS=$(curl -sS -H 'Host: three.test' "http://127.0.0.1:$PV/status")
check "a later 'SessionStoreBackend shm' wins over an earlier redis:// line" \
    grep -q '^backend: shm (' <<<"$STATUS"
httpd_stop vh

# --- bad URIs fail configtest with the directive's name, without the password
httpd_conf bad "$(free_port)" event "SessionStoreBackend redis://u:Hush9@127.0.0.1:99999/0"
out=$(httpd_configtest bad)
check "configtest rejects a bad port, naming the directive" bash -c "echo '$out' | grep -q SessionStoreBackend"
check "... and does not print the password" bash -c "! echo '$out' | grep -q Hush9"
httpd_conf bad2 "$(free_port)" event "SessionStoreBackend redis://127.0.0.1/0?colour=blue"
out=$(httpd_configtest bad2)
check "configtest rejects an unknown option, naming it" bash -c "echo '$out' | grep -q 'colour'"

redis_cleanup
finish
