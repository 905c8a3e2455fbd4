#!/bin/bash
# test_config.sh - bad directives fail "apache2 -t" with a message naming the
# directive; a valid configuration passes; what configtest accepts starts.
source "$(dirname "$0")/lib.sh"

P=$(free_port)

# bad DIRECTIVE REGEX LINE...: a config with LINEs appended must fail the
# configtest, and the output must name DIRECTIVE and match REGEX.
bad() {
    local directive=$1 re=$2 out rc
    shift 2
    httpd_conf cfg "$P" prefork "$@"
    out=$(httpd_configtest cfg)
    rc=$?
    local what
    what=$(printf '%s | ' "$@")
    what=${what% | }
    if [ "$rc" -ne 0 ] && grep -qF -- "$directive" <<<"$out" && grep -Eq -- "$re" <<<"$out"; then
        ok "configtest rejects: $what"
    else
        not_ok "configtest rejects: $what (status $rc, output: $(tr '\n' ' ' <<<"$out" | cut -c1-300))"
    fi
}

# good LINE...: the configtest passes.
good() {
    local out rc what
    httpd_conf cfg "$P" prefork "$@"
    out=$(httpd_configtest cfg)
    rc=$?
    what=$(printf '%s | ' "$@")
    what=${what% | }
    if [ "$rc" -eq 0 ] && grep -q 'Syntax OK' <<<"$out"; then
        ok "configtest accepts: ${what:-the base configuration}"
    else
        not_ok "configtest accepts: ${what:-the base configuration} (status $rc, output: $(tr '\n' ' ' <<<"$out" | cut -c1-300))"
    fi
}

# ---- timeouts ----
bad SessionStoreIdleTimeout "not a number of seconds" "SessionStoreIdleTimeout -1"
bad SessionStoreIdleTimeout "not a number of seconds" "SessionStoreIdleTimeout abc"
bad SessionStoreIdleTimeout "not a number of seconds" "SessionStoreIdleTimeout 99999999999"
bad SessionStoreIdleTimeout "not a number of seconds" "SessionStoreIdleTimeout 10s"
bad SessionStoreIdleTimeout "" "SessionStoreIdleTimeout"
bad SessionStoreAbsoluteTimeout "not a number of seconds" "SessionStoreAbsoluteTimeout x"
bad SessionStoreAbsoluteTimeout "not a number of seconds" \
    "<Location /private>" "SessionStoreAbsoluteTimeout 1.5" "</Location>"

# ---- sizes ----
bad SessionStoreShmSize "not a size" "SessionStoreShmSize 1K"
bad SessionStoreShmSize "not a size" "SessionStoreShmSize 10Q"
bad SessionStoreShmSize "not a size" "SessionStoreShmSize -1M"
bad SessionStoreShmSize "not a size" "SessionStoreShmSize 99999G"
bad SessionStoreShmSize "VirtualHost" \
    "<VirtualHost 127.0.0.1:$P>" "SessionStoreShmSize 1M" "</VirtualHost>"
bad SessionStoreShmSize "not allowed" "<Location /x>" "SessionStoreShmSize 1M" "</Location>"
bad SessionStoreMaxSessionSize "not a size" "SessionStoreMaxSessionSize 10"
bad SessionStoreMaxSessionSize "not a size" "SessionStoreMaxSessionSize 2M"
bad SessionStoreMaxSessionSize "not a size" "SessionStoreMaxSessionSize 1K5"
# These two only fail in check_config (the sizes come from different
# directives): -t must run it too.
bad SessionStoreMaxSessionSize "does not fit SessionStoreShmSize" \
    "SessionStoreMaxSessionSize 1M" "SessionStoreShmSize 1M"
bad SessionStoreMaxSessionSize "does not fit SessionStoreShmSize" "SessionStoreShmSize 64K"
bad SessionStoreMaxSessionSize "does not fit SessionStoreShmSize" \
    "SessionStoreShmSize 1M" "<VirtualHost 127.0.0.1:$P>" "SessionStoreMaxSessionSize 1M" "</VirtualHost>"

# ---- backend ----
bad SessionStoreBackend "unknown backend" "SessionStoreBackend bogus"
# A mistyped URI may hold a password: no part of it is repeated.
bad SessionStoreBackend "unknown backend" "SessionStoreBackend redis:/u:Sekr3tPw@h"
httpd_conf cfg "$P" prefork "SessionStoreBackend redis:/u:Sekr3tPw@h"
check "... and its value is not echoed" eval '! httpd_configtest cfg 2>&1 | grep -q Sekr3tPw'
bad SessionStoreBackend "tls_ca_file /nonexistent/ca.pem: No such file" \
    "SessionStoreBackend rediss://127.0.0.1:6380?tls_ca_file=/nonexistent/ca.pem"
bad SessionStoreBackend "TLS over a Unix socket" "SessionStoreBackend unix:///run/r.sock?tls_verify=full"
bad SessionStoreBackend "need a rediss:// URI" "SessionStoreBackend redis://h?tls_verify=none"
bad SessionStoreBackend "a Redis Cluster has only db 0" "SessionStoreBackend redis-cluster://127.0.0.1:7000/1"
bad SessionStoreBackend "seed node 2: bad port" "SessionStoreBackend redis-cluster://127.0.0.1:7000,127.0.0.1:0"
bad SessionStoreBackend "tls_ca_file /nonexistent/ca.pem: No such file" \
    "SessionStoreBackend rediss-cluster://127.0.0.1:7000?tls_ca_file=/nonexistent/ca.pem"
bad SessionStoreBackend "SessionStoreBackend" "SessionStoreBackend redis://127.0.0.1:0"
bad SessionStoreBackend "SessionStoreBackend" "SessionStoreBackend redis://127.0.0.1/x"
bad SessionStoreBackend "SessionStoreBackend" "SessionStoreBackend redis://127.0.0.1/0?connect_timeout=0"
bad SessionStoreBackend "SessionStoreBackend" "SessionStoreBackend unix://"
bad SessionStoreOutage "neither 'unavailable' nor 'nosession'" "SessionStoreOutage maybe"

# secret LINE REGEX SECRET...: a config with LINE appended must fail the
# configtest naming SessionStoreBackend and matching REGEX, and no SECRET may
# appear anywhere in the output.
secret() {
    local line=$1 re=$2 out rc s leaked=""
    shift 2
    httpd_conf cfg "$P" prefork "$line"
    out=$(httpd_configtest cfg)
    rc=$?
    for s in "$@"; do
        grep -qF -- "$s" <<<"$out" && leaked="$leaked $s"
    done
    if [ "$rc" -ne 0 ] && grep -qF SessionStoreBackend <<<"$out" && grep -Eq -- "$re" <<<"$out" &&
        [ -z "$leaked" ]; then
        ok "configtest rejects, quoting no secret: $(cat -v <<<"$line")"
    else
        not_ok "configtest rejects, quoting no secret: $(cat -v <<<"$line") (status $rc, leaked:${leaked:- none}, output: $(tr '\n' ' ' <<<"$out" | cat -v | cut -c1-300))"
    fi
}
# A password with an unencoded '/', '?' or '&' spills into the host, path or query.
secret "SessionStoreBackend redis://u:12/3xPASS@127.0.0.1" "percent-encode '/', '\?' and '&'" 3xPASS 12/3
secret "SessionStoreBackend redis://u:1?PASS@127.0.0.1" "percent-encode '/', '\?' and '&'" PASS
secret "SessionStoreBackend redis://Hush7?prefix=Pw4@127.0.0.1" "an '@' after the host" Hush7 Pw4
secret "SessionStoreBackend redis://127.0.0.1?password=SEC&RETPW" "parameter 2 needs a value" RETPW SEC
secret "SessionStoreBackend unix:///run/r.sock?password=SEC&RETPW=x" "unknown parameter 2" RETPW SEC
secret "SessionStoreBackend redis://u:Hush7@127.0.0.1/RETPW" "bad db in the path" RETPW Hush7
# Hosts: an IPv6 literal in brackets, a DNS name or an IPv4 address outside;
# a control character is never echoed.
secret "SessionStoreBackend redis://[[]" "bad IPv6 address in brackets"
secret "SessionStoreBackend redis://[a_b]:6379" "bad IPv6 address in brackets"
secret "SessionStoreBackend redis://ho$(printf '\001')st:6379" "bad host" "$(printf '\001')"
secret "SessionStoreBackend redis://ho$(printf '\033')[2Jst" "bad host" "$(printf '\033')"
secret "SessionStoreBackend redis://256.0.0.1" "bad host"
good "SessionStoreBackend redis://[::1]:6379/0?max_age=0"
good "SessionStoreBackend redis://u:p%2F%3F%26w@redis_1.example:6379/0?max_age=600"

# ---- cookie ----
bad SessionStoreCookieName "needs a cookie name" "SessionStoreCookieName"
bad SessionStoreCookieName "not a valid cookie name" "SessionStoreCookieName a;b"
bad SessionStoreCookieName "not a valid cookie name" "SessionStoreCookieName a=b"
bad SessionStoreCookieName "unknown cookie attribute 'Foo'" "SessionStoreCookieName sid Foo=bar"
bad SessionStoreCookieName "unknown cookie attribute" "SessionStoreCookieName sid Bogus"
bad SessionStoreCookieName "SameSite must be" "SessionStoreCookieName sid SameSite=Weird"
bad SessionStoreCookieName "SameSite=None needs the Secure" "SessionStoreCookieName sid SameSite=None"
bad SessionStoreCookieName "SameSite=None needs the Secure" "SessionStoreCookieName sid SameSite=None; !Secure"
bad SessionStoreCookieName "Path must start with '/'" "SessionStoreCookieName sid Path=relative"
bad SessionStoreCookieName "empty or invalid value" "SessionStoreCookieName sid Path="
bad SessionStoreCookieName "Max-Age must be a number" "SessionStoreCookieName sid Max-Age=soon"
bad SessionStoreRevokeHeader "'X:Revoke' is not a header name" "SessionStoreRevokeHeader X:Revoke"

# ---- record format and sealing ----
bad SessionStoreRecordFormat "neither 1 .* nor 2" "SessionStoreRecordFormat 3"
bad SessionStoreRecordFormat "neither 1 .* nor 2" "SessionStoreRecordFormat v2"
bad SessionStoreRecordFormat "" "SessionStoreRecordFormat"
bad SessionStoreRecordFormat "VirtualHost" \
    "<VirtualHost 127.0.0.1:$P>" "SessionStoreRecordFormat 1" "</VirtualHost>"
bad SessionStoreRecordFormat "not allowed" "<Location /x>" "SessionStoreRecordFormat 1" "</Location>"
bad SessionStoreSeal "not On, Off or Required" "SessionStoreSeal maybe"
bad SessionStoreSeal "needs SessionStoreRecordFormat 2" "SessionStoreRecordFormat 1" "SessionStoreSeal Required"
bad SessionStoreSeal "VirtualHost" "<VirtualHost 127.0.0.1:$P>" "SessionStoreSeal Off" "</VirtualHost>"
bad SessionStoreSeal "needs SessionStoreRecordFormat 2" "SessionStoreRecordFormat 1" "SessionStoreSeal On"
bad SessionStoreSeal "needs SessionStoreRecordFormat 2" "SessionStoreSeal On" "SessionStoreRecordFormat 1"
good "SessionStoreRecordFormat 1"
good "SessionStoreRecordFormat 2" "SessionStoreSeal Off"
good "SessionStoreRecordFormat 1" "SessionStoreSeal Off"
good "SessionStoreSeal Required"

# ---- valid ----
good
good "SessionStoreBackend shm" \
    "SessionStoreCookieName sid Path=/; SameSite=Strict; Secure; Domain=example.org; Max-Age=3600" \
    "SessionStoreIdleTimeout 0" "SessionStoreAbsoluteTimeout 315360000" \
    "SessionStoreShmSize 1m" "SessionStoreMaxSessionSize 64K" \
    "<Location /private>" "SessionStoreCookieName psid SameSite=None; Secure; !HttpOnly; Partitioned" \
    "SessionStoreIdleTimeout 60" "</Location>" \
    "<VirtualHost 127.0.0.1:$P>" "SessionStoreMaxSessionSize 256" "SessionStoreBackend shm" "</VirtualHost>"
bad SessionStoreShmFile "cannot occur within <VirtualHost> section" "<VirtualHost 127.0.0.1:$P>" \
    "SessionStoreShmFile x.shm" "</VirtualHost>"
good "SessionStoreShmFile none"
good "SessionStoreShmFile /tmp/sessstore-test-$$.shm"
good "SessionStoreRevokeHeader X-Session-Revoke" "<Location /private>" "SessionStoreRevokeHeader none" \
    "</Location>"

# ---- what configtest accepts must start ----
# The arena's own layout (header, hash buckets) leaves less than the full
# SessionStoreShmSize for records; configtest must apply the same limit as
# the server does at start-up. Sizes around the 64K arena's limit:
for max in 15000 15564 15565 15700 15812 16000; do
    httpd_conf fit "$P" prefork "SessionStoreShmSize 64K" "SessionStoreMaxSessionSize $max"
    out=$(httpd_configtest fit)
    if [ $? -ne 0 ]; then
        check "64K arena, max $max: configtest refuses it, naming the directive" \
            grep -q 'SessionStoreMaxSessionSize' <<<"$out"
        continue
    fi
    gen=$(($(httpd_generations fit) + 1))
    failed=$(httpd_failures fit)
    if "$HTTPD" -d "$WORK/fit" -f "$WORK/fit/httpd.conf" -k start &&
        httpd_wait_ready fit "$P" "$gen" "$failed"; then
        ok "64K arena, max $max: configtest passes and the server starts"
        STARTED+=(fit)
        get x "http://127.0.0.1:$P/public/" >/dev/null
        expect_eq "64K arena, max $max: ... and serves" 200 "$(code)"
        httpd_stop fit
    else
        not_ok "64K arena, max $max: configtest passes but the server does not start: $(grep -E 'crit|emerg' "$WORK/fit/logs/error.log" | tail -2)"
        httpd_stop fit
    fi
done

# ---- Mutex sessstore-shm: accepted, ignored, a deprecation warning ----
# The shm store's locks live in its shared memory; an older configuration
# that still chooses a mechanism for them starts, and the log says once, with
# the file and line, that the line does nothing.
httpd_conf mutex "$P" prefork "Mutex fcntl sessstore-shm"
httpd_start mutex "$P"
get x "http://127.0.0.1:$P/public/" >/dev/null
expect_eq "Mutex fcntl sessstore-shm: the server starts and serves" 200 "$(code)"
expect_eq "... a login stores a session" 302 "$(login m "http://127.0.0.1:$P" alice secret)"
expect_eq "... found again" "SECRET PAGE" "$(get m "http://127.0.0.1:$P/private/")"
check "... the log says the Mutex line is deprecated and ignored, with its line" \
    grep -Eq "Mutex fcntl sessstore-shm \(.*httpd.conf line [0-9]+\) is deprecated and ignored" \
    "$WORK/mutex/logs/error.log"
expect_eq "... once" 1 "$(grep -c 'is deprecated and ignored' "$WORK/mutex/logs/error.log")"
httpd_stop mutex

finish
