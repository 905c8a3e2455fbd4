<?php
/*
 * sessstore_handler.php - PHP sessions ($_SESSION) kept by mod_sessstore,
 * through mod_session's plain CGI interface. PHP 7.4 or later, no extension.
 *
 * Enable it without touching the application, for php-cgi behind httpd with
 * "SessionEnv On" and "SessionHeader X-Replace-Session":
 *
 *     auto_prepend_file = /usr/share/mod_sessstore/php/sessstore_handler.php
 *
 * in php.ini (or "php-cgi -d auto_prepend_file=..."). docs/php.md explains
 * the set-up, the rules and the limits. In short:
 *
 * - Read: mod_session hands the session to the script in HTTP_SESSION
 *   (key=value pairs, URL-encoded, '&'-separated). PHP's serialized session
 *   is kept under the keys "php", "php.1", "php.2", ... as base64url (which
 *   mod_session's encoding leaves as it is); "php" starts with the number of
 *   chunks ("2.") so that a missing chunk is noticed, never mistaken for data.
 *   Several chunks carry a tag of their write ("2.<tag>.<data>", then
 *   "<tag>.<data>"), new at every write: the store merges parallel writes
 *   key by key (the later write wins per key), and a session written in
 *   several chunks must change all of them at once, so the later write wins
 *   for PHP's whole session, and a chunk of another write is noticed.
 *   The session ID PHP reports (session_id()) is kept under "php.sid".
 *   Other keys (mod_auth_form's <AuthName>-user and -pw, an application's
 *   own) are left alone.
 * - Write: X-Replace-Session response header lines; mod_session merges them
 *   into the session and an empty value removes a key. mod_cgi(d) refuses a
 *   header line over about 8 KB (a 500), so a large session goes out as
 *   several lines of whole "&key=value&" pairs; httpd joins repeated lines
 *   with ", ", which then stands between two '&' as a pair of its own with no
 *   '=' and is ignored by mod_session.
 * - Nothing is sent to the browser: no PHPSESSID cookie (session.use_cookies
 *   = 0); the store's own cookie is the session.
 * - Output is buffered (ob_start) until the session is written at the very
 *   end of the script, so that session changes made after output started
 *   still reach the store. Cost: the whole response stays in PHP's memory
 *   until the script ends.
 * - A session over SessionStoreMaxSessionSize (16K unless the environment
 *   variable SESSSTORE_MAX_SESSION_SIZE or the php.ini entry
 *   sessstore.max_session_size says otherwise) would be refused by the module
 *   with a 500; the bridge refuses it first with a PHP warning and keeps the
 *   previous version of the session.
 */

final class SessStoreSessionHandler implements SessionHandlerInterface, SessionUpdateTimestampHandlerInterface
{
    const KEY = 'php';            // the first chunk; then php.1, php.2, ...
    const SID_KEY = 'php.sid';    // the ID session_id() reports
    const HEADER = 'X-Replace-Session';
    const CHUNK = 6000;           // base64url characters per key (and header line)
    const DEFAULT_MAX = 16384;    // SessionStoreMaxSessionSize's default
    const RECORD_HEADER = 54;     // the module's record overhead (sealed), counted in that limit
    const MARGIN = 64;            // room for what mod_session may add (an expiry entry)

    /** @var array<string,string> the session as loaded (mod_session's entries) */
    private $entries = array();
    /** @var string the raw HTTP_SESSION */
    private $raw = '';
    /** @var string PHP's serialized session as it stands now */
    private $data = '';
    /** @var string|null the ID stored with it */
    private $sid = null;
    /** @var array<string,string> changes to send: key => value ('' removes the key) */
    private $pending = array();
    /** @var string|null a problem found while loading, reported once a session starts */
    private $loadProblem = null;

    public function __construct($httpSession)
    {
        $this->raw = (string) $httpSession;
        $this->entries = self::decodeEntries($this->raw);
        $this->load();
    }

    /** mod_session's form encoding: '&'-separated key=value pairs, URL-encoded. */
    public static function decodeEntries($s)
    {
        $entries = array();
        foreach (explode('&', $s) as $pair) {
            $eq = strpos($pair, '=');
            if ($eq === false || $eq === 0) {
                continue; // no key, or no '=': mod_session keeps nothing either
            }
            $entries[urldecode(substr($pair, 0, $eq))] = urldecode(substr($pair, $eq + 1));
        }
        return $entries;
    }

    private function load()
    {
        if (isset($this->entries[self::SID_KEY]) && preg_match('/^[A-Za-z0-9,-]{1,128}$/', $this->entries[self::SID_KEY])) {
            $this->sid = $this->entries[self::SID_KEY];
        }
        if (!isset($this->entries[self::KEY])) {
            return;
        }
        $first = $this->entries[self::KEY];
        $dot = strpos($first, '.');
        $n = $dot === false ? 0 : (int) substr($first, 0, $dot);
        if ($n < 1) {
            $this->loadProblem = 'the session key "' . self::KEY . '" is not the bridge\'s';
            return;
        }
        $b64 = substr($first, $dot + 1);
        $tag = '';
        if ($n > 1 && preg_match('/^([0-9a-f]{8})\./', $b64, $m)) {
            $tag = $m[1] . '.';
            $b64 = substr($b64, strlen($tag));
        }
        for ($i = 1; $i < $n; $i++) {
            if (!isset($this->entries[self::KEY . '.' . $i])) {
                $this->loadProblem = "chunk $i of $n is missing";
                return;
            }
            $chunk = $this->entries[self::KEY . '.' . $i];
            if ($tag !== '' && strncmp($chunk, $tag, strlen($tag)) !== 0) {
                $this->loadProblem = "chunk $i of $n belongs to another write";
                return;
            }
            $b64 .= substr($chunk, strlen($tag));
        }
        // Only base64url characters count: whatever else httpd or mod_session
        // may have put around a value (", " between joined header lines) goes.
        $b64 = preg_replace('/[^A-Za-z0-9_-]/', '', $b64);
        $data = base64_decode(strtr($b64, '-_', '+/'), true);
        if ($data === false) {
            $this->loadProblem = 'the stored data is not base64url';
            return;
        }
        $this->data = $data;
    }

    /** The ID stored with the session, if any: the session_id() PHP reports. */
    public function storedId()
    {
        return $this->sid;
    }

    // ---- SessionHandlerInterface ----

    #[\ReturnTypeWillChange]
    public function open($path, $name)
    {
        if ($this->loadProblem !== null) {
            trigger_error('sessstore: the stored PHP session cannot be read (' . $this->loadProblem
                . '); starting with an empty $_SESSION', E_USER_WARNING);
            $this->loadProblem = null;
        }
        return true;
    }

    #[\ReturnTypeWillChange]
    public function close()
    {
        return true;
    }

    #[\ReturnTypeWillChange]
    public function read($id)
    {
        return $this->data;
    }

    #[\ReturnTypeWillChange]
    public function write($id, $data)
    {
        return $this->save((string) $id, (string) $data);
    }

    #[\ReturnTypeWillChange]
    public function destroy($id)
    {
        // Every key of the bridge goes; the store ends the session when
        // nothing else (a mod_auth_form login, an application key) is left.
        foreach ($this->bridgeKeys() as $k) {
            $this->pending[$k] = '';
        }
        $this->data = '';
        $this->sid = null;
        if (headers_sent($file, $line)) {
            trigger_error("sessstore: session not destroyed: output started at $file:$line before "
                . 'session_destroy() (the bridge\'s output buffer was flushed or removed)', E_USER_WARNING);
            return false;
        }
        $this->sendHeaders();
        return true;
    }

    #[\ReturnTypeWillChange]
    public function gc($max_lifetime)
    {
        return 0; // the store expires sessions itself
    }

    // ---- SessionUpdateTimestampHandlerInterface ----

    #[\ReturnTypeWillChange]
    public function validateId($id)
    {
        return true; // the session is the one the store gave this request
    }

    #[\ReturnTypeWillChange]
    public function updateTimestamp($id, $data)
    {
        // Unchanged data (session.lazy_write): nothing to store, unless the
        // ID changed (session_regenerate_id); the store touches the session.
        if ((string) $id === $this->sid || ($this->sid === null && $data === '')) {
            return true;
        }
        return $this->save((string) $id, (string) $data);
    }

    // ---- the write ----

    /** Keys of the bridge in the loaded session and in the pending changes. */
    private function bridgeKeys()
    {
        $keys = array();
        foreach (array_merge(array_keys($this->entries), array_keys($this->pending)) as $k) {
            $k = (string) $k;
            if ($k === self::KEY || $k === self::SID_KEY || preg_match('/^php\.[0-9]+$/', $k)) {
                $keys[$k] = true;
            }
        }
        return array_keys($keys);
    }

    private function save($id, $data)
    {
        if ($data === '' && $this->sid === null && !isset($this->entries[self::KEY])) {
            return true; // an empty session never stored: nothing to store
        }
        $changes = array();
        foreach ($this->bridgeKeys() as $k) {
            $changes[$k] = '';
        }
        if ($data !== '') {
            $b64 = rtrim(strtr(base64_encode($data), '+/', '-_'), '=');
            $chunks = str_split($b64, self::CHUNK);
            // Several chunks: a tag of this write on each (see the top).
            $tag = count($chunks) > 1 ? bin2hex(random_bytes(4)) . '.' : '';
            $changes[self::KEY] = count($chunks) . '.' . $tag . $chunks[0];
            for ($i = 1; $i < count($chunks); $i++) {
                $changes[self::KEY . '.' . $i] = $tag . $chunks[$i];
            }
            $changes[self::SID_KEY] = $id;
        }
        $size = $this->storedSizeWith($changes);
        $max = self::maxSessionSize();
        if ($size > $max) {
            trigger_error(sprintf('sessstore: session not saved: it would take %d bytes in the store, over '
                . 'SessionStoreMaxSessionSize (%d); the previous version is kept. Keep less in $_SESSION '
                . '(or raise SessionStoreMaxSessionSize and SESSSTORE_MAX_SESSION_SIZE together).',
                $size, $max), E_USER_WARNING);
            return false;
        }
        if (headers_sent($file, $line)) {
            trigger_error("sessstore: session not saved: output started at $file:$line before the session "
                . 'was written (the bridge\'s output buffer was flushed or removed)', E_USER_WARNING);
            return false;
        }
        $this->pending = $changes;
        $this->data = $data;
        $this->sid = $data === '' ? null : $id;
        $this->sendHeaders();
        return true;
    }

    /** The record size the module would see once $changes are merged. */
    private function storedSizeWith(array $changes)
    {
        $entries = $this->entries;
        foreach ($changes as $k => $v) {
            if ($v === '') {
                unset($entries[$k]);
            } else {
                $entries[$k] = $v;
            }
        }
        $encoded = 0;
        foreach ($entries as $k => $v) {
            $encoded += strlen(urlencode((string) $k)) + strlen(urlencode($v)) + 2; // "k=v&"
        }
        return self::RECORD_HEADER + strlen(sessstore_remote_user()) + $encoded + self::MARGIN;
    }

    /** Replaces the bridge's X-Replace-Session lines with the pending changes. */
    private function sendHeaders()
    {
        header_remove(self::HEADER);
        $line = '';
        foreach ($this->pending as $k => $v) {
            $pair = urlencode((string) $k) . '=' . urlencode($v) . '&';
            if ($line !== '' && strlen($line) + strlen($pair) > self::CHUNK + 100) {
                header(self::HEADER . ': &' . $line, false);
                $line = '';
            }
            $line .= $pair;
        }
        if ($line !== '') {
            header(self::HEADER . ': &' . $line, false);
        }
    }

    /** SessionStoreMaxSessionSize as the environment or php.ini tells it (16K by default). */
    public static function maxSessionSize()
    {
        foreach (array(getenv('SESSSTORE_MAX_SESSION_SIZE'), getenv('REDIRECT_SESSSTORE_MAX_SESSION_SIZE'),
                       get_cfg_var('sessstore.max_session_size')) as $v) {
            if (is_string($v) && preg_match('/^\s*([0-9]+)\s*([kKmM]?)\s*$/', $v, $m)) {
                $mult = array('' => 1, 'k' => 1024, 'm' => 1048576);
                return (int) $m[1] * $mult[strtolower($m[2])];
            }
        }
        return self::DEFAULT_MAX;
    }
}

/**
 * The authenticated user. Under mod_actions the script runs after an
 * internal redirect, where httpd renames REMOTE_USER to REDIRECT_REMOTE_USER.
 */
function sessstore_remote_user()
{
    foreach (array('REMOTE_USER', 'REDIRECT_REMOTE_USER') as $k) {
        if (isset($_SERVER[$k]) && $_SERVER[$k] !== '') {
            return (string) $_SERVER[$k];
        }
    }
    return '';
}

/** Installs the handler; run once, by auto_prepend_file. */
function sessstore_install()
{
    if (PHP_SAPI === 'cli' || session_status() === PHP_SESSION_ACTIVE) {
        return; // not under a web server, or session.auto_start=1 got there first (see docs/php.md)
    }
    $raw = isset($_SERVER['HTTP_SESSION']) ? $_SERVER['HTTP_SESSION'] : (string) getenv('HTTP_SESSION');

    // Legacy code reads REMOTE_USER; after mod_actions' redirect it is REDIRECT_REMOTE_USER.
    if (!isset($_SERVER['REMOTE_USER']) && isset($_SERVER['REDIRECT_REMOTE_USER'])) {
        $_SERVER['REMOTE_USER'] = $_SERVER['REDIRECT_REMOTE_USER'];
    }
    // mod_auth_form's password (<AuthName>-pw) is in HTTP_SESSION. Hide it from
    // the easy ways a page shows its environment (phpinfo(), dumps of $_SERVER).
    // This is tidiness, not protection: docs/php.md, "The password".
    if (strpos($raw, '-pw=') !== false) {
        $shown = implode('&', array_filter(explode('&', $raw), function ($pair) {
            return !preg_match('/^[^=]*-pw=/', $pair);
        }));
        $_SERVER['HTTP_SESSION'] = $shown;
        if (isset($_ENV['HTTP_SESSION'])) {
            $_ENV['HTTP_SESSION'] = $shown;
        }
        putenv('HTTP_SESSION=' . $shown);
    }

    ini_set('session.use_cookies', '0');     // no PHPSESSID cookie: the store's cookie is the session
    ini_set('session.use_only_cookies', '1');
    ini_set('session.use_trans_sid', '0');   // no ID in URLs either
    ini_set('session.use_strict_mode', '0');
    ini_set('session.gc_probability', '0');  // the store expires sessions

    $handler = new SessStoreSessionHandler($raw);
    session_set_save_handler($handler, false);
    // session_id() reports the ID stored with the session; a new session
    // gets a fresh one from PHP on session_start().
    if ($handler->storedId() !== null) {
        session_id($handler->storedId());
    }
    // Hold the output until the session is written: the X-Replace-Session
    // lines are response headers.
    ob_start();
    // Write the session after everything else the script registered for its
    // end (a shutdown function registered by a shutdown function runs last),
    // and before PHP flushes the buffer.
    register_shutdown_function(function () {
        register_shutdown_function(function () {
            if (session_status() === PHP_SESSION_ACTIVE) {
                session_write_close();
            }
        });
    });
}

sessstore_install();
