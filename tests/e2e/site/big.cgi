#!/bin/sh
# Stores QUERY_STRING bytes of filler in the session (for the size limit).
# mod_cgi refuses header lines over 8 KB, so a large value goes out as several
# X-Replace-Session lines of at most 4000 bytes; httpd joins repeated headers
# with ", ", which mod_session then reads as one value of about n bytes.
n=${QUERY_STRING:-100}
fill=$(head -c "$n" /dev/zero | tr '\0' 'x')
printf 'X-Replace-Session: big=%s\r\n' "$(printf '%s' "$fill" | cut -c1-4000)"
i=4001
while [ "$i" -le "$n" ]; do
    printf 'X-Replace-Session: %s\r\n' "$(printf '%s' "$fill" | cut -c"$i-$((i + 3999))")"
    i=$((i + 4000))
done
printf 'Content-Type: text/plain\r\n\r\n'
printf 'stored %s\n' "$n"
