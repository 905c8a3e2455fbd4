#!/bin/sh
# Increments "counter" in the session through SessionHeader X-Replace-Session.
n=$(printf '%s' "${HTTP_SESSION:-}" | tr '&' '\n' | sed -n 's/^counter=//p')
n=$(( ${n:-0} + 1 ))
printf 'X-Replace-Session: counter=%s\r\n' "$n"
printf 'Content-Type: text/plain\r\n\r\n'
printf 'counter=%s\n' "$n"
