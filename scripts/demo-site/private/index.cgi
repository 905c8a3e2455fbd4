#!/bin/sh
# The session as the application sees it (SessionEnv On), and a visit counter
# kept in the session through the SessionHeader response header.
visits=$(printf '%s' "${HTTP_SESSION:-}" | tr '&' '\n' | sed -n 's/^visits=//p')
visits=$(( ${visits:-0} + 1 ))
printf 'X-Replace-Session: visits=%s\r\n' "$visits"
printf 'Content-Type: text/html; charset=utf-8\r\n\r\n'
esc() { printf '%s' "$1" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g'; }
# The log's tag of a session: the first 8 hex digits of SHA-256 of its ID,
# the store's key; the ID itself is never printed.
tag() {
    printf '%s' "${HTTP_COOKIE:-}" | tr ';' '\n' | sed -n 's/^ *demo_session=//p' | head -1 |
        tr -d '\n' | sha256sum | cut -c1-8
}
cat <<HTML
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Your session</title>
<style>body{font-family:sans-serif;max-width:40em;margin:3em auto} code{background:#eee;padding:.1em .3em}</style>
</head><body>
<h1>Hello, $(esc "${REMOTE_USER:-?}")</h1>
<p>Visits in this session: <b>$visits</b></p>
<p>Served by <b>$(esc "${NODE_NAME:-$(hostname)}")</b>.</p>
<p>The session as mod_session hands it to this script (HTTP_SESSION):</p>
<p><code>$(esc "${HTTP_SESSION:-}" | sed 's/pw=[^&]*/pw=(hidden)/')</code></p>
<p>Your cookie holds only a random 256-bit session ID, which this page does not
print: the cookie is HttpOnly so that the page's scripts never see it. Its
tag, as the error log names this session: <code>$(tag)</code>.</p>
<p><a href="/private/">Reload</a> · <a href="/logout">Log out</a></p>
</body></html>
HTML
