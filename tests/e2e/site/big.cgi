#!/bin/sh
# Stores QUERY_STRING bytes of filler in the session (for the size limit).
n=${QUERY_STRING:-100}
fill=$(head -c "$n" /dev/zero | tr '\0' 'x')
printf 'X-Replace-Session: big=%s\r\n' "$fill"
printf 'Content-Type: text/plain\r\n\r\n'
printf 'stored %s\n' "$n"
