#!/usr/bin/env bash
# test_seal.sh - sealed records: after form logins, a dump of Redis (an RDB
# file and GET of every key) and of the shared-memory arena (read from the
# httpd parent's memory) holds neither the session's values nor the password;
# the same dumps of nodes writing format 1 (SessionStoreRecordFormat 1) do,
# which shows the greps would find them. mod_session_crypto
# (SessionCryptoPassphrase) composes with the store on both backends. A record
# in clear planted under a session's key is served with SessionStoreSeal On
# and refused with SessionStoreSeal Required.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_nodes.sh"

[ -f "$MODDIR/mod_session_crypto.so" ] || die "mod_session_crypto not found in $MODDIR (apache2)"

# Sizes no other shared mapping of httpd has: the arena is found by its size.
SHM_SEALED=3M
SHM_CLEAR=5M
MARK=sealmark$RANDOM$RANDOM
PASSWORD=hunter2 # bob's, in the session as mod_auth_form keeps it

RS=$(free_port)
RC=$(free_port)
# No RDB compression: an LZF-compressed value would hide a clear one too.
redis_start sealed "$RS" --rdbcompression no
redis_start clear "$RC" --rdbcompression no

# node NAME BACKEND [directives...]: an event-MPM node with a CGI that puts
# $MARK into the session.
node() {
    local name=$1 backend=$2 port
    shift 2
    port=$(free_port)
    httpd_conf "$name" "$port" event "SessionStoreBackend $backend" "$@"
    cat >"$WORK/$name/htdocs/private/cgi/mark.cgi" <<CGI
#!/bin/sh
printf 'X-Replace-Session: mark=$MARK\r\n'
printf 'Content-Type: text/plain\r\n\r\nmarked\n'
CGI
    chmod 755 "$WORK/$name/htdocs/private/cgi/mark.cgi"
    httpd_start "$name" "$port"
    eval "URL_$name=http://127.0.0.1:$port"
}

CRYPTO=("LoadModule session_crypto_module $MODDIR/mod_session_crypto.so"
    "SessionCryptoPassphrase e2e-crypto-passphrase")
node rs "redis://127.0.0.1:$RS/0"
node rc "redis://127.0.0.1:$RC/0" "SessionStoreRecordFormat 1"
node ms shm "SessionStoreShmSize $SHM_SEALED"
node mc shm "SessionStoreShmSize $SHM_CLEAR" "SessionStoreRecordFormat 1"
node xr "redis://127.0.0.1:$RS/0?prefix=crypto:" "${CRYPTO[@]}"
node xm shm "${CRYPTO[@]}"
# mod_session_crypto with records in clear: what the store keeps is its
# ciphertext, so mod_session_crypto really did encrypt before the store saw it.
node xc "redis://127.0.0.1:$RC/0?prefix=crypto:" "SessionStoreRecordFormat 1" "${CRYPTO[@]}"
# Sealed records only: one in clear planted under a session's key is refused.
node rq "redis://127.0.0.1:$RS/0?prefix=req:" "SessionStoreSeal Required"

# use NAME: logs bob in on node NAME, marks the session, and checks that the
# application sees it whole (so the record really was written and read back).
use() {
    local name=$1 url body
    url=$(eval echo "\$URL_$name")
    expect_eq "$name: login" 302 "$(login "$name" "$url" bob "$PASSWORD")"
    get "$name" "$url/private/cgi/mark.cgi" >/dev/null
    expect_eq "$name: the CGI writes the session" 200 "$(code)"
    body=$(get "$name" "$url/private/cgi/session.cgi")
    check "$name: the session holds the mark and the login" \
        eval "grep -q 'mark=$MARK' <<<\"\$body\" && grep -q 'user=bob' <<<\"\$body\""
}

for n in rs rc ms mc xr xm xc rq; do use $n; done

# ---- the dumps ----

# redis_dump NAME FILE: an RDB snapshot of the whole server, then every key's
# value by GET, into FILE.
redis_dump() {
    local name=$1 out=$2 k
    redis_cli "$name" --rdb "$out.rdb" >/dev/null 2>&1 || die "redis-cli --rdb of $name failed"
    cat "$out.rdb" >"$out"
    for k in $(redis_cli "$name" --scan); do
        redis_cli "$name" GET "$k" >>"$out"
    done
}

# shm_dump NAME SIZE FILE: the shared mapping of SIZE (plus APR's header,
# rounded to pages) in the httpd parent of NAME, read through /proc/PID/mem.
shm_dump() {
    local name=$1 size=$2 out=$3 pid bytes want start end found=0
    pid=$(httpd_pid "$name")
    bytes=$(numfmt --from=iec "$size")
    : >"$out"
    while read -r range _ _ _ _ path; do
        start=$((16#${range%-*}))
        end=$((16#${range#*-}))
        want=$(((bytes + 4096 + 4095) / 4096 * 4096))
        # Anonymous shared memory shows as /dev/zero (deleted) or [anon_shmem];
        # the shm store's named segment (SessionStoreShmFile) as a POSIX
        # shared-memory object, /dev/shm/NAME.
        case "$path" in *zero*|*shmem*|*SYSV*|/dev/shm/*) ;; *) continue ;; esac
        [ $((end - start)) -ge "$bytes" ] && [ $((end - start)) -le "$want" ] || continue
        dd if="/proc/$pid/mem" of="$out" bs=4096 skip=$((start / 4096)) count=$(((end - start) / 4096)) \
            oflag=append conv=notrunc status=none 2>/dev/null || die "cannot read /proc/$pid/mem (run as root)"
        found=1
    done <"/proc/$pid/maps"
    [ "$found" = 1 ] || die "no shared mapping of $size in httpd $name ($pid): $(cat /proc/$pid/maps | grep -E 'zero|shmem|/dev/shm/' | head -5)"
}

redis_dump sealed "$WORK/dump.sealed"
redis_dump clear "$WORK/dump.clear"
shm_dump ms "$SHM_SEALED" "$WORK/dump.shm.sealed"
shm_dump mc "$SHM_CLEAR" "$WORK/dump.shm.clear"

has() { # has FILE STRING: FILE holds STRING (binary-safe)
    grep -qaF -- "$2" "$1"
}

for d in sealed shm.sealed; do
    f="$WORK/dump.$d"
    check "$d dump: the records are there, sealed (SS, version 2, flag 1)" has "$f" $'SS\x02\x01'
    check "$d dump: no password" eval "! has '$f' '$PASSWORD'"
    check "$d dump: no session value" eval "! has '$f' '$MARK'"
    check "$d dump: no mod_auth_form entry" eval "! has '$f' 'site-user='"
    check "$d dump: no mod_auth_form password entry" eval "! has '$f' 'site-pw='"
done
# The positive control: format 1 writes in clear, and the same greps find it.
for d in clear shm.clear; do
    f="$WORK/dump.$d"
    # The shm arena keeps a record in a chain of blocks that need not be
    # adjacent: a value may be cut at a block's end (where depends on the
    # block size: 104-byte blocks cut bob's password after "hunte", 112-byte
    # ones its entry after "site-"). Redis must show it whole; shm either
    # the whole password or the start of its entry.
    if [ "$d" = clear ]; then
        check "$d dump (format 1): the password is found" has "$f" "$PASSWORD"
    else
        check "$d dump (format 1): the password or its entry's start is found" \
            eval "has '$f' 'pw=$PASSWORD' || has '$f' 'site-pw=${PASSWORD:0:3}'"
    fi
    check "$d dump (format 1): the session value is found" has "$f" "$MARK"
    check "$d dump (format 1): the mod_auth_form entry is found" has "$f" "site-user=bob"
done
# sessions NAME: the session keys of a Redis, not the owners' indexes
# (PREFIX owner:HASH, no name in them).
sessions() {
    redis_cli "$1" --scan | grep -vc ':owner:[0-9a-f]\{32\}$'
}
check "the indexes name no owner" eval "! redis_cli sealed --scan | grep -qiE 'alice|bob'"
# Both Redis dumps hold as many records as logins went there.
expect_eq "sealed Redis: three sessions (rs, xr, rq)" 3 "$(sessions sealed)"
expect_eq "clear Redis: two sessions (rc, xc)" 2 "$(sessions clear)"
XC_KEY=$(redis_cli clear --scan --pattern 'crypto:*' | grep -v ':owner:')
redis_cli clear GET "$XC_KEY" >"$WORK/xc.value"
check "xc (format 1 + mod_session_crypto): a record of format 1" has "$WORK/xc.value" $'SS\x01'
check "xc: the stored payload is mod_session_crypto's, no password" eval "! has '$WORK/xc.value' '$PASSWORD'"
check "xc: ... and no session value" eval "! has '$WORK/xc.value' '$MARK'"

# ---- mod_session_crypto on top ----
for n in xr xm; do
    url=$(eval echo "\$URL_$n")
    get "$n" "$url/private/" >/dev/null
    expect_eq "$n (mod_session_crypto): the logged-in page" 200 "$(code)"
    get "$n" "$url/logout" >/dev/null
    get "$n" "$url/private/" >/dev/null
    expect_eq "$n (mod_session_crypto): logged out" 302 "$(code)"
    check "$n: mod_session_crypto is loaded" grep -q "session_crypto" "$WORK/$n/httpd.conf"
    check "$n: no crypto error in the log" eval "! grep -qiE 'crypto.*(error|fail)' '$WORK/$n/logs/error.log'"
done
expect_eq "xr: its record removed at logout" 2 "$(sessions sealed)"

# ---- a record in clear planted under bob's keys ----
# Whoever can write to Redis copies alice's clear (format 1) record from rc
# over the keys of bob's sessions on rs (SessionStoreSeal On: records in clear
# are still read, as a rolling upgrade needs) and on rq (Required).
key_of() { # key_of NAME: the store key (hex SHA-256) of the session in NAME's jar
    printf '%s' "$(jar_sid "$1")" | sha256sum | cut -c1-64
}
expect_eq "rc: alice logs in" 302 "$(login rc2 "$URL_rc" alice secret)"
redis_cli clear --raw GET "sessstore:$(key_of rc2)" | head -c -1 >"$WORK/alice.record"
check "alice's record is format 1, in clear" has "$WORK/alice.record" "site-user=alice"
redis_cli sealed -x SET "sessstore:$(key_of rs)" <"$WORK/alice.record" >/dev/null
redis_cli sealed -x SET "req:$(key_of rq)" <"$WORK/alice.record" >/dev/null
body=$(get rs "$URL_rs/private/cgi/session.cgi")
check "Seal On: the planted record in clear is served (the limit Required closes)" \
    grep -q "user=alice" <<<"$body"
get rq "$URL_rq/private/" >/dev/null
expect_eq "Seal Required: the planted record is refused, bob is not logged in" 302 "$(code)"
check "Seal Required: counted as malformed and logged" \
    grep -q "malformed record; removed" "$WORK/rq/logs/error.log"
expect_eq "Seal Required: the planted record is gone" 0 \
    "$(redis_cli sealed EXISTS "req:$(key_of rq)")"

for n in rs rc ms mc xr xm xc rq; do
    check "$n: no child crashed" eval "! log_has_crash $n"
done

finish
