#!/usr/bin/env bash
# PHP sessions on the store: Debian's php-cgi behind mod_actions (no mod_php),
# contrib/php/sessstore_handler.php prepended, and an unmodified
# session_start() shopping cart. Redis across two nodes (event MPM, mod_cgid)
# behind a round-robin balancer, and shm on one node (prefork, mod_cgi).
# Also pins the rules of the plain CGI interface the bridge is built on.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_nodes.sh"

PHP_CGI=${PHP_CGI:-/usr/bin/php-cgi}
[ -x "$PHP_CGI" ] || die "php-cgi not found at $PHP_CGI (install php-cgi; scripts/deps does)"
[ -f "$MODDIR/mod_actions.so" ] || die "mod_actions not found in $MODDIR"

# The application: plain PHP that knows nothing of the bridge.
write_cart() {
    cat >"$1" <<'PHP'
<?php
session_start();
$op = isset($_GET['op']) ? $_GET['op'] : '';
if ($op === 'add') {
    $_SESSION['cart'][] = $_GET['item'];
} elseif ($op === 'late') {        // 10 KB of output first, then the change
    echo str_repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!\n", 160);
    $_SESSION['cart'][] = 'late';
} elseif ($op === 'bulk') {        // 20 KB of cart data
    for ($i = 0; $i < 20; $i++) {
        $_SESSION['cart'][] = str_repeat(chr(65 + $i), 1000);
    }
} elseif ($op === 'small') {
    $_SESSION['cart'] = array('one');
} elseif ($op === 'regen') {
    session_regenerate_id(true);
} elseif ($op === 'unbuffered') {  // empties every output buffer, then changes the session
    while (ob_get_level()) {
        ob_end_flush();
    }
    echo "sent\n";
    $_SESSION['cart'][] = 'lost';
} elseif ($op === 'env') {
    echo "env=", getenv('HTTP_SESSION'), "\n", "server=", $_SERVER['HTTP_SESSION'], "\n";
} elseif ($op === 'destroy') {
    session_destroy();
    $_SESSION = array();
}
$cart = isset($_SESSION['cart']) ? $_SESSION['cart'] : array();
echo "user=", isset($_SERVER['REMOTE_USER']) ? $_SERVER['REMOTE_USER'] : '', "\n";
echo "sid=", session_id(), "\n";
echo "items=", count($cart), "\n";
echo "bytes=", strlen(implode('', $cart)), "\n";
echo "cart=", implode(',', array_slice($cart, 0, 5)), "\n";
PHP
}

# php_node NAME PORT MPM BACKEND [directives...]: a node serving *.php through
# a php-cgi wrapper that prepends the bridge.
php_node() {
    local name=$1 port=$2 mpm=$3 backend=$4
    shift 4
    httpd_conf "$name" "$port" "$mpm" "SessionStoreBackend $backend" \
        "Header always set X-Node $name" \
        "LoadModule actions_module $MODDIR/mod_actions.so" \
        "ScriptAlias /cgi-bin/ $WORK/$name/cgi-bin/" \
        "<Directory $WORK/$name/cgi-bin>" "    Require all granted" "</Directory>" \
        "Action application/x-httpd-php /cgi-bin/php" "$@"
    mkdir -p "$WORK/$name/cgi-bin" "$WORK/$name/htdocs/private/shop"
    cp "$TOP/contrib/php/sessstore_handler.php" "$WORK/$name/"
    cat >"$WORK/$name/cgi-bin/php" <<SH
#!/bin/sh
exec $PHP_CGI -d auto_prepend_file=$WORK/$name/sessstore_handler.php \\
    -d display_errors=0 -d log_errors=1 -d error_log= "\$@"
SH
    write_cart "$WORK/$name/htdocs/private/shop/cart.php"
    write_cart "$WORK/$name/htdocs/public/cart.php"
    cp "$E2E_DIR/site/session.cgi" "$WORK/$name/htdocs/private/cgi/"
    cat >"$WORK/$name/htdocs/private/cgi/rules.cgi" <<'SH'
#!/bin/sh
# Plain CGI writes, one rule of mod_session's interface each.
case "$QUERY_STRING" in
plus) printf 'X-Replace-Session: rule=a+b\r\n' ;;
pct) printf 'X-Replace-Session: rule=50%%&other=1\r\n' ;;
joined) printf 'X-Replace-Session: j1=x\r\nX-Replace-Session: j2=y\r\n' ;;
long) printf 'X-Replace-Session: long=%s\r\n' "$(head -c 9000 /dev/zero | tr '\0' x)" ;;
esac
printf 'Content-Type: text/plain\r\n\r\ndone\n'
SH
    chmod -R a+rX "$WORK/$name" && chmod 755 "$WORK/$name/cgi-bin/php" "$WORK/$name/htdocs/private/cgi/"*.cgi
}

RP=$(free_port)
redis_start redis "$RP"
PA=$(free_port)
PB=$(free_port)
PF=$(free_port)
PS=$(free_port)
# The Redis nodes allow 64K sessions (and tell the bridge); the shm node keeps the default 16K.
for n in a b; do
    p=$PA
    [ $n = b ] && p=$PB
    php_node $n "$p" event "redis://127.0.0.1:$RP/0?prefix=php:" \
        "SessionStoreMaxSessionSize 64K" "SetEnv SESSSTORE_MAX_SESSION_SIZE 64K" \
        "AddType application/x-httpd-php .php"
done
# (the shm node maps .php as docs/php.md does)
php_node s "$PS" prefork shm '<FilesMatch "\.php$">' "    SetHandler application/x-httpd-php" "</FilesMatch>"
balancer_conf front "$PF" 0 "$PA" "$PB"
httpd_start a "$PA"
httpd_start b "$PB"
httpd_start s "$PS"
httpd_start front "$PF"
F=http://127.0.0.1:$PF
A=http://127.0.0.1:$PA
B=http://127.0.0.1:$PB
S=http://127.0.0.1:$PS

# pget JAR URL: get, keeping every response header for the checks at the end.
pget() {
    get "$@"
    cat "$WORK/last.headers" >>"$WORK/all.headers"
}
field() { # field NAME: from the last body
    sed -n "s/^$1=//p" "$WORK/last.body"
}

# cart_cases LABEL JAR WRITE READ NODES: the application's cases; WRITE and
# READ are base URLs (the balancer and a node, or one shm node).
cart_cases() {
    local l=$1 j=$2 w=$3 r=$4 sid0 sid1 sid2
    pget "$j" "$w/private/shop/cart.php" >/dev/null
    expect_eq "$l: the cart needs a login (mod_auth_form)" 302 "$(code)"
    expect_eq "$l: login" 302 "$(login "$j" "$w" alice secret)"
    pget "$j" "$w/private/shop/cart.php?op=add&item=apple" >/dev/null
    pget "$j" "$w/private/shop/cart.php?op=add&item=pear" >/dev/null
    pget "$j" "$w/private/shop/cart.php?op=add&item=a%2Bb+100%25%26x%3Dy" >/dev/null
    pget "$j" "$r/private/shop/cart.php" >/dev/null
    expect_eq "$l: \$_SESSION['cart'] kept, '+', '%', '&' and '=' intact" "apple,pear,a+b 100%&x=y" "$(field cart)"
    expect_eq "$l: REMOTE_USER for PHP (REDIRECT_REMOTE_USER under mod_actions)" alice "$(field user)"

    pget "$j" "$w/private/shop/cart.php?op=late" >/dev/null
    check "$l: 10 KB of output before the change" test "$(stat -c %s "$WORK/last.body")" -gt 10240
    pget "$j" "$r/private/shop/cart.php" >/dev/null
    expect_eq "$l: a change made after 10 KB of output is stored" 4 "$(field items)"

    sid0=$(field sid)
    sid1=$(jar_sid "$j")
    pget "$j" "$w/private/shop/cart.php?op=regen" >/dev/null
    sid2=$(field sid)
    pget "$j" "$r/private/shop/cart.php" >/dev/null
    check "$l: session_regenerate_id(true): a new session_id() ..." test -n "$sid0" -a -n "$sid2" -a "$sid2" != "$sid0"
    expect_eq "$l: ... which the next request reports" "$sid2" "$(field sid)"
    expect_eq "$l: ... and the cart kept" 4 "$(field items)"
    expect_eq "$l: ... the store's cookie is the same session" "$sid1" "$(jar_sid "$j")"

    pget "$j" "$w/private/shop/cart.php?op=destroy" >/dev/null
    pget "$j" "$r/private/shop/cart.php" >/dev/null
    expect_eq "$l: session_destroy(): the cart is empty" 0 "$(field items)"
    expect_eq "$l: ... and the login (not the bridge's) stays" "200 alice" "$(code) $(field user)"
    pget "$j" "$r/private/cgi/session.cgi" >/dev/null
    check "$l: ... no php key left in the session" bash -c "! grep -q 'php' '$WORK/last.body'"

    pget "$j" "$w/private/shop/cart.php?op=add&item=plum" >/dev/null
    pget "$j" "$w/logout" >/dev/null
    pget "$j" "$w/login.html" >/dev/null
    login "$j" "$w" alice secret >/dev/null
    pget "$j" "$r/private/shop/cart.php" >/dev/null
    expect_eq "$l: logout cleared the cart: empty after a new login" "200 0" "$(code) $(field items)"
}

# --- Redis, two nodes, round robin
cart_cases redis u "$F" "$A"
nodes=$(grep -i '^x-node:' "$WORK/all.headers" | tr -d '\r' | awk '{print $2}' | sort -u | tr '\n' ' ')
expect_eq "both Redis nodes served the cart" "a b " "$nodes"
# the same session seen directly on each node
pget u "$F/private/shop/cart.php?op=add&item=fig" >/dev/null
pget u "$A/private/shop/cart.php" >/dev/null
ca=$(field cart)
pget u "$B/private/shop/cart.php" >/dev/null
expect_eq "node a and node b show the same cart" "fig fig" "$ca $(field cart)"
pget u "$F/logout" >/dev/null
pget u "$A/private/shop/cart.php" >/dev/null
a=$(code)
pget u "$B/private/shop/cart.php" >/dev/null
expect_eq "logout through the balancer: the cart is gone on node a and node b" "302 302" "$a $(code)"

# A large session is split over php, php.1, ... and shrinks back cleanly.
login big "$F" bob hunter2 >/dev/null
pget big "$F/private/shop/cart.php?op=bulk" >/dev/null
expect_eq "20 KB of cart data: 200, not a 500 from mod_cgid" 200 "$(code)"
pget big "$A/private/shop/cart.php" >/dev/null
a="$(field items) $(field bytes)"
pget big "$B/private/shop/cart.php" >/dev/null
expect_eq "... stored whole, read on node a and node b" "20 20000 20 20000" "$a $(field items) $(field bytes)"
pget big "$A/private/cgi/session.cgi" >/dev/null
check "... over several keys (php.1 and more)" grep -q 'php\.1=' "$WORK/last.body"
check "... each chunk tagged with its write (the store merges key by key: no mix of two writes)" \
    bash -c "tag=\$(grep -o 'php=[0-9]*\.[0-9a-f]\{8\}\.' '$WORK/last.body' | cut -d. -f2) && [ -n \"\$tag\" ] && grep -q \"php\.1=\$tag\.\" '$WORK/last.body'"
check "... and the ', ' of joined header lines left no key behind" bash -c "! grep -q '%2C' '$WORK/last.body'"
pget big "$F/private/shop/cart.php?op=small" >/dev/null
pget big "$B/private/cgi/session.cgi" >/dev/null
check "shrunk back to one key: the other chunks are removed" bash -c "! grep -q 'php\.1=' '$WORK/last.body'"
pget big "$A/private/shop/cart.php" >/dev/null
expect_eq "... and the cart reads back" one "$(field cart)"

# --- shm, one node (prefork, mod_cgi)
cart_cases shm v "$S" "$S"
# Over the default 16K: the bridge refuses with a PHP warning; the previous version stays.
login vb "$S" bob hunter2 >/dev/null
pget vb "$S/private/shop/cart.php?op=add&item=kept" >/dev/null
pget vb "$S/private/shop/cart.php?op=bulk" >/dev/null
expect_eq "shm, 20 KB over SessionStoreMaxSessionSize 16K: 200, no 500" 200 "$(code)"
check "... a PHP warning in the error log names the limit" \
    grep -q 'sessstore: session not saved: it would take .* over SessionStoreMaxSessionSize (16384)' "$WORK/s/logs/error.log"
pget vb "$S/private/shop/cart.php" >/dev/null
expect_eq "... and the previous version of the session is kept" kept "$(field cart)"

# An anonymous session: session_destroy() leaves nothing, the store ends it.
pget anon "$S/public/cart.php?op=add&item=x" >/dev/null
check "anonymous cart: a session cookie" test -n "$(jar_sid anon)"
pget anon "$S/public/cart.php?op=destroy" >/dev/null
expect_eq "session_destroy() with nothing else in the session: the store ends it, the cookie goes" "" "$(jar_sid anon)"

# Output sent before the session is written (the application emptied the
# bridge's buffer): a PHP warning, never a silent loss.
pget vb "$S/private/shop/cart.php?op=unbuffered" >/dev/null
expect_eq "buffers emptied by the application, then a change: the page is served" 200 "$(code)"
check "... a PHP warning says the session was not saved and where output started" \
    grep -q 'sessstore: session not saved: output started at .*cart.php' "$WORK/s/logs/error.log"
pget vb "$S/private/shop/cart.php" >/dev/null
expect_eq "... the session is unchanged" kept "$(field cart)"

# mod_auth_form's password is kept out of what PHP shows of HTTP_SESSION.
pget vb "$S/private/shop/cart.php?op=env" >/dev/null
check "HTTP_SESSION in getenv() and \$_SERVER: the user, not the password" bash -c \
    "grep -q '^env=.*site-user=bob' '$WORK/last.body' && grep -q '^server=.*site-user=bob' '$WORK/last.body' &&
     ! grep -q -- '-pw=' '$WORK/last.body'"
pget vb "$S/private/shop/cart.php" >/dev/null
expect_eq "... and the login still holds (the password stays in the store)" "200 bob" "$(code) $(field user)"

# --- the browser sees none of it
expect_eq "no PHPSESSID cookie in any response" 0 "$(grep -ci 'phpsessid' "$WORK/all.headers")"
expect_eq "no X-Replace-Session header reaches the browser" 0 "$(grep -ci '^x-replace-session' "$WORK/all.headers")"
expect_eq "no 500 in any response" 0 "$(grep -c '^HTTP/1.1 500' "$WORK/all.headers")"

# --- the plain CGI interface underneath: the rules the bridge follows
login r "$A" alice secret >/dev/null
rule() { # rule CASE: runs rules.cgi?CASE, prints the session as the next script sees it
    get r "$A/private/cgi/rules.cgi?$1" >/dev/null
    echo "$(code) $(get r "$A/private/cgi/session.cgi" | sed -n 's/^session=//p' | tr '&' '\n' |
        grep -E '^(rule|other|j1|j2|long)=' | sort | tr '\n' ' ')"
}
expect_eq "CGI rule: a raw '+' becomes a space" "200 rule=a+b " "$(rule plus)"
expect_eq "CGI rule: a bare '%' drops its pair (the others stay)" "200 other=1 rule=a+b " "$(rule pct)"
expect_eq "CGI rule: two X-Replace-Session lines are joined with ', ' into one value" \
    "200 j1=x%2c+j2%3dy other=1 rule=a+b " "$(rule joined)"
expect_eq "CGI rule: a header line over 8 KB is a 500 from mod_cgid" 500 "$(rule long | cut -d' ' -f1)"
finish
