#!/bin/sh
# Prints the session as the application sees it (SessionEnv On).
printf 'Content-Type: text/plain\r\n\r\n'
printf 'user=%s\n' "${REMOTE_USER:-}"
printf 'session=%s\n' "${HTTP_SESSION:-}"
printf 'node=%s\n' "${NODE_NAME:-}"
