#!/usr/bin/env python3
"""bench.py - the benchmark's driver; run it through bench/run.

Starts one httpd (Debian's apache2, event MPM, KeepAlive On) per variant, all
at once on free loopback ports, identical but for the session lines, all with
the probe handler (tests/probe/mod_sessprobe.c); starts redis-server (TCP, a
Unix socket and, for the Redis-over-TLS variant, a TLS port on the same
process, with certificates made here by the openssl command) when a variant
needs it; drives them with bench/loadgen, interleaving variants and
repeating; runs bench/microbench and redis-benchmark, and redis-server under
callgrind for its instructions per load (lean and script); stops
everything; prints Markdown tables and, last, one "summary:" line. A
variant that cannot start fails the run (--no-tls leaves out the TLS one).
The PHP rows (see PHP_VARIANTS) serve one session_start() page through
php-cgi, with the bridge and with phpredis; without php-cgi or php-redis they
fail the run too (--no-php leaves them out).

Measurements are ratios taken side by side: in every repetition of a cell
(workload x connections) all variants run back to back, in an order that
alternates between repetitions, and a ratio is the median over repetitions of
the ratio within one repetition. Absolute numbers depend on the machine and
on whatever else runs on it; the ratios much less.

To add a variant, add one Variant(...) to VARIANTS: its httpd config lines,
the modules it loads, and what it needs started.
"""
import argparse
import ctypes
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BENCH_BUILD", os.path.join(TOP, "build", "normal"))
HTTPD = os.environ.get("HTTPD", "/usr/sbin/apache2")
MODDIR = os.environ.get("MODDIR", "/usr/lib/apache2/modules")
MODULE = os.path.join(BUILD, ".libs", "mod_sessstore.so")
PROBE = os.path.join(BUILD, "tests", "probe", ".libs", "mod_sessprobe.so")
FLOOR = os.path.join(BUILD, "tests", "probe", ".libs", "mod_sessfloor.so")
LOADGEN = os.path.join(BUILD, "bench", "loadgen")
MICROBENCH = os.path.join(BUILD, "bench", "microbench")
APU_DBD_DIR = "/usr/lib/x86_64-linux-gnu/apr-util-1"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- variants


class Variant:
    """One way of keeping sessions. Config lines may use {work}, {dir},
    {redis_port}, {redis_sock}, {redis_tls_port}, {tls_ca}, {pg_port},
    {cluster_seeds}: they
    are filled in per run."""

    def __init__(self, name, label, modules=(), server=(), location=(), cookie=None,
                 needs=(), sessstore=False, optional=False, module=None, handler="sessprobe",
                 env=None, required=False, prefork=None):
        self.name = name
        self.label = label
        self.modules = list(modules)    # httpd modules besides the common ones
        self.server = list(server)      # server-wide lines
        self.location = list(location)  # lines inside <Location /probe>
        self.cookie = cookie            # cookie name the client follows
        self.needs = set(needs)         # "redis", "redis-tls", "redis-cluster", "redis-sentinel", "sqlite", "pgsql"
        self.sessstore = sessstore      # loads mod_sessstore
        self.optional = optional        # only with its command-line switch
        self.module = module            # another mod_sessstore.so (--baseline-module)
        self.handler = handler          # sessprobe, or sessfloor (mod_sessfloor: the floor)
        self.env = dict(env or {})      # environment of its httpd (SESSSTORE_REDIS_LOAD)
        self.required = required        # cannot run here: the whole run fails, loudly
        self.prefork = prefork          # children under the prefork MPM; None: event
        self.unavailable = None         # reason, when it cannot run here
        self.port = None
        self.dir = None
        self.proc = None


DBD_SQL = [
    'DBDPrepareSQL "select value from session where key = %s and '
    '(expiry = 0 or expiry > %lld)" selectsession',
    'DBDPrepareSQL "delete from session where key = %s" deletesession',
    'DBDPrepareSQL "insert into session (value, expiry, key) values (%s, %lld, %s)" '
    'insertsession',
    'DBDPrepareSQL "update session set value = %s, expiry = %lld, key = %s where key = %s" '
    'updatesession',
]
SESSSTORE_LOCATION = ["Session On", "SessionStoreCookieName session"]

VARIANTS = [
    Variant("none", "no session (upper bound)"),
    Variant("cookie", "mod_session_cookie", modules=["session", "session_cookie"],
            location=["Session On", "SessionCookieName session path=/"], cookie="session"),
    Variant("dbd", "mod_session_dbd, SQLite", modules=["session", "dbd", "session_dbd"],
            server=["DBDriver sqlite3", "DBDParams {dir}/db/sessions.db"] + DBD_SQL,
            location=["Session On", "SessionDBDCookieName session path=/"], cookie="session",
            needs=["sqlite"]),
    Variant("pgsql", "mod_session_dbd, PostgreSQL", modules=["session", "dbd", "session_dbd"],
            server=["DBDriver pgsql",
                    "DBDParams \"host=127.0.0.1 port={pg_port} dbname=bench user=bench\""]
            + DBD_SQL,
            location=["Session On", "SessionDBDCookieName session path=/"], cookie="session",
            needs=["pgsql"], optional=True),
    Variant("shm", "mod_sessstore, shm", modules=["session"], sessstore=True,
            server=["SessionStoreBackend shm"], location=SESSSTORE_LOCATION, cookie="session"),
    # The shm variant with records in clear: the cost of sealing, side by side.
    Variant("shm-clear", "mod_sessstore, shm, unsealed", modules=["session"], sessstore=True,
            server=["SessionStoreBackend shm", "SessionStoreSeal Off"],
            location=SESSSTORE_LOCATION, cookie="session"),
    Variant("redis", "mod_sessstore, Redis TCP", modules=["session"], sessstore=True,
            server=["SessionStoreBackend redis://127.0.0.1:{redis_port}/0?prefix=bench:"],
            location=SESSSTORE_LOCATION, cookie="session", needs=["redis"]),
    # The Redis TCP variant over TLS, on the same redis-server's TLS port:
    # full verification (the chain to the run's CA and the name "localhost"
    # in the server's certificate), no client certificate. The address is
    # the TCP variant's, 127.0.0.1, so neither resolves a name; the name to
    # verify is given as tls_server_name.
    Variant("redis-tls", "mod_sessstore, Redis TLS", modules=["session"], sessstore=True,
            server=["SessionStoreBackend rediss://127.0.0.1:{redis_tls_port}/0?prefix=bench:"
                    "&tls_verify=full&tls_ca_file={tls_ca}&tls_server_name=localhost"],
            location=SESSSTORE_LOCATION, cookie="session", needs=["redis", "redis-tls"],
            required=True),
    # A Redis Cluster of three masters (no replicas) on loopback, each a
    # redis-server of its own: the sessions spread over them by key slot.
    Variant("redis-cluster", "mod_sessstore, Redis Cluster (3 masters)", modules=["session"],
            sessstore=True,
            server=["SessionStoreBackend redis-cluster://{cluster_seeds}?prefix=bench:"],
            location=SESSSTORE_LOCATION, cookie="session", needs=["redis-cluster"],
            required=True),
    # Redis Sentinel: a master, one replica and three sentinels on loopback;
    # the module asks the sentinels for the master once per process and
    # again only on a reconnect (ss_redis_sentinel.h).
    Variant("redis-sentinel", "mod_sessstore, Redis Sentinel (master + 1 replica)",
            modules=["session"], sessstore=True,
            server=["SessionStoreBackend redis-sentinel://{sentinels}/{sentinel_master}"
                    "?prefix=bench:"],
            location=SESSSTORE_LOCATION, cookie="session", needs=["redis-sentinel"],
            required=True),
    Variant("redis-unix", "mod_sessstore, Redis Unix socket", modules=["session"],
            sessstore=True, server=["SessionStoreBackend unix://{redis_sock}?db=0"],
            location=SESSSTORE_LOCATION, cookie="session", needs=["redis"]),
    # The Redis TCP variant with every load by the script (one EVALSHA), the
    # load of releases before the lean one: both measured side by side.
    Variant("redis-script", "mod_sessstore, Redis TCP, script load", modules=["session"],
            sessstore=True,
            server=["SessionStoreBackend redis://127.0.0.1:{redis_port}/0?prefix=bench:"],
            location=SESSSTORE_LOCATION, cookie="session", needs=["redis"],
            env={"SESSSTORE_REDIS_LOAD": "script"}),
    # The floor: the same round trips (GET; GET + SET) with plain hiredis, one
    # connection per thread, no session logic (tests/probe/mod_sessfloor.c).
    Variant("floor", "Redis floor: plain hiredis, no session logic", handler="sessfloor",
            server=["SessFloorRedis 127.0.0.1 {redis_port}"], cookie="session",
            needs=["redis"]),
]

# Cells: (workload, connections, shared session). The last three are the
# contention cases, one session for every connection: all counting on one key
# (True), each connection on a key of its own ("keys": what the merge must
# keep, loadgen -k), and all on one key under SessionStoreLock On ("lock":
# mod_sessstore variants only, <Location /probe/locked>).
CELLS = [("ro", 1, False), ("ro", 16, False), ("ro", 64, False),
         ("rw", 1, False), ("rw", 16, False), ("rw", 64, False), ("rw", 64, True),
         ("rw", 64, "keys"), ("rw", 64, "lock")]
CELL_SUFFIX = {False: "", True: "s", "keys": "k", "lock": "l"}


def cell_id(cell):
    """rw64s and the like, as --cells names them."""
    return f"{cell[0]}{cell[1]}{CELL_SUFFIX[cell[2]]}"


def measured_on(v, cell):
    """Whether variant v runs in cell: the lock is mod_sessstore's."""
    return cell[2] != "lock" or v.sessstore
KEY_CELLS = {("ro", 64, False), ("rw", 64, False)}  # the summary's: more repetitions

# The prefork rows: the shm store next to mod_session_cookie under the prefork
# MPM (what php setups often run), with this many children and as many
# connections, read+write: one process per connection, all of them on the
# arena's locks. Measured after the event variants, side by side in pairs.
PREFORK_CHILDREN = (64, 150)


def prefork_variants():
    base = {v.name: v for v in VARIANTS}
    return [Variant(f"{name}-prefork{n}", f"{base[name].label}, prefork {n} children",
                    modules=base[name].modules, server=base[name].server,
                    location=base[name].location, cookie=base[name].cookie,
                    sessstore=base[name].sessstore, prefork=n)
            for n in PREFORK_CHILDREN for name in ("shm", "cookie")]


# ---------------------------------------------------------------- PHP rows
#
# The same session_start() page through php-cgi (mod_cgid + mod_actions, the
# event MPM of every variant, one wrapper script), twice: with the bridge
# (contrib/php/sessstore_handler.php on mod_sessstore over Redis) and with
# phpredis' own session handler (Debian's php-redis) on the same redis-server.
# The page prints the counter it found and stores it plus one, as the probe
# does, so that loadgen's checks (0 = a new session, then +1 each request on
# a connection) apply unchanged.

PHP_CGI = os.environ.get("PHP_CGI", "/usr/bin/php-cgi")
PHP_PAGE = """<?php
session_start();
$n = isset($_SESSION['n']) ? $_SESSION['n'] : 0;
$_SESSION['n'] = $n + 1;
$out = "$n\\n";
header('Content-Type: text/plain');
header('Content-Length: ' . strlen($out));   // loadgen wants one (no chunking)
echo $out;
"""
PHP_COMMON_INI = ["display_errors=0", "log_errors=1", "error_log="]


class PhpVariant:
    """One way for PHP to keep $_SESSION: the php-cgi -d options of its
    wrapper, the session lines of its httpd, the cookie the client follows."""

    def __init__(self, name, label, ini, cookie, sessstore=False):
        self.name = name
        self.label = label
        self.ini = ini              # -d options ({redis_port}, {dir} filled in)
        self.cookie = cookie
        self.sessstore = sessstore  # mod_session + mod_sessstore, SessionEnv/SessionHeader
        self.port = None
        self.dir = None
        self.proc = None


PHP_VARIANTS = [
    PhpVariant("php-bridge", "bridge: mod_sessstore, Redis TCP",
               ["auto_prepend_file={dir}/sessstore_handler.php"], "session", sessstore=True),
    # Debian 12's phpredis 5.3.7 as installed: redis.session.locking_enabled=0.
    PhpVariant("php-phpredis", "phpredis, locking off (default)",
               ["session.save_handler=redis", "session.save_path=tcp://127.0.0.1:{redis_port}"],
               "PHPSESSID"),
    # The same with its session lock on; lock_retries x lock_wait_time (µs) =
    # 2 s of waiting at most, where the default 10 x 2 ms gives up after 20 ms.
    PhpVariant("php-phpredis-lock", "phpredis, locking on",
               ["session.save_handler=redis", "session.save_path=tcp://127.0.0.1:{redis_port}",
                "redis.session.locking_enabled=1", "redis.session.lock_retries=1000",
                "redis.session.lock_wait_time=2000"], "PHPSESSID"),
]
PHP_CONNS = 16        # read+write, each connection on its own session
PHP_PARALLEL = 10     # requests of one session at once, for the lost updates
PHP_LOST_ROUNDS = 5


def php_missing():
    """Why the PHP rows cannot run here, or None."""
    if not shutil.which("redis-server"):
        return "redis-server not installed"
    if not os.access(PHP_CGI, os.X_OK):
        return f"{PHP_CGI} not found (install php-cgi; bench/deps does)"
    for m in ("cgid", "actions", "alias"):
        if not os.path.exists(os.path.join(MODDIR, f"mod_{m}.so")):
            return f"mod_{m} not found in {MODDIR}"
    mods = subprocess.run([PHP_CGI, "-m"], capture_output=True, text=True).stdout.split()
    if "redis" not in mods:
        return "php-cgi has no redis extension (install php-redis; bench/deps does)"
    return None


def php_httpd_conf(v, ctx):
    d = v.dir
    user = ["User nobody", "Group nogroup"] if os.getuid() == 0 else []
    mods = ["mpm_event", "authz_core", "cgid", "actions", "alias"]
    if v.sessstore:
        mods.append("session")
    lines = [f"ServerRoot {d}", "ServerName 127.0.0.1", f"Listen 127.0.0.1:{v.port}",
             f"PidFile {d}/run/httpd.pid", f"DefaultRuntimeDir {d}/run",
             f"ErrorLog {d}/error.log", "LogLevel warn"]
    lines += [f"LoadModule {m}_module {MODDIR}/mod_{m}.so" for m in mods]
    if v.sessstore:
        lines.append(f"LoadModule sessstore_module {MODULE}")
    lines += user + [
        # The MPM and keep-alive settings of the probe variants.
        "ServerLimit 2", "StartServers 2", "ThreadLimit 64", "ThreadsPerChild 64",
        "MaxRequestWorkers 128", "MinSpareThreads 1", "MaxSpareThreads 128",
        "MaxConnectionsPerChild 0", "KeepAlive On", "MaxKeepAliveRequests 0",
        "KeepAliveTimeout 60", "Timeout 30",
        f"DocumentRoot {d}/htdocs",
        f"ScriptSock {d}/run/cgisock",
        f"ScriptAlias /cgi-bin/ {d}/cgi-bin/",
        '<FilesMatch "\\.php$">', "    SetHandler application/x-httpd-php", "</FilesMatch>",
        "Action application/x-httpd-php /cgi-bin/php",
    ]
    if v.sessstore:
        lines += [f"SessionStoreBackend redis://127.0.0.1:{ctx['redis_port']}/0?prefix=php:",
                  "<Location />", "    Session On", "    SessionStoreCookieName session",
                  "    SessionEnv On", "    SessionHeader X-Replace-Session", "</Location>"]
    return "\n".join(lines) + "\n"


def setup_php_variant(v, work, ctx):
    v.dir = os.path.join(work, v.name)
    for sub in ("run", "htdocs", "cgi-bin"):
        os.makedirs(os.path.join(v.dir, sub), exist_ok=True)
    shutil.copy(os.path.join(TOP, "contrib", "php", "sessstore_handler.php"), v.dir)
    with open(os.path.join(v.dir, "htdocs", "n.php"), "w") as f:
        f.write(PHP_PAGE)
    ini = PHP_COMMON_INI + [o.format(**ctx, dir=v.dir) for o in v.ini]
    wrapper = os.path.join(v.dir, "cgi-bin", "php")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec " + PHP_CGI + "".join(f" -d '{o}'" for o in ini) + ' "$@"\n')
    subprocess.run(["chmod", "-R", "a+rX", v.dir], check=True)
    os.chmod(wrapper, 0o755)
    v.port = free_port()
    conf = os.path.join(v.dir, "httpd.conf")
    with open(conf, "w") as f:
        f.write(php_httpd_conf(v, ctx))
    t = subprocess.run([HTTPD, "-d", v.dir, "-f", conf, "-t"], capture_output=True, text=True)
    if t.returncode != 0:
        raise RuntimeError(f"{v.name}: configtest failed: {(t.stderr + t.stdout).strip()[:300]}")
    v.proc = spawn([HTTPD, "-d", v.dir, "-f", conf, "-DFOREGROUND"],
                   stdout=subprocess.DEVNULL, stderr=open(os.path.join(v.dir, "stderr.log"), "w"))
    wait_port(v.port, v.proc, f"httpd ({v.name})")
    # Smoke test: a new session says 0, the next request with its cookie 1.
    bodies = []
    cookie = None
    for _ in range(2):
        status, headers, body = http_get(v.port, "/n.php", cookie)
        if status != 200:
            raise RuntimeError(f"{v.name}: /n.php answered {status}: see {v.dir}/error.log")
        cookie = cookie or php_cookie(v, headers)
        bodies.append(body.strip())
    if bodies != ["0", "1"]:
        raise RuntimeError(f"{v.name}: session not kept ({bodies}); see {v.dir}/error.log")


def php_cookie(v, headers):
    """"NAME=VALUE" of the variant's cookie in a response, or None."""
    for h in headers:
        name, _, value = h.partition(":")
        value = value.strip().split(";")[0]
        if name.lower() == "set-cookie" and value.startswith(v.cookie + "="):
            return value
    return None


def lost_updates(v):
    """PHP_PARALLEL requests of one session at once, each adding 1 to the
    counter, PHP_LOST_ROUNDS times on a fresh session: (updates lost, sent)."""
    lost = 0
    for _ in range(PHP_LOST_ROUNDS):
        _, headers, _ = http_get(v.port, "/n.php")       # creates the session: n = 1
        cookie = php_cookie(v, headers)
        barrier = threading.Barrier(PHP_PARALLEL)

        def one():
            barrier.wait()
            http_get(v.port, "/n.php", cookie)

        threads = [threading.Thread(target=one) for _ in range(PHP_PARALLEL)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        _, _, body = http_get(v.port, "/n.php", cookie)  # prints the count it found
        lost += PHP_PARALLEL - (int(body.strip()) - 1)
    return lost, PHP_PARALLEL * PHP_LOST_ROUNDS


def measure_php(php_variants, args):
    """Read+write at PHP_CONNS connections, variants back to back in an order
    alternating between repetitions, then the lost updates of each."""
    results = {}
    # php-cgi starts a process per request (tens of ms of CPU): the probe
    # cells' 0.6 s would count a few dozen requests, hence longer runs.
    duration, warmup = (4.0, 1.5) if args.quick else (8.0, 2.0)
    for rep in range(args.reps):
        order = php_variants if rep % 2 == 0 else list(reversed(php_variants))
        for v in order:
            p = subprocess.run([LOADGEN, "-p", str(v.port), "-u", "/n.php", "-c",
                                str(PHP_CONNS), "-d", str(duration), "-w", str(warmup),
                                "-n", v.cookie, "-m", "rw"], capture_output=True, text=True)
            try:
                res = json.loads(p.stdout)
            except ValueError:
                res = {"ok": False, "error": (p.stdout + p.stderr).strip()[:200]}
            res["rep"] = rep
            results.setdefault(v.name, []).append(res)
        log(f"  php rep {rep + 1} rw x{PHP_CONNS}: " + ", ".join(
            f"{v.name} {results[v.name][-1].get('rps', 0):.0f}/s" for v in order))
    lost = {}
    for v in php_variants:
        lost[v.name] = lost_updates(v)
        log(f"  php {v.name}: {lost[v.name][0]} of {lost[v.name][1]} updates lost")
    return {"runs": results, "lost": lost, "duration": duration, "warmup": warmup}


def php_report(php_variants, php):
    """The PHP section's lines and the php_bridge/phpredis ratio."""
    runs = php["runs"]

    def ratio(a, b):
        """Median over repetitions of rps(a) / rps(b) within the same repetition."""
        rb = {r["rep"]: r["rps"] for r in runs.get(b, []) if r.get("ok")}
        return median([r["rps"] / rb[r["rep"]] for r in runs.get(a, [])
                       if r.get("ok") and rb.get(r["rep"])])

    out = ["### PHP: the bridge next to phpredis", "",
           f"The same session_start() page (php-cgi {php_version()}, mod_cgid + mod_actions, "
           f"event MPM), read+write at {PHP_CONNS} connections each on its own session; medians "
           f"of {len(runs.get('php-bridge', []))} repetitions of {php['duration']} s after "
           f"{php['warmup']} s. Lost: updates lost with {PHP_PARALLEL} parallel requests of one "
           f"session, summed over {PHP_LOST_ROUNDS} rounds.", "",
           "| variant | req/s | p50 ms | p99 ms | × phpredis | lost updates | notes |",
           "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for v in php_variants:
        rs = [r for r in runs.get(v.name, []) if r.get("ok")]
        notes = [f"{k} {sum(r.get(k, 0) for r in rs)}" for k in
                 ("errors", "non200", "anomalies", "resets") if sum(r.get(k, 0) for r in rs)]
        notes += [r["error"] for r in runs.get(v.name, []) if not r.get("ok")][:1]
        lost, sent = php["lost"][v.name]
        out.append(f"| {v.label} | {fmt(median([r['rps'] for r in rs]), '.0f')} | "
                   f"{fmt(median([r['p50_us'] / 1000 for r in rs]), '.1f')} | "
                   f"{fmt(median([r['p99_us'] / 1000 for r in rs]), '.1f')} | "
                   f"{fmt(ratio(v.name, 'php-phpredis'), '.3f')} | "
                   f"{lost} of {sent} | {', '.join(notes)} |")
    return out, ratio("php-bridge", "php-phpredis")


def php_version():
    out = subprocess.run([PHP_CGI, "-v"], capture_output=True, text=True).stdout.split()
    return out[1] if len(out) > 1 else "?"


# ---------------------------------------------------------------- processes

_children = []


def _pdeathsig():
    # If this driver dies even by SIGKILL, the kernel stops what it started.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn(argv, **kw):
    p = subprocess.Popen(argv, preexec_fn=_pdeathsig, **kw)
    _children.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=10):
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in _children:
        _children.remove(p)


def stop_all():
    for p in reversed(list(_children)):
        stop(p)


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, what, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} does not listen on port {port}")


def http_get(port, path, cookie=None):
    """One request on its own connection: (status, headers, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if cookie:
        req += f"Cookie: {cookie}\r\n"
    s.sendall((req + "\r\n").encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    if any(l.lower().replace(" ", "") == "transfer-encoding:chunked" for l in lines[1:]):
        body = dechunk(body)
    return status, lines[1:], body.decode("latin-1")


def dechunk(data):
    """The data of a chunked body (no trailers)."""
    out = b""
    while True:
        size, _, rest = data.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            return out
        out += rest[:n]
        data = rest[n + 2:]


# ---------------------------------------------------------------- Redis


def make_tls_files(d):
    """A CA and a server certificate for localhost and 127.0.0.1 signed by
    it (EC P-256, valid 2 days), made with the openssl command in d:
    {"ca": ..., "cert": ..., "key": ...}."""
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    f = {n: os.path.join(d, n) for n in ("ca.pem", "ca.key", "server.pem", "server.key",
                                         "server.csr", "server.ext")}
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    with open(f["server.ext"], "w") as ext:
        ext.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    steps = [
        ["req", "-x509"] + key + ["-keyout", f["ca.key"], "-out", f["ca.pem"], "-days", "2",
                                  "-subj", "/CN=sessstore bench CA"],
        ["req"] + key + ["-keyout", f["server.key"], "-out", f["server.csr"],
                         "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", f["server.csr"], "-CA", f["ca.pem"], "-CAkey", f["ca.key"],
         "-CAcreateserial", "-out", f["server.pem"], "-days", "2", "-sha256",
         "-extfile", f["server.ext"]],
    ]
    for argv in steps:
        r = subprocess.run(["openssl"] + argv, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {argv[0]} failed: {r.stderr.strip()[-300:]}")
    return {"ca": f["ca.pem"], "cert": f["server.pem"], "key": f["server.key"]}


class Redis:
    """One redis-server for every Redis variant: a TCP port, a Unix socket
    and, with tls, a TLS port (certificates from make_tls_files, no client
    certificate asked) on the same process and data."""

    def __init__(self, work, tls=False):
        self.port = free_port()
        self.dir = os.path.join(work, "redis")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.tls_port = None
        self.tls = None        # {"ca", "cert", "key"}
        self.tls_probe = None  # what the driver's own handshake negotiated
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--unixsocket", self.sock, "--unixsocketperm", "777",
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--dir", self.dir, "--logfile", os.path.join(self.dir, "redis.log")]
        if tls:
            self.tls = make_tls_files(os.path.join(work, "tls"))
            self.tls_port = free_port()
            argv += ["--tls-port", str(self.tls_port), "--tls-cert-file", self.tls["cert"],
                     "--tls-key-file", self.tls["key"], "--tls-ca-cert-file", self.tls["ca"],
                     "--tls-auth-clients", "no"]
        # redis-server reports a bad option (a build without TLS) on stderr.
        self.stderr = os.path.join(self.dir, "stderr.log")
        with open(self.stderr, "w") as err:
            self.proc = spawn(argv, stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_port(self.port, self.proc, "redis-server")
        except RuntimeError as e:
            raise RuntimeError(f"{e}: {self.log_tail()}") from None
        if tls:
            self.tls_probe = self.probe_tls()
        self.calibrate()

    def log_tail(self):
        lines = []
        for f in (self.stderr, os.path.join(self.dir, "redis.log")):
            try:
                with open(f, errors="replace") as fh:
                    lines += [l.strip() for l in fh if l.strip()]
            except OSError:
                pass
        return " | ".join(lines[-3:]) or "no log"

    def probe_tls(self):
        """A PING over the TLS port, verified as the module verifies (the CA,
        the name localhost): (protocol, cipher) of that handshake."""
        ctx = ssl.create_default_context(cafile=self.tls["ca"])
        end = time.time() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.tls_port), timeout=2) as raw:
                    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                        s.sendall(b"*1\r\n$4\r\nPING\r\n")
                        if s.recv(64) != b"+PONG\r\n":
                            raise RuntimeError("no PONG")
                        return s.version(), s.cipher()[0]
            except (OSError, RuntimeError) as e:
                if self.proc.poll() is not None or time.time() > end:
                    raise RuntimeError(f"redis-server over TLS on port {self.tls_port}: {e}: "
                                       f"{self.log_tail()}") from None
                time.sleep(0.1)

    def command(self, *args):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        msg = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
        s.sendall(msg.encode())
        data = b""
        while True:
            data += s.recv(1 << 20)
            if data.startswith(b"$"):
                n, _, rest = data[1:].partition(b"\r\n")
                if int(n) < 0 or len(rest) >= int(n) + 2:
                    break
            elif data.endswith(b"\r\n"):
                break
        s.close()
        if data.startswith(b"$"):
            n, _, rest = data[1:].partition(b"\r\n")
            return rest[:int(n)].decode() if int(n) >= 0 else None
        return data.decode().strip()

    def snapshot(self):
        """Counters around a measurement: total_reads_processed (socket reads
        of client requests: one per round trip, however many commands a
        pipeline or MULTI carries) and the calls of each command, leaving out
        this driver's INFO. Commands run by a Lua script count in
        commandstats too, so those are "commands executed", not round trips."""
        text = self.command("INFO", "all")
        reads = conns = 0
        cmds = {}
        for line in text.splitlines():
            if line.startswith("total_reads_processed:"):
                reads = int(line.split(":")[1])
            elif line.startswith("total_connections_received:"):
                conns = int(line.split(":")[1])
            elif line.startswith("cmdstat_"):
                name, _, rest = line[len("cmdstat_"):].partition(":")
                fields = dict(kv.split("=") for kv in rest.split(","))
                if name != "info":
                    cmds[name] = int(fields["calls"])
        return {"reads": reads, "conns": conns, "cmds": cmds}

    def calibrate(self):
        """Reads that two snapshots themselves cause (their connections)."""
        a = self.snapshot()
        b = self.snapshot()
        self.own_reads = b["reads"] - a["reads"]
        self.own_conns = b["conns"] - a["conns"]


def stats_delta(before, after):
    return {k: after.get(k, 0) - before.get(k, 0)
            for k in set(before) | set(after) if after.get(k, 0) - before.get(k, 0)}


# ---------------------------------------------------------------- httpd


def httpd_conf(v, work, ctx):
    d = v.dir
    user = ["User nobody", "Group nogroup"] if os.getuid() == 0 else []
    mods = ["mpm_prefork" if v.prefork else "mpm_event", "authz_core"] + v.modules
    lines = [
        f"ServerRoot {d}",
        "ServerName 127.0.0.1",
        f"Listen 127.0.0.1:{v.port}",
        f"PidFile {d}/run/httpd.pid",
        f"DefaultRuntimeDir {d}/run",
        f"ErrorLog {d}/error.log",
        "LogLevel warn",
    ]
    lines += [f"LoadModule {m}_module {MODDIR}/mod_{m}.so" for m in mods]
    if v.sessstore:
        lines.append(f"LoadModule sessstore_module {v.module or MODULE}")
    lines.append(f"LoadModule sessprobe_module {PROBE}")
    if v.handler == "sessfloor":
        lines.append(f"LoadModule sessfloor_module {FLOOR}")
    if v.prefork:
        # Prefork: every child started at once and kept, one per connection.
        n = v.prefork
        lines += user + [f"ServerLimit {n}", f"StartServers {n}", f"MinSpareServers {n}",
                         f"MaxSpareServers {n}", f"MaxRequestWorkers {n}",
                         "MaxConnectionsPerChild 0"]
    else:
        # Event MPM, 2 processes x 64 threads: 64 connections never wait for a
        # thread, and the shm store is shared by processes as in production.
        lines += user + ["ServerLimit 2", "StartServers 2", "ThreadLimit 64",
                         "ThreadsPerChild 64", "MaxRequestWorkers 128", "MinSpareThreads 1",
                         "MaxSpareThreads 128", "MaxConnectionsPerChild 0"]
    lines += [
        "KeepAlive On",
        "MaxKeepAliveRequests 0",
        "KeepAliveTimeout 60",
        "Timeout 30",
        f"DocumentRoot {d}/htdocs",
    ]
    lines += [l.format(**ctx, dir=d) for l in v.server]
    lines.append("<Location /probe>")
    lines.append(f"    SetHandler {v.handler}")
    lines += ["    " + l.format(**ctx, dir=d) for l in v.location]
    lines.append("</Location>")
    if v.sessstore:
        # The "lock" cell: requests of one session one after another; the
        # wait may be long with 64 of them queued on one session.
        lines += ["<Location /probe/locked>", "    SessionStoreLock On",
                  "    SessionStoreLockTimeout 20", "</Location>"]
    return "\n".join(lines) + "\n"


def setup_variant(v, work, ctx):
    v.dir = os.path.join(work, v.name)
    for sub in ("run", "htdocs", "db"):
        os.makedirs(os.path.join(v.dir, sub), exist_ok=True)
    os.chmod(v.dir, 0o755)
    if "sqlite" in v.needs:
        db = os.path.join(v.dir, "db", "sessions.db")
        # WAL: readers do not block the writer, the kindest SQLite mode for
        # concurrent requests (the default rollback journal is slower still).
        subprocess.run(["sqlite3", db, "PRAGMA journal_mode=WAL; CREATE TABLE session "
                        "(key TEXT PRIMARY KEY, value TEXT, expiry INTEGER);"],
                       check=True, stdout=subprocess.DEVNULL)
        if os.getuid() == 0:
            nobody = pwd.getpwnam("nobody")
            for f in [os.path.join(v.dir, "db")] + [os.path.join(v.dir, "db", x)
                                                    for x in os.listdir(os.path.join(v.dir, "db"))]:
                os.chown(f, nobody.pw_uid, nobody.pw_gid)
    v.port = free_port()
    conf = os.path.join(v.dir, "httpd.conf")
    with open(conf, "w") as f:
        f.write(httpd_conf(v, work, ctx))
    t = subprocess.run([HTTPD, "-d", v.dir, "-f", conf, "-t"], capture_output=True, text=True,
                       env=dict(os.environ, **v.env))
    if t.returncode != 0:
        out = (t.stderr + t.stdout).strip().splitlines()
        msg = next((l for l in out if "not available" in l),
                   next((l for l in out if "rror" in l), out[0] if out else ""))
        if v.sessstore and "redis" in v.needs and "not available" in msg:
            v.unavailable = "backend not built"
        else:
            v.unavailable = "configtest failed: " + msg.strip()[:120]
        return
    # prefork's parent signals its whole process group when it stops: its own.
    v.proc = spawn([HTTPD, "-d", v.dir, "-f", conf, "-DFOREGROUND"],
                   env=dict(os.environ, **v.env), stdout=subprocess.DEVNULL,
                   stderr=open(os.path.join(v.dir, "stderr.log"), "w"),
                   start_new_session=bool(v.prefork))
    wait_port(v.port, v.proc, f"httpd ({v.name})")
    # Smoke test: a write creates a session, the next one sees it.
    status, headers, body = http_get(v.port, "/probe?w=1")
    if status != 200:
        raise RuntimeError(f"{v.name}: probe answered {status}: see {v.dir}/error.log")
    if v.cookie:
        cookie = next((h.split(":", 1)[1].strip().split(";")[0] for h in headers
                       if h.lower().startswith("set-cookie:")
                       and h.split(":", 1)[1].strip().startswith(v.cookie + "=")), None)
        status, _, body2 = http_get(v.port, "/probe?w=1", cookie)
        if body.strip() != "0" or body2.strip() != "1":
            raise RuntimeError(f"{v.name}: session not kept ({body.strip()!r}, {body2.strip()!r});"
                               f" see {v.dir}/error.log")
    elif body.strip() != "none":
        raise RuntimeError(f"{v.name}: expected no session, probe said {body.strip()!r}")


def scan_error_log(v):
    """(child crashes, error-or-worse lines, first such line) in a variant's error log."""
    crashes = errors = 0
    first = None
    try:
        with open(os.path.join(v.dir, "error.log"), errors="replace") as f:
            for line in f:
                if "exit signal" in line:
                    crashes += 1
                elif any(f":{lvl}]" in line for lvl in ("error", "crit", "alert", "emerg")):
                    errors += 1
                else:
                    continue
                first = first or line.strip()
    except OSError:
        pass
    return crashes, errors, first


def children_of(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """User + system CPU time of processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def user_system_ticks(pid):
    """(user, system) CPU ticks of one process, all threads."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]), int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0, 0


def cpu_ns(pid):
    """CPU time of all threads of one process in nanoseconds, from the
    scheduler's own accounting (/proc/PID/task/*/schedstat): exact, where
    /proc/PID/stat counts in ticks of 10 ms. Used for redis-server, whose
    share per request is a few microseconds."""
    total = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        pass
    return total


def memory_of(pid):
    """(RSS, PSS) in KiB of one process."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


# ---------------------------------------------------------------- measuring


def run_cell(v, cell, args, redis):
    workload, conns, shared = cell
    path = "/probe?w=1" if workload == "rw" else "/probe"
    if shared == "lock":
        path = "/probe/locked?w=1"
    if args.payload:
        path += ("&" if "?" in path else "?") + f"pad={args.payload}"
    argv = [LOADGEN, "-p", str(v.port), "-u", path, "-c", str(conns), "-d", str(args.duration),
            "-w", str(args.warmup), "-n", v.cookie or "session", "-m", workload, "-b"]
    if shared:
        argv.append("-s")
    if shared == "keys":
        argv.append("-k")
    uses_redis = redis and "redis" in v.needs
    # Connections opened in the warm-up too (for TLS: handshakes while the
    # pool fills), not only in the measured phase.
    pre = redis.snapshot() if uses_redis else None
    p = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    httpd_pids = [v.proc.pid] + children_of(v.proc.pid)
    cpu0 = cpu_seconds(httpd_pids), cpu_ns(redis.proc.pid) / 1e9 if uses_redis else 0
    us0 = user_system_ticks(redis.proc.pid) if uses_redis else (0, 0)
    before = redis.snapshot() if uses_redis else None
    if line.strip() != "ready":
        stop(p)
        return {"ok": False, "error": line.strip() or "loadgen failed in warm-up"}
    p.stdin.write("go\n")
    p.stdin.flush()
    out = p.stdout.readline()
    after = redis.snapshot() if before is not None else None
    cpu1 = cpu_seconds(httpd_pids), cpu_ns(redis.proc.pid) / 1e9 if uses_redis else 0
    us1 = user_system_ticks(redis.proc.pid) if uses_redis else (0, 0)
    p.wait()
    _children.remove(p)
    try:
        res = json.loads(out)
    except ValueError:
        return {"ok": False, "error": "loadgen printed " + out.strip()[:100]}
    if res.get("measured_total"):
        res["httpd_cpu_us"] = (cpu1[0] - cpu0[0]) * 1e6 / res["measured_total"]
        if uses_redis:
            res["redis_cpu_us"] = (cpu1[1] - cpu0[1]) * 1e6 / res["measured_total"]
            ticks = (us1[0] - us0[0]) + (us1[1] - us0[1])
            if ticks > 0:
                res["redis_user_frac"] = (us1[0] - us0[0]) / ticks
    if before is not None:
        res["redis_cmds"] = stats_delta(before["cmds"], after["cmds"])
        res["redis_reads"] = after["reads"] - before["reads"] - redis.own_reads
        res["redis_connects"] = after["conns"] - before["conns"] - redis.own_conns
        res["redis_connects_warmup"] = before["conns"] - pre["conns"] - redis.own_conns
    return res


def measure_all(variants, args, redis):
    results = {}  # (variant, cell) -> [result per repetition]
    live = [v for v in variants if not v.unavailable]
    plan = []
    for rep in range(args.reps):
        for ci, cell in enumerate(CELLS):
            if rep >= (args.reps if cell in KEY_CELLS else args.reps_other):
                continue
            order = live if (rep + ci) % 2 == 0 else list(reversed(live))
            order = [v for v in order if measured_on(v, cell)]
            plan.append((rep, cell, order))
    total = sum(len(o) for _, _, o in plan)
    done = 0
    t0 = time.time()
    for rep, cell, order in plan:
        for v in order:
            res = run_cell(v, cell, args, redis)
            res["rep"] = rep
            results.setdefault((v.name, cell), []).append(res)
            done += 1
            if not res.get("ok"):
                log(f"  {v.name} {cell}: {res.get('error')}")
        log(f"  [{done}/{total}, {time.time() - t0:.0f} s] rep {rep + 1} "
            f"{cell[0]} x{cell[1]}{' shared' if cell[2] else ''}"
            f"{' ' + cell[2] if cell[2] in ('keys', 'lock') else ''}: " +
            ", ".join(f"{v.name} {results[(v.name, cell)][-1].get('rps', 0):.0f}/s"
                      for v in order))
    return results


def measure_prefork(pvariants, args):
    """Read+write at as many connections as children, shm and cookie back to
    back in an order alternating between repetitions."""
    results = {}
    for rep in range(args.reps):
        for n in PREFORK_CHILDREN:
            pair = [v for v in pvariants if v.prefork == n and not v.unavailable]
            order = pair if rep % 2 == 0 else list(reversed(pair))
            for v in order:
                res = run_cell(v, ("rw", n, False), args, None)
                res["rep"] = rep
                results.setdefault((v.name, ("rw", n, False)), []).append(res)
                if not res.get("ok"):
                    log(f"  {v.name}: {res.get('error')}")
            log(f"  prefork rep {rep + 1} rw x{n}: " + ", ".join(
                f"{v.name} {results[(v.name, ('rw', n, False))][-1].get('rps', 0):.0f}/s"
                for v in order))
    return results


def prefork_report(presults):
    """The table of the prefork rows and the lower of their shm/cookie ratios."""
    out = ["### prefork MPM (read+write, one connection per child)", "",
           "| children = connections | shm req/s | cookie req/s | shm / cookie |",
           "| ---: | ---: | ---: | ---: |"]
    ratios = []
    for n in PREFORK_CHILDREN:
        cell = ("rw", n, False)
        shm = median([r["rps"] for r in presults.get((f"shm-prefork{n}", cell), []) if r.get("ok")])
        cookie = median([r["rps"] for r in presults.get((f"cookie-prefork{n}", cell), [])
                         if r.get("ok")])
        ratio = paired_ratio(presults, f"shm-prefork{n}", f"cookie-prefork{n}", cell)
        ratios.append(ratio)
        out.append(f"| {n} | {fmt(shm, '.0f')} | {fmt(cookie, '.0f')} | {fmt(ratio, '.3f')} |")
    worst = None if any(r is None for r in ratios) else min(ratios)
    return out + [""], worst


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def paired_ratio(results, a, b, cell):
    """Median over repetitions of rps(a) / rps(b) within the same repetition."""
    ra = {r["rep"]: r["rps"] for r in results.get((a, cell), []) if r.get("ok")}
    rb = {r["rep"]: r["rps"] for r in results.get((b, cell), []) if r.get("ok")}
    return median([ra[k] / rb[k] for k in ra if k in rb and rb[k] > 0])


def redis_per_request(results, name, cell):
    """Redis round trips per HTTP request: socket reads on the server, less
    one per connection opened (its close is a read too)."""
    vals = []
    for r in results.get((name, cell), []):
        if r.get("ok") and "redis_reads" in r and r.get("measured_total"):
            vals.append((r["redis_reads"] - r.get("redis_connects", 0)) / r["measured_total"])
    return median(vals)


def redis_connects(results, name, cell):
    vals = [r["redis_connects"] / r["measured_total"] for r in results.get((name, cell), [])
            if r.get("ok") and "redis_connects" in r and r.get("measured_total")]
    return median(vals)


def redis_breakdown(results, name, cell):
    per = {}
    for r in results.get((name, cell), []):
        if r.get("ok") and "redis_cmds" in r and r.get("measured_total"):
            for k, n in r["redis_cmds"].items():
                per.setdefault(k, []).append(n / r["measured_total"])
    return {k: median(v) for k, v in per.items()}


# ---------------------------------------------------------------- instruction counts


def callgrind_conf(v):
    """The variant's httpd.conf with generous Redis timeouts: under callgrind
    httpd runs 20-50 times slower, and a TLS handshake at start-up can take
    longer than the default connect_timeout (300 ms). Timed out, it would
    be made again inside a counted request, in one run and not the other."""
    slow = "connect_timeout=10000&command_timeout=10000"
    lines = []
    with open(os.path.join(v.dir, "httpd.conf")) as f:
        for line in f:
            if line.startswith("SessionStoreBackend ") and "://" in line:
                line = line.rstrip("\n") + ("&" if "?" in line else "?") + slow + "\n"
            lines.append(line)
    conf = os.path.join(v.dir, "httpd.callgrind.conf")
    with open(conf, "w") as f:
        f.writelines(lines)
    return conf


def callgrind_total(v, workload, requests, cgdir):
    """Instructions counted inside ap_run_process_connection of httpd -X
    under callgrind while one connection makes 1 + requests requests."""
    out = os.path.join(cgdir, f"{v.name}.{workload}.{requests}.out")
    open(out, "w").close()
    os.chmod(out, 0o666)
    if os.getuid() == 0:  # httpd writes it after switching to nobody
        nobody = pwd.getpwnam("nobody")
        os.chown(out, nobody.pw_uid, nobody.pw_gid)
    p = spawn(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               "--collect-atstart=no", "--toggle-collect=ap_run_process_connection",
               HTTPD, "-X", "-d", v.dir, "-f", callgrind_conf(v)],
              env=dict(os.environ, **v.env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(v.port, p, f"httpd ({v.name}) under callgrind", timeout=60)
        lg = subprocess.run([LOADGEN, "-p", str(v.port), "-u",
                             "/probe?w=1" if workload == "rw" else "/probe", "-c", "1",
                             "-d", "120", "-w", "0", "-r", str(requests),
                             "-n", v.cookie or "session", "-m", workload],
                            capture_output=True, text=True, timeout=180)
        res = json.loads(lg.stdout)
    finally:
        stop(p)
    with open(out) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1]), res["measured_total"]
    raise RuntimeError("no totals in " + out)


def callgrind_costs(variants, args, work):
    """User-space instructions per request of each variant, from httpd -X
    under callgrind: the difference between a short and a long run divided by
    the difference in requests, so one-time costs (the first session, library
    initialisation) drop out. Deterministic, unlike requests/s on a busy
    machine; the kernel's share (syscalls, loopback) is not in it."""
    costs = {}
    cgdir = os.path.join(work, "callgrind")
    os.makedirs(cgdir, exist_ok=True)
    os.chmod(cgdir, 0o777)
    short = max(args.callgrind // 10, 20)
    for v in variants:
        if v.unavailable or not v.dir:
            continue
        for workload in ("ro", "rw"):
            try:
                t1, n1 = callgrind_total(v, workload, short, cgdir)
                t2, n2 = callgrind_total(v, workload, short + args.callgrind, cgdir)
            except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as e:
                log(f"  callgrind {v.name} {workload}: {e}")
                continue
            if n2 > n1:
                costs[(v.name, workload)] = (t2 - t1) / (n2 - n1)
        log(f"  callgrind {v.name}: " + ", ".join(
            f"{w} {costs[(v.name, w)]:.0f} instructions/request"
            for w in ("ro", "rw") if (v.name, w) in costs))
    return costs


# ---------------------------------------------------------------- redis-server instructions


def redis_callgrind_total(work, loads, env):
    """Instructions of a redis-server under callgrind (everything from start
    to shutdown) while bench/microbench makes `loads` loads through the
    library on one connection."""
    d = tempfile.mkdtemp(prefix="redis-cg.", dir=work)
    out = os.path.join(d, "callgrind.out")
    port = free_port()
    p = spawn(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", d, "--logfile", os.path.join(d, "redis.log")],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, p, "redis-server under callgrind", timeout=60)
        # Generous timeouts: redis-server runs 20-50 times slower under callgrind.
        mb = subprocess.run([MICROBENCH, "-r", f"redis://127.0.0.1:{port}/0?prefix=cg:"
                             "&connect_timeout=10000&command_timeout=10000", "-n", str(loads)],
                            env=dict(os.environ, **env), capture_output=True, text=True,
                            timeout=300)
        if mb.returncode != 0 or not mb.stdout.strip():
            raise RuntimeError("microbench failed: " + mb.stderr.strip()[-200:])
        res = json.loads(mb.stdout.strip().splitlines()[-1])
        if res.get("failures"):
            raise RuntimeError(f"{res['failures']} loads failed")
    finally:
        stop(p)
    with open(out) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no totals in " + out)


def redis_instructions(args, work):
    """redis-server's user-space instructions per load, lean and script: the
    difference between runs of N and 2N loads divided by N, so start-up,
    the prefill and the shutdown drop out. Deterministic, blind to the kernel
    (socket reads and writes, epoll), which is most of redis-server's CPU per
    round trip."""
    costs = {}
    n = args.redis_callgrind
    for mode, env in (("lean", {"SESSSTORE_REDIS_LOAD": ""}),
                      ("script", {"SESSSTORE_REDIS_LOAD": "script"})):
        try:
            t1 = redis_callgrind_total(work, n, env)
            t2 = redis_callgrind_total(work, 2 * n, env)
        except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as e:
            log(f"  redis-server callgrind ({mode}): {e}")
            continue
        costs[mode] = (t2 - t1) / n
        log(f"  redis-server callgrind ({mode}): {costs[mode]:.0f} instructions/load")
    return costs


# ---------------------------------------------------------------- micro-benchmarks


def run_microbench(args, redis):
    argv = [MICROBENCH] + (["-q"] if args.quick else [])
    if redis:
        argv += ["-r", f"redis://127.0.0.1:{redis.port}/0?prefix=microbench:"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        log("microbench failed: " + out.stderr.strip()[-300:])
    res = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    if redis:
        n = "20000" if args.quick else "100000"
        rb = subprocess.run(["redis-benchmark", "-p", str(redis.port), "-c", "1", "-t", "get,set",
                             "-n", n, "-d", "226", "--csv"], capture_output=True, text=True,
                            timeout=300)
        for line in rb.stdout.splitlines():
            cells = [c.strip('"') for c in line.split(",")]
            if cells and cells[0] in ("GET", "SET"):
                res.append({"bench": "redis-benchmark", "op": cells[0].lower(),
                            "connections": 1, "ops_per_s": float(cells[1])})
    return res


# ---------------------------------------------------------------- report


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


def tls_paragraph(results, meta):
    """Redis over TLS next to Redis TCP: the ratios, the CPU and the TLS
    handshakes (connections the TLS variant opened: redis-server's
    total_connections_received while it alone ran)."""
    runs = [r for cell in CELLS for r in results.get(("redis-tls", cell), [])
            if r.get("ok") and "redis_connects" in r]
    if not runs:
        return []
    measured = sum(r["redis_connects"] for r in runs)
    warmup = sum(r.get("redis_connects_warmup", 0) for r in runs)
    requests = sum(r["measured_total"] for r in runs)
    per_request = fmt(measured / requests if requests else None, ".6f") + " per request"
    if measured:
        per_request += f" (one per {requests / measured:.0f})"
    ro64, rw64 = ("ro", 64, False), ("rw", 64, False)
    ratio_ro = fmt(paired_ratio(results, "redis-tls", "redis", ro64), ".3f")
    ratio_rw = fmt(paired_ratio(results, "redis-tls", "redis", rw64), ".3f")

    def cpu(key, spec):  # "TCP / TLS", read-only, 64 connections
        return " / ".join(
            fmt(median([r.get(key) for r in results.get((name, ro64), []) if r.get("ok")]), spec)
            for name in ("redis", "redis-tls"))

    proto = " ".join(meta.get("redis_tls") or ("?", "?"))
    return [f"Redis over TLS (mod_sessstore, Redis TLS): the TLS port of the redis-server "
            f"the TCP rows use ({proto}, as the driver's own verified handshake negotiated; "
            f"an EC P-256 server certificate from the run's CA; tls_verify=full, no client "
            f"certificate). Req/s over Redis TCP (median of paired ratios, 64 connections): "
            f"read-only {ratio_ro}, read+write {ratio_rw}. CPU per read-only request at 64 "
            f"connections, TCP / TLS: httpd {cpu('httpd_cpu_us', '.0f')} µs, redis-server "
            f"{cpu('redis_cpu_us', '.1f')} µs. TLS handshakes (redis-server "
            f"total_connections_received while this variant ran): {warmup} in the warm-ups "
            f"(the pools filling), {measured} in the measured phases of its {len(runs)} "
            f"measurements, over {requests} measured requests: {per_request}.", ""]


def cell_name(cell):
    w, c, shared = cell
    how = {False: "", True: " (one shared session)",
           "keys": " (one shared session, a key per connection)",
           "lock": " (one shared session, SessionStoreLock On)"}[shared]
    return f"{'read-only' if w == 'ro' else 'read+write'}", f"{c}{how}"


def report(variants, results, micro, args, meta, php_variants=(), php=None, presults=None):
    out = []
    names = [v.name for v in variants]
    by = {v.name: v for v in variants}
    out.append(f"### HTTP: {meta['httpd']}, event MPM 2 x 64 threads, KeepAlive On; "
               f"{meta['machine']}")
    out.append("")
    out.append(f"Medians of {args.reps} repetitions at 64 connections and "
               f"{args.reps_other} elsewhere, {args.duration} s each after a {args.warmup} s "
               f"warm-up; ratios are medians of side-by-side ratios. CPU: httpd's (+ redis-server's) "
               f"user + system time per request. Redis RT: round trips (server socket reads less "
               f"one per connection opened). Payload: the counter"
               f"{' + %d bytes' % args.payload if args.payload else ' only'}.")
    out.append("")
    out.append("| workload | conns | variant | req/s | p50 ms | p99 ms | × none | × cookie "
               "| CPU µs/req | Redis RT/req | notes |")
    out.append("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for cell in CELLS:
        wl, cn = cell_name(cell)
        for n in names:
            v = by[n]
            if not measured_on(v, cell):
                continue
            if v.unavailable:
                out.append(f"| {wl} | {cn} | {v.label} | – | – | – | – | – | – | – | {v.unavailable} |")
                continue
            rs = [r for r in results.get((n, cell), []) if r.get("ok")]
            fails = [r for r in results.get((n, cell), []) if not r.get("ok")]
            if not rs:
                err = fails[0].get("error") if fails else "not measured"
                out.append(f"| {wl} | {cn} | {v.label} | – | – | – | – | – | – | – | {err} |")
                continue
            rps = median([r["rps"] for r in rs])
            p50 = median([r["p50_us"] for r in rs]) / 1000
            p99 = median([r["p99_us"] for r in rs]) / 1000
            xnone = paired_ratio(results, n, "none", cell) if n != "none" else 1.0
            xcookie = paired_ratio(results, n, "cookie", cell) if n != "cookie" else 1.0
            rt = redis_per_request(results, n, cell) if "redis" in v.needs else None
            cpu = median([r.get("httpd_cpu_us") for r in rs])
            rcpu = median([r.get("redis_cpu_us") for r in rs])
            cpu_s = fmt(cpu, ".0f") + (f" + {rcpu:.0f}" if rcpu is not None else "")
            conn = redis_connects(results, n, cell) if "redis" in v.needs else None
            notes = []
            bad = {k: sum(r.get(k, 0) for r in rs) for k in
                   ("errors", "non200", "anomalies", "resets", "nosession")}
            total = sum(r["measured_total"] for r in rs)
            if cell[2] and cell[0] == "rw" and v.cookie:
                lost = sum(r.get("lost_updates", 0) for r in rs)
                notes.append(f"lost updates {100.0 * lost / max(total, 1):.{1 if lost else 0}f}%")
            if bad["resets"] and v.cookie:
                notes.append(f"sessions lost {bad['resets']}")
            if bad["anomalies"] and not cell[2]:
                notes.append(f"wrong values {bad['anomalies']}")
            if bad["errors"] or bad["non200"]:
                notes.append(f"errors {bad['errors'] + bad['non200']}")
            if bad["nosession"] and v.cookie:
                notes.append("probe saw no session!")
            if "redis-tls" in v.needs:  # shown when 0 too: the pool at work
                notes.append(f"TLS handshakes/req {fmt(conn, '.3f')}")
            elif conn:
                notes.append(f"Redis connects/req {conn:.3f}")
            if fails:
                notes.append(f"{len(fails)} runs failed")
            out.append(f"| {wl} | {cn} | {v.label} | {rps:.0f} | {p50:.2f} | {p99:.2f} | "
                       f"{fmt(xnone, '.2f')} | {fmt(xcookie, '.2f')} | {cpu_s} | "
                       f"{fmt(rt, '.2f') if 'redis' in v.needs else ''} | {'; '.join(notes)} |")
    out.append("")

    out.append("| variant | httpd RSS after the run (MiB, sum of children) | PSS (MiB) "
               "| Redis round trips per load | per save | error.log: crashes, errors |")
    out.append("| --- | ---: | ---: | ---: | ---: | --- |")
    rtt = {}
    for n in names:
        v = by[n]
        if v.unavailable:
            out.append(f"| {v.label} | – | – | – | – | |")
            continue
        per_load = per_save = None
        if "redis" in v.needs:
            per_load = redis_per_request(results, n, ("ro", 64, False))
            rw = redis_per_request(results, n, ("rw", 64, False))
            per_save = rw - per_load if rw is not None and per_load is not None else None
            rtt[n] = (per_load, per_save, redis_breakdown(results, n, ("ro", 64, False)),
                      redis_breakdown(results, n, ("rw", 64, False)))
        rss, pss = meta["memory"].get(n, (0, 0))
        crashes, errors, _ = meta["log"].get(n, (0, 0, None))
        out.append(f"| {v.label} | {rss / 1024:.1f} | {pss / 1024:.1f} | "
                   f"{fmt(per_load, '.2f') if 'redis' in v.needs else ''} | "
                   f"{fmt(per_save, '.2f') if 'redis' in v.needs else ''} | "
                   f"{crashes}, {errors} |")
    out.append("")
    for n, (_, _, bl, bs) in rtt.items():
        out.append(f"Redis commands executed per request (INFO commandstats; a script's own "
                   f"commands included), {n}: read-only "
                   + (", ".join(f"{k} {x:.2f}" for k, x in sorted(bl.items())) or "none")
                   + "; read+write "
                   + (", ".join(f"{k} {x:.2f}" for k, x in sorted(bs.items())) or "none") + ".")
    if rtt:
        out.append("")
    out += tls_paragraph(results, meta)

    if meta.get("callgrind"):
        cg = meta["callgrind"]
        out.append(f"User-space instructions per request (callgrind, httpd -X, one connection, "
                   f"marginal cost over {args.callgrind} requests; deterministic, the kernel's "
                   f"share not counted):")
        out.append("")
        out.append("| variant | read-only | × cookie | read+write | × cookie |")
        out.append("| --- | ---: | ---: | ---: | ---: |")
        for n in names:
            if by[n].unavailable:
                continue
            ro, rw = cg.get((n, "ro")), cg.get((n, "rw"))
            cro, crw = cg.get(("cookie", "ro")), cg.get(("cookie", "rw"))
            out.append(f"| {by[n].label} | {fmt(ro, '.0f')} | "
                       f"{fmt(ro / cro if ro and cro else None, '.2f')} | {fmt(rw, '.0f')} | "
                       f"{fmt(rw / crw if rw and crw else None, '.2f')} |")
        out.append("")

    # Micro-benchmarks.
    shm = {(m["op"], m["procs"], m["threads"]): m for m in micro if m.get("bench") == "shm"}
    cap = next((m for m in micro if m.get("bench") == "capacity" and
                m.get("form", "sealed") == "sealed"), None)
    capc = next((m for m in micro if m.get("bench") == "capacity" and m.get("form") == "clear"),
                None)
    mil = next((m for m in micro if m.get("bench") == "million"), None)
    rlib = {m["op"]: m["ops_per_s"] for m in micro if m.get("bench") == "redis" and "op" in m}
    rbench = {m["op"]: m["ops_per_s"] for m in micro if m.get("bench") == "redis-benchmark"}
    out.append("### Library (bench/microbench, no httpd)")
    out.append("")
    out.append("| shm store | load ops/s | save ops/s |")
    out.append("| --- | ---: | ---: |")
    for procs, threads in [(1, 1), (1, 2), (1, 8), (1, 64), (2, 1), (8, 1), (64, 1), (2, 32)]:
        lo, sa = shm.get(("load", procs, threads)), shm.get(("save", procs, threads))
        what = f"{threads} thread{'s' if threads > 1 else ''}" if procs == 1 else \
            f"{procs} processes x {threads} thread{'s' if threads > 1 else ''}"
        out.append(f"| {what} | {fmt(lo and lo['ops_per_s'], '.0f')} | "
                   f"{fmt(sa and sa['ops_per_s'], '.0f')} |")
    out.append("")
    if cap:
        out.append(f"shm capacity: a {cap['arena_bytes'] // (1 << 20)} MiB arena holds "
                   f"{cap['sessions']} sessions of {cap['payload']} bytes "
                   f"({cap['record']}-byte records) before the first eviction: "
                   f"{cap['arena_bytes_per_session']:.0f} bytes of shared memory per session, "
                   f"{cap['arena_bytes_per_session'] - cap['payload']:.0f} beyond the payload "
                   f"(each sealed record takes a {cap['footprint']}-byte slot); full, under "
                   f"eviction, it holds {cap.get('sessions_full', 'n/a')} "
                   f"({fmt(cap.get('arena_bytes_per_session_full'), '.0f')} bytes each, "
                   f"{cap.get('stripes', 'n/a')} stripes).")
        if capc:
            out.append(f"In clear (SessionStoreSeal Off, {capc['record']}-byte records, "
                       f"{capc['footprint']}-byte slots): full, it holds "
                       f"{capc['sessions_full']} "
                       f"({capc['arena_bytes_per_session_full']:.0f} bytes each, "
                       f"{capc['arena_bytes_per_session_full'] - capc['payload']:.0f} beyond the "
                       f"payload); the seal adds {cap['record'] - capc['record']} bytes per record "
                       f"(nonce 12, tag 16).")
        out.append("")
    if mil:
        out.append(f"shm at SessionStoreShmSize {mil['arena_mib']}M ({mil['stripes']} stripes): "
                   f"formatted in {mil['format_ms']:.0f} ms, checked (a restart) in "
                   f"{mil['check_ms']:.0f} ms; {mil['sessions_before_eviction']} sessions of "
                   f"{mil['payload']} bytes before the first eviction, so 1 M sessions need "
                   f"{mil['mib_per_million']:.0f} MiB; {mil['swept']} dead sessions swept by "
                   f"{mil['sweeping_saves']} saves, one stripe each, {mil['sweep_total_ms']:.0f} ms "
                   f"in all, the longest {mil['sweep_max_ms']:.1f} ms under one stripe's lock"
                   + (f"; a full sweep of {mil['purged']} dead sessions (purge-expired) "
                      f"{mil['purge_ms']:.0f} ms, one stripe at a time, "
                      f"{mil['purge_stripe_ms']:.2f} ms under each lock on average."
                      if "purge_ms" in mil else "."))
        out.append("")
    seal = next((m for m in micro if m.get("bench") == "seal"), None)
    if seal:
        out.append(f"Sealing (AES-256-GCM, HKDF-SHA-256), CPU per request for a "
                   f"{seal['payload']}-byte session: decode + encode {seal['sealed_us']:.2f} µs "
                   f"sealed, {seal['clear_us']:.2f} µs in clear, the seal key "
                   f"{seal['key_us']:.2f} µs: {seal['seal_us_per_req']:.2f} µs per request "
                   f"added by sealing.")
        out.append("")
    if rlib:
        out.append("| Redis, one connection | library ops/s | redis-benchmark -c 1 ops/s | ratio |")
        out.append("| --- | ---: | ---: | ---: |")
        for lop, bop in (("load", "get"), ("save", "set")):
            a, b = rlib.get(lop), rbench.get(bop)
            out.append(f"| {lop} vs {bop.upper()} | {fmt(a, '.0f')} | {fmt(b, '.0f')} | "
                       f"{fmt(a / b if a and b else None, '.2f')} |")
    else:
        why = next((m.get("why") for m in micro if m.get("bench") == "redis"), "not run")
        out.append(f"Redis library micro-benchmark: n/a ({why}); redis-benchmark -c 1: "
                   + (", ".join(f"{k.upper()} {x:.0f}/s" for k, x in sorted(rbench.items()))
                      or "not run") + ".")
    out.append("")

    # Targets.
    key = ("rw", 64, False)
    shm_cookie = paired_ratio(results, "shm", "cookie", key)
    redis_cookie = paired_ratio(results, "redis", "cookie", key)
    redis_dbd = paired_ratio(results, "redis", "dbd", key)
    redis_floor = paired_ratio(results, "redis", "floor", key)
    tls_tcp = paired_ratio(results, "redis-tls", "redis", key)
    cluster_redis = paired_ratio(results, "redis-cluster", "redis", key)
    sentinel_redis = paired_ratio(results, "redis-sentinel", "redis", key)
    sealed_clear = paired_ratio(results, "shm", "shm-clear", key)
    seal_us = seal["seal_us_per_req"] if seal else None
    # httpd's CPU per read+write request, sealed minus clear, paired per repetition.
    cpu_by_rep = {n: {r["rep"]: r.get("httpd_cpu_us") for r in results.get((n, key), [])
                      if r.get("ok")} for n in ("shm", "shm-clear")}
    cpu_diffs = [cpu_by_rep["shm"][k] - cpu_by_rep["shm-clear"][k] for k in cpu_by_rep["shm"]
                 if k in cpu_by_rep["shm-clear"] and cpu_by_rep["shm"][k] is not None
                 and cpu_by_rep["shm-clear"][k] is not None]
    seal_httpd_us = median(cpu_diffs) if cpu_diffs else None
    ro64 = ("ro", 64, False)

    def redis_cpu(name):
        return median([r.get("redis_cpu_us") for r in results.get((name, ro64), []) if r.get("ok")])

    lean_us, script_us = redis_cpu("redis"), redis_cpu("redis-script")
    # The same ratio paired within each repetition (one noisy minute hits both).
    by_rep = {n: {r["rep"]: r.get("redis_cpu_us") for r in results.get((n, ro64), [])
                  if r.get("ok")} for n in ("redis", "redis-script")}
    lean_script = median([by_rep["redis"][k] / by_rep["redis-script"][k] for k in by_rep["redis"]
                          if by_rep["redis"][k] and by_rep["redis-script"].get(k)])
    ri = meta.get("redis_instructions") or {}
    ri_ratio = ri["lean"] / ri["script"] if ri.get("lean") and ri.get("script") else None
    per_load, per_save = (rtt.get("redis") or (None, None, None, None))[:2]
    # What a session takes in a full arena (every stripe full, evicting).
    overhead = (cap.get("arena_bytes_per_session_full", cap["arena_bytes_per_session"])
                - cap["payload"]) if cap else None
    overhead_clear = (capc["arena_bytes_per_session_full"] - capc["payload"]) if capc else None

    def ops(op, procs, threads):
        m = shm.get((op, procs, threads))
        return m["ops_per_s"] if m else None

    def div(a, b):
        return a / b if a is not None and b else None

    scale = {op: div(ops(op, 1, 64), ops(op, 1, 8)) for op in ("load", "save")}
    # Processes over 2 processes: the lower of load's and save's ratio.
    procs = {n: min([r for r in (div(ops(op, n, 1), ops(op, 2, 1)) for op in ("load", "save"))
                     if r is not None], default=None) for n in (8, 64)}
    mib_1m = mil["mib_per_million"] if mil else None
    lib_ratio = {lop: div(rlib.get(lop), rbench.get(bop)) for lop, bop in
                 (("load", "get"), ("save", "set"))}

    def verdict(x, ok):
        return "n/a" if x is None else ("met" if ok(x) else "missed")

    def lost_frac(name, cell):
        rs = [r for r in results.get((name, cell), []) if r.get("ok")]
        total = sum(r["measured_total"] for r in rs)
        return sum(r.get("lost_updates", 0) for r in rs) / total if total else None

    # Disjoint keys of one session, 64 connections: the worse of shm and Redis.
    lost_keys = [x for x in (lost_frac(n, ("rw", 64, "keys")) for n in ("shm", "redis"))
                 if x is not None]
    merge_lost = max(lost_keys) if lost_keys else None
    locked_rps = {n: median([r["rps"] for r in results.get((n, ("rw", 64, "lock")), [])
                             if r.get("ok")]) for n in ("shm", "redis")}

    targets = [
        ("shm ≥ 0.97 × cookie req/s (read+write, 64 conns)", fmt(shm_cookie, ".3f"),
         verdict(shm_cookie, lambda x: x >= 0.97)),
        ("Redis ≥ 0.90 × cookie", fmt(redis_cookie, ".3f"), verdict(redis_cookie, lambda x: x >= 0.9)),
        ("Redis ≥ 3 × dbd/SQLite", fmt(redis_dbd, ".2f"), verdict(redis_dbd, lambda x: x >= 3)),
        ("Redis ≥ 0.95 × the floor (plain hiredis, same round trips)", fmt(redis_floor, ".3f"),
         verdict(redis_floor, lambda x: x >= 0.95)),
        ("Redis TLS ≥ 0.90 × Redis TCP (pooled connections)", fmt(tls_tcp, ".3f"),
         verdict(tls_tcp, lambda x: x >= 0.9)),
        ("Redis Cluster ≥ 0.95 × Redis TCP", fmt(cluster_redis, ".3f"),
         verdict(cluster_redis, lambda x: x >= 0.95)),
        ("Redis Sentinel ≥ 0.95 × Redis TCP", fmt(sentinel_redis, ".3f"),
         verdict(sentinel_redis, lambda x: x >= 0.95)),
        ("redis-server CPU per load ≤ 1/3 of the script load's", fmt(lean_script, ".2f"),
         verdict(lean_script, lambda x: x <= 1 / 3)),
        ("redis-server instructions per load ≤ 1/3 of the script load's", fmt(ri_ratio, ".2f"),
         verdict(ri_ratio, lambda x: x <= 1 / 3)),
        ("exactly 1 Redis round trip per load", fmt(per_load, ".2f"),
         verdict(per_load, lambda x: abs(x - 1) < 0.01)),
        ("≤ 1 Redis round trip per save", fmt(per_save, ".2f"), verdict(per_save, lambda x: x <= 1.01)),
        ("library Redis load ≥ 0.9 × redis-benchmark GET (1 conn)", fmt(lib_ratio["load"], ".2f"),
         verdict(lib_ratio["load"], lambda x: x >= 0.9)),
        ("library Redis save ≥ 0.9 × redis-benchmark SET (1 conn)", fmt(lib_ratio["save"], ".2f"),
         verdict(lib_ratio["save"], lambda x: x >= 0.9)),
        ("disjoint-key updates lost, one session, 64 connections (shm, Redis) = 0",
         fmt(merge_lost, ".4f"), verdict(merge_lost, lambda x: x == 0)),
        ("shm ≤ 64 bytes per session beyond a 200-byte payload, sealed (the default)",
         fmt(overhead, ".0f"), verdict(overhead, lambda x: x <= 64)),
        ("shm ≤ 64 bytes per session beyond a 200-byte payload, in clear (SessionStoreSeal Off)",
         fmt(overhead_clear, ".0f"), verdict(overhead_clear, lambda x: x <= 64)),
        ("shm load ops/s, 64 threads ≥ 0.8 × 8 threads", fmt(scale["load"], ".2f"),
         verdict(scale["load"], lambda x: x >= 0.8)),
        ("shm save ops/s, 64 threads ≥ 0.8 × 8 threads", fmt(scale["save"], ".2f"),
         verdict(scale["save"], lambda x: x >= 0.8)),
        ("shm ops/s, 8 processes ≥ 0.8 × 2 processes (lower of load, save)",
         fmt(procs[8], ".2f"), verdict(procs[8], lambda x: x >= 0.8)),
        ("shm ops/s, 64 processes ≥ 0.8 × 2 processes (lower of load, save)",
         fmt(procs[64], ".2f"), verdict(procs[64], lambda x: x >= 0.8)),
        ("1 M sessions of 200 bytes fit in SessionStoreShmSize 300M (MiB they need)",
         fmt(mib_1m, ".0f"), verdict(mib_1m, lambda x: x <= 300)),
    ]
    def user_pct(name):
        f = median([r.get("redis_user_frac") for r in results.get((name, ro64), [])
                    if r.get("ok")])
        return fmt(f * 100 if f is not None else None, ".0f")

    out.append(f"redis-server CPU per read-only request (64 connections, median): lean load "
               f"{fmt(lean_us, '.1f')} µs ({user_pct('redis')} % in user space), script load "
               f"{fmt(script_us, '.1f')} µs ({user_pct('redis-script')} %), floor "
               f"{fmt(redis_cpu('floor'), '.1f')} µs ({user_pct('floor')} %); lean/script "
               f"{fmt(lean_script, '.2f')} (median of paired ratios).")
    out.append("")
    if ri:
        out.append(f"redis-server user-space instructions per load (callgrind, one connection "
                   f"through the library, marginal over {args.redis_callgrind} loads): lean "
                   f"{fmt(ri.get('lean'), '.0f')}, script {fmt(ri.get('script'), '.0f')}; "
                   f"lean/script {fmt(ri_ratio, '.2f')}.")
        out.append("")
    php_ratio = None
    if php:
        lines, php_ratio = php_report(php_variants, php)
        out += lines + [""]
        targets.append(("PHP bridge ≥ 0.90 × phpredis req/s (read+write, %d conns)" % PHP_CONNS,
                        fmt(php_ratio, ".3f"), verdict(php_ratio, lambda x: x >= 0.9)))
    prefork_ratio = None
    if presults:
        lines, prefork_ratio = prefork_report(presults)
        out += lines
        targets.append(("shm ≥ 0.95 × cookie req/s under prefork (64 and 150 children, the lower)",
                        fmt(prefork_ratio, ".3f"), verdict(prefork_ratio, lambda x: x >= 0.95)))
    out.append("### Targets (reported, not asserted)")
    out.append("")
    out.append("| target | measured | |")
    out.append("| --- | ---: | --- |")
    for t, m, ok in targets:
        out.append(f"| {t} | {m} | {ok} |")
    out.append("")
    out.append(f"summary: shm/cookie={fmt(shm_cookie, '.3f')} redis/cookie={fmt(redis_cookie, '.3f')} "
               f"redis/dbd={fmt(redis_dbd, '.2f')} redis_rtt_per_load={fmt(per_load, '.2f')} "
               f"redis_rtt_per_save={fmt(per_save, '.2f')} redis/floor={fmt(redis_floor, '.3f')} "
               f"redis_server_us_per_load={fmt(lean_us, '.1f')} tls/tcp={fmt(tls_tcp, '.3f')} "
               f"php_bridge/phpredis={fmt(php_ratio, '.3f')} seal_us_per_req={fmt(seal_us, '.2f')} "
               f"seal_httpd_us_per_req={fmt(seal_httpd_us, '.1f')} "
               f"shm_sealed/clear={fmt(sealed_clear, '.3f')} "
               f"merge_lost_disjoint={fmt(merge_lost, '.4f')} "
               f"locked_rps_shm={fmt(locked_rps['shm'], '.0f')} "
               f"locked_rps_redis={fmt(locked_rps['redis'], '.0f')} "
               f"shm_procs8/procs2={fmt(procs[8], '.2f')} shm_procs64/procs2={fmt(procs[64], '.2f')} "
               f"shm_overhead_bytes={fmt(overhead, '.0f')} "
               f"shm_overhead_clear_bytes={fmt(overhead_clear, '.0f')} "
               f"shm_1m_mib={fmt(mib_1m, '.0f')} "
               f"prefork_shm/cookie={fmt(prefork_ratio, '.3f')} "
               f"cluster/redis={fmt(cluster_redis, '.3f')} "
               f"sentinel/redis={fmt(sentinel_redis, '.3f')}")
    return "\n".join(out)


def machine_description():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB, Linux {os.uname().release}, " \
           f"load average {load:.2f} at the start"


def httpd_version():
    out = subprocess.run([HTTPD, "-v"], capture_output=True, text=True).stdout
    return out.splitlines()[0].split(":", 1)[1].strip() if out else "httpd"


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description="mod_sessstore benchmark (see docs/performance.md)")
    ap.add_argument("--quick", action="store_true", help="about 2 minutes: fewer, shorter runs")
    ap.add_argument("--pgsql", action="store_true", help="add mod_session_dbd with PostgreSQL")
    ap.add_argument("--no-cluster", action="store_true",
                    help="leave out the Redis Cluster variant (three redis-servers)")
    ap.add_argument("--no-sentinel", action="store_true",
                    help="leave out the Redis Sentinel variant (two redis-servers, three "
                         "sentinels)")
    ap.add_argument("--no-tls", action="store_true",
                    help="leave out the Redis-over-TLS variant (redis-tls), which otherwise "
                         "fails the run when it cannot start (no openssl, a redis-server or "
                         "module without TLS)")
    ap.add_argument("--no-php", action="store_true",
                    help="leave out the PHP rows (the bridge and phpredis through php-cgi), "
                         "which otherwise fail the run when php-cgi or php-redis is missing")
    ap.add_argument("--variants", help="comma-separated subset of: " +
                    ",".join(v.name for v in VARIANTS) + ",php (the PHP rows),prefork (the prefork rows)")
    ap.add_argument("--duration", type=float, help="seconds per measurement")
    ap.add_argument("--warmup", type=float, help="seconds of warm-up per measurement")
    ap.add_argument("--reps", type=int, help="repetitions at 64 connections")
    ap.add_argument("--reps-other", type=int, help="repetitions of the other cells")
    ap.add_argument("--payload", type=int, default=0, help="extra bytes stored in each session")
    ap.add_argument("--baseline-module", metavar="SO",
                    help="add variant shm-baseline: the shm variant with another "
                         "mod_sessstore.so (A/B of a change, side by side)")
    ap.add_argument("--cells", help="comma-separated subset of cells, e.g. rw64,ro64,rw64s "
                    "(s: one shared session; k: the same, a key per connection; l: the same "
                    "with SessionStoreLock On)")
    ap.add_argument("--no-micro", action="store_true", help="skip the library micro-benchmarks")
    ap.add_argument("--no-prefork", action="store_true",
                    help="leave out the prefork rows (shm and cookie, 64 and 150 children)")
    ap.add_argument("--callgrind", type=int, metavar="N",
                    help="instructions per request under callgrind, N requests per variant and "
                         "workload (default: 600 in the full run; 0 = off, as with --quick)")
    ap.add_argument("--redis-callgrind", type=int, metavar="N",
                    help="redis-server's instructions per load, lean and script, under "
                         "callgrind with N and 2N loads (default 2000, --quick 500; 0 = off)")
    ap.add_argument("--json", help="also write every raw result to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = ap.parse_args()
    quick = dict(duration=0.6, warmup=0.2, reps=3, reps_other=1, callgrind=0, redis_callgrind=500)
    full = dict(duration=1.5, warmup=0.4, reps=5, reps_other=3, callgrind=600,
                redis_callgrind=2000)
    for k, x in (quick if args.quick else full).items():
        if getattr(args, k) is None:
            setattr(args, k, x)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    for f in (MODULE, PROBE, FLOOR, LOADGEN, MICROBENCH):
        if not os.path.exists(f):
            sys.exit(f"bench: {f} is missing: run bench/run, which builds it")

    if args.cells:
        global CELLS
        wanted = args.cells.split(",")
        CELLS = [c for c in CELLS if cell_id(c) in wanted]
    variants = [v for v in VARIANTS if (not v.optional or (v.name == "pgsql" and args.pgsql))
                and not (args.no_tls and "redis-tls" in v.needs)
                and not (args.no_cluster and "redis-cluster" in v.needs)
                and not (args.no_sentinel and "redis-sentinel" in v.needs)]
    if args.baseline_module:
        base = next(v for v in VARIANTS if v.name == "shm")
        variants.insert(variants.index(base) + 1, Variant(
            "shm-baseline", "mod_sessstore, shm (baseline .so)", modules=base.modules,
            sessstore=True, server=base.server, location=base.location, cookie=base.cookie,
            module=os.path.abspath(args.baseline_module)))
    if args.variants:
        wanted = args.variants.split(",")
        # The Redis rows come together (their ratios are to Redis TCP).
        redis_rows = ("redis", "redis-tls", "redis-script", "floor")
        variants = [v for v in variants if v.name in wanted or v.name in ("none", "cookie")
                    or v.name == "shm-baseline" or (v.name == "shm-clear" and "shm" in wanted)
                    or (v.name in redis_rows
                        and any(w in wanted for w in ("redis", "redis-tls", "redis-cluster",
                                                      "redis-sentinel")))]
    php_variants = [] if args.no_php or (args.variants and "php" not in
                                         args.variants.split(",")) else list(PHP_VARIANTS)
    if php_variants and php_missing():
        sys.exit(f"bench: FAILED: the PHP rows cannot run: {php_missing()}; "
                 f"--no-php leaves them out")
    work = tempfile.mkdtemp(prefix="sessstore-bench.")
    os.chmod(work, 0o755)
    meta = {"machine": machine_description(), "httpd": httpd_version(), "memory": {}, "log": {}}
    t_start = time.time()
    redis = None
    presults = None
    php = None
    pg = None
    try:
        ctx = {"work": work, "redis_port": 0, "redis_sock": "", "redis_tls_port": 0,
               "tls_ca": "", "pg_port": 0, "cluster_seeds": "",
               "sentinels": "", "sentinel_master": RedisSentinel.MASTER}
        if any("redis-cluster" in v.needs for v in variants):
            try:
                ctx["cluster_seeds"] = RedisCluster(work).seeds
                log(f"bench: Redis Cluster {ctx['cluster_seeds']}")
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                raise SystemExit(f"bench: FAILED: a Redis Cluster cannot be made: {e}; "
                                 f"--no-cluster leaves the Redis Cluster variant out") from None
        if any("redis-sentinel" in v.needs for v in variants):
            try:
                ctx["sentinels"] = RedisSentinel(work).sentinels
                log(f"bench: Redis Sentinel {ctx['sentinels']}")
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                raise SystemExit(f"bench: FAILED: a Redis Sentinel setup cannot be made: {e}; "
                                 f"--no-sentinel leaves the Redis Sentinel variant out") from None
        tls = any("redis-tls" in v.needs for v in variants)
        if php_variants or any("redis" in v.needs for v in variants):
            if not shutil.which("redis-server"):
                for v in variants:
                    if "redis" in v.needs:
                        v.unavailable = "redis-server not installed"
            elif tls and not shutil.which("openssl"):
                for v in variants:
                    if "redis-tls" in v.needs:
                        v.unavailable = "openssl not installed (it makes the certificates)"
                tls = False
            if shutil.which("redis-server"):
                try:
                    redis = Redis(work, tls=tls)
                except RuntimeError as e:
                    if not tls:
                        raise
                    raise SystemExit(f"bench: FAILED: redis-server with a TLS port: {e}; "
                                     f"--no-tls leaves the Redis-over-TLS variant out") from None
                ctx.update(redis_port=redis.port, redis_sock=redis.sock)
                if tls:
                    ctx.update(redis_tls_port=redis.tls_port, tls_ca=redis.tls["ca"])
                    meta["redis_tls"] = redis.tls_probe
                    log(f"bench: redis-server TCP port {redis.port}, TLS port {redis.tls_port} "
                        f"({' '.join(redis.tls_probe)})")
        for v in variants:
            if "sqlite" in v.needs and not (shutil.which("sqlite3") and os.path.exists(
                    os.path.join(APU_DBD_DIR, "apr_dbd_sqlite3-1.so"))):
                v.unavailable = "sqlite3 or libaprutil1-dbd-sqlite3 missing"
            if "pgsql" in v.needs:
                try:
                    pg = start_postgres(work)
                    ctx["pg_port"] = pg.port
                except Exception as e:  # optional variant: report, carry on
                    v.unavailable = f"PostgreSQL: {e}"
        log(f"bench: work directory {work}")
        for v in variants:
            if not v.unavailable:
                setup_variant(v, work, ctx)
            log(f"  {v.name}: " + (v.unavailable or f"httpd on port {v.port}"))
        for v in variants:
            if v.required and v.unavailable:
                raise SystemExit(f"bench: FAILED: variant {v.name} ({v.label}) cannot run: "
                                 f"{v.unavailable}; --no-tls leaves it out")

        for v in php_variants:
            setup_php_variant(v, work, ctx)
            log(f"  {v.name}: httpd on port {v.port}")

        results = measure_all(variants, args, redis)
        php = measure_php(php_variants, args) if php_variants else None
        for v in php_variants:
            stop(v.proc)
        for v in variants:
            if v.proc:
                kids = children_of(v.proc.pid)
                mems = [memory_of(k) for k in kids]
                meta["memory"][v.name] = (sum(m[0] for m in mems), sum(m[1] for m in mems))
        for v in variants:
            if v.proc:
                stop(v.proc)
                meta["log"][v.name] = scan_error_log(v)
                if meta["log"][v.name][2]:
                    log(f"  {v.name} error.log: {meta['log'][v.name][2][:300]}")
        # The prefork rows once the event variants are stopped: hundreds of
        # children are not kept up all along.
        pvariants = [] if args.no_prefork or (args.variants and "prefork" not in
                                              args.variants.split(",")) else prefork_variants()
        for v in pvariants:
            setup_variant(v, work, ctx)
            log(f"  {v.name}: " + (v.unavailable or f"httpd on port {v.port}"))
        presults = measure_prefork(pvariants, args) if pvariants else None
        for v in pvariants:
            if v.proc:
                stop(v.proc)
                meta["log"][v.name] = scan_error_log(v)
        if args.callgrind and shutil.which("valgrind"):
            meta["callgrind"] = callgrind_costs(variants, args, work)
        micro = [] if args.no_micro else run_microbench(args, redis)
        if args.redis_callgrind and redis and shutil.which("valgrind"):
            meta["redis_instructions"] = redis_instructions(args, work)
    finally:
        stop_all()
        if pg:
            pg.stop()
        if args.keep:
            log(f"bench: logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            meta_json = dict(meta, callgrind={f"{k[0]}/{k[1]}": x for k, x in
                                              meta.get("callgrind", {}).items()})
            json.dump({"meta": meta_json, "micro": micro, "php": php,
                       "prefork": [{"variant": k[0], "cell": list(k[1]), "runs": r}
                                   for k, r in (presults or {}).items()],
                       "results": [{"variant": k[0], "cell": list(k[1]), "runs": r}
                                   for k, r in results.items()]}, f, indent=1)
    log(f"bench: done in {time.time() - t_start:.0f} s")
    print(report(variants, results, micro, args, meta, php_variants, php, presults))


class RedisCluster:
    """Three cluster-enabled redis-servers on loopback made into one cluster
    of three masters by redis-cli --cluster create (no replicas: the bench
    measures the routing, not the failover)."""

    def __init__(self, work):
        self.procs, self.ports = [], []
        for i in range(3):
            port, bus = free_port(), free_port()
            d = os.path.join(work, f"cluster{i}")
            os.makedirs(d, exist_ok=True)
            p = spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                       "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                       "--cluster-port", str(bus), "--save", "", "--appendonly", "no",
                       "--daemonize", "no", "--dir", d,
                       "--logfile", os.path.join(d, "redis.log")],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(port, p, "redis-server (cluster)")
            self.procs.append(p)
            self.ports.append(port)
        r = subprocess.run(["redis-cli", "--cluster", "create"]
                           + [f"127.0.0.1:{p}" for p in self.ports]
                           + ["--cluster-replicas", "0", "--cluster-yes"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create: {r.stdout[-300:]} {r.stderr[-300:]}")
        end = time.time() + 30
        while not all(self.ok(p) for p in self.ports):
            if time.time() > end:
                raise RuntimeError("the cluster did not reach cluster_state:ok")
            time.sleep(0.2)
        self.seeds = ",".join(f"127.0.0.1:{p}" for p in self.ports)

    @staticmethod
    def ok(port):
        r = subprocess.run(["redis-cli", "-p", str(port), "cluster", "info"],
                           capture_output=True, text=True)
        return "cluster_state:ok" in r.stdout


class RedisSentinel:
    """A master, one replica of it and three sentinels (quorum 2) on
    loopback: the sentinels run redis-sentinel, else redis-server
    --sentinel. Nothing fails over during the bench: it measures the client
    side of Sentinel (the master asked once per process), not a failover."""

    MASTER = "benchmaster"

    def __init__(self, work):
        ports = []
        for i, role in enumerate(("master", "replica")):
            port = free_port()
            d = os.path.join(work, f"sentinel-{role}")
            os.makedirs(d, exist_ok=True)
            argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", d,
                    "--logfile", os.path.join(d, "redis.log")]
            if i:
                argv += ["--replicaof", "127.0.0.1", str(ports[0])]
            p = spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(port, p, f"redis-server ({role})")
            ports.append(port)
        end = time.time() + 30
        while "master_link_status:up" not in subprocess.run(
                ["redis-cli", "-p", str(ports[1]), "info", "replication"],
                capture_output=True, text=True).stdout:
            if time.time() > end:
                raise RuntimeError("the replica did not reach master_link_status:up")
            time.sleep(0.2)
        sentinel = (["redis-sentinel"] if shutil.which("redis-sentinel")
                    else ["redis-server"])
        self.ports = []
        for i in range(3):
            port = free_port()
            d = os.path.join(work, f"sentinel{i}")
            os.makedirs(d, exist_ok=True)
            conf = os.path.join(d, "sentinel.conf")
            with open(conf, "w") as f:
                f.write(f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {d}\n"
                        f"logfile {os.path.join(d, 'sentinel.log')}\n"
                        f"sentinel monitor {self.MASTER} 127.0.0.1 {ports[0]} 2\n"
                        f"sentinel down-after-milliseconds {self.MASTER} 5000\n")
            argv = sentinel + [conf] + ([] if sentinel == ["redis-sentinel"] else ["--sentinel"])
            p = spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(port, p, "redis-sentinel")
            self.ports.append(port)
        for port in self.ports:
            r = subprocess.run(["redis-cli", "-p", str(port), "sentinel",
                                "get-master-addr-by-name", self.MASTER],
                               capture_output=True, text=True, timeout=10)
            if str(ports[0]) not in r.stdout:
                raise RuntimeError(f"sentinel on port {port} does not name the master: "
                                   f"{r.stdout.strip()} {r.stderr.strip()}")
        self.sentinels = ",".join(f"127.0.0.1:{p}" for p in self.ports)


class Postgres:
    """A throw-away PostgreSQL cluster on a free loopback port (--pgsql)."""

    def __init__(self, work):
        bins = sorted(d for d in os.listdir("/usr/lib/postgresql")) if os.path.isdir(
            "/usr/lib/postgresql") else []
        if not bins:
            raise RuntimeError("postgresql not installed")
        self.bin = os.path.join("/usr/lib/postgresql", bins[-1], "bin")
        self.dir = os.path.join(work, "pg")
        self.port = free_port()
        os.makedirs(self.dir)
        self.user = "postgres" if os.getuid() == 0 else None
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run([os.path.join(self.bin, "initdb"), "-D", self.dir + "/data", "-A", "trust",
                   "-U", "bench"])
        self.proc = spawn(self._argv([os.path.join(self.bin, "postgres"), "-D",
                                      self.dir + "/data", "-p", str(self.port), "-k", self.dir,
                                      "-c", "listen_addresses=127.0.0.1"]),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "postgres")
        time.sleep(0.5)
        self._run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "bench", "-d",
                   "postgres", "-c", "CREATE DATABASE bench"])
        self._run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "bench", "-d", "bench",
                   "-c", "CREATE TABLE session (key TEXT PRIMARY KEY, value TEXT, expiry BIGINT)"])

    def _argv(self, argv):
        return ["runuser", "-u", self.user, "--"] + argv if self.user else argv

    def _run(self, argv):
        subprocess.run(self._argv(argv), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def stop(self):
        stop(self.proc, signal.SIGINT)


def start_postgres(work):
    return Postgres(work)


if __name__ == "__main__":
    main()
