#!/usr/bin/env bash
# The problem mod_sessstore's Redis backend exists for, shown with its own
# shm backend: two nodes that each keep sessions locally lose them behind a
# round-robin balancer; a sticky balancer keeps them until a node dies.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_nodes.sh"

PA=$(free_port)
PB=$(free_port)
PR=$(free_port)
PS=$(free_port)
for n in a b; do
    p=$PA
    [ $n = b ] && p=$PB
    httpd_conf $n "$p" event "SessionStoreBackend shm" "Header always set X-Node $n"
done
balancer_conf roundrobin "$PR" 0 "$PA" "$PB"
balancer_conf sticky "$PS" 1 "$PA" "$PB"
for n in a b roundrobin sticky; do
    case $n in a) p=$PA ;; b) p=$PB ;; roundrobin) p=$PR ;; sticky) p=$PS ;; esac
    httpd_start $n "$p"
done

# --- round robin, sessions on each node: half the requests land where the
# session is unknown (and log in again, or loop back to the login page).
R=http://127.0.0.1:$PR
login rr "$R" alice secret >/dev/null
lost=0
for i in $(seq 1 10); do
    get rr "$R/private/" >/dev/null
    [ "$(code)" = 200 ] || lost=$((lost + 1))
done
echo "# shm nodes behind round robin: $lost of 10 requests lost the session"
check "shm nodes behind a round-robin balancer lose the session ($lost of 10)" test "$lost" -ge 3

# --- sticky: every request goes back to the node holding the session
S=http://127.0.0.1:$PS
login st "$S" alice secret >/dev/null
lost=0
for i in $(seq 1 10); do
    get st "$S/private/" >/dev/null
    [ "$(code)" = 200 ] || lost=$((lost + 1))
    node=$(node_of)
done
expect_eq "with stickysession the session holds on every request" 0 "$lost"

# --- until that node dies: the balancer fails over, the session does not
httpd_stop "$node"
get st "$S/private/" >/dev/null
expect_eq "the sticky node ($node) stopped: the other node does not know the session" 302 "$(code)"

finish
