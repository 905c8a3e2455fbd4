// The demo site (scripts/demo) in headless Chromium, as a person uses it:
// log in through the form, reload and watch the visit counter rise, check the
// session cookie is HttpOnly and never in the page, (--redis) see both nodes
// serve the same login, log out, and check the old cookie no longer works.
// Run by tests/browser/run.sh; prints "ok"/"not ok" lines and
// "N passed, N failed"; screenshots go to build/browser/.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const TOP = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OUT = path.join(TOP, 'build/browser');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const COOKIE = 'demo_session';
mkdirSync(OUT, { recursive: true });

let passed = 0;
let failed = 0;
const demos = new Set(); // process groups to kill, also on failure
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function signalDemo(demo, sig) {
    try {
        process.kill(-demo.pid, sig); // scripts/demo leads its own group
    } catch {}
}
// On any exit of this process: at least tell every demo still up to stop.
process.on('exit', () => demos.forEach((d) => signalDemo(d, 'SIGTERM')));

// SIGTERM to the demo's process group, as Ctrl-C would; SIGKILL if it is
// not gone within 20 s (httpd gives a busy child about 10 s).
async function stopDemo(demo) {
    if (!demos.has(demo)) return;
    const t0 = Date.now();
    signalDemo(demo, 'SIGTERM');
    const gone = await Promise.race([demo.done.then(() => true), sleep(20_000).then(() => false)]);
    if (!gone) {
        signalDemo(demo, 'SIGKILL');
        console.log(`#   scripts/demo ignored SIGTERM for 20 s: killed`);
    }
    demos.delete(demo);
    return Date.now() - t0;
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(1));

// A port below the ephemeral range that nothing listens on.
async function freePort() {
    for (;;) {
        const port = 10000 + Math.floor(Math.random() * 22000);
        const free = await new Promise((resolve) => {
            const s = net.createServer().once('error', () => resolve(false));
            s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
        });
        if (free) return port;
    }
}

// Starts scripts/demo [--redis] in its own process group; resolves once the
// site answers, with { pid, base, log }.
async function startDemo(mode) {
    const port = await freePort();
    const log = path.join(OUT, `demo-${mode}.log`);
    const args = mode === 'redis' ? ['--redis'] : [];
    const fd = openSync(log, 'w');
    const child = spawn(path.join(TOP, 'scripts/demo'), args, {
        env: { ...process.env, PORT: String(port) },
        detached: true,
        stdio: ['ignore', fd, fd],
    });
    let exited = null;
    const done = new Promise((resolve) => child.on('exit', (code) => resolve((exited = code))));
    const demo = { pid: child.pid, base: `http://127.0.0.1:${port}`, log, done };
    demos.add(demo);
    const deadline = Date.now() + 90_000; // the first run builds the module
    while (Date.now() < deadline) {
        if (exited !== null) throw new Error(`scripts/demo exited (${exited}):\n${readFileSync(log, 'utf8')}`);
        // "URL:" is printed once every server of the demo listens.
        if (readFileSync(log, 'utf8').includes('URL:')) {
            const res = await fetch(demo.base + '/').catch(() => null);
            if (res?.ok) return demo;
        }
        await sleep(200);
    }
    throw new Error(`scripts/demo did not answer on ${demo.base} in 90 s; see ${log}`);
}

function expect(cond, what) {
    if (!cond) throw new Error(what);
}

// What the private page shows: { user, visits, node, tag }.
async function privatePage(page) {
    const text = await page.locator('body').innerText();
    const m = (re) => (text.match(re) || [])[1];
    return {
        user: m(/Hello, (\S+)/),
        visits: Number(m(/Visits in this session: (\d+)/)),
        node: m(/Served by (\S+?)\.?\n/),
        tag: m(/tag, as the error log names this session: ([0-9a-f]{8})/),
    };
}

async function sessionCookie(context) {
    return (await context.cookies()).find((c) => c.name === COOKIE);
}

// Runs the steps in order, a screenshot after each; after a failure the rest
// of the scenario would mean nothing and counts as failed.
async function scenario(mode, steps, s) {
    for (const [i, [name, fn]] of steps.entries()) {
        const t0 = Date.now();
        let error = null;
        try {
            await fn();
        } catch (e) {
            error = e;
        }
        console.log(`${error ? 'not ok' : 'ok'} - ${mode}: ${name} (${Date.now() - t0} ms)`);
        if (s.page) {
            const file = path.join(OUT, `${mode}-${i + 1}-${name.replace(/\W+/g, '-').replace(/-$/, '')}.png`);
            await s.page.screenshot({ path: file, fullPage: true }).catch(() => {});
            console.log(`#   screenshot: ${path.relative(TOP, file)}`);
        }
        if (!error) {
            passed++;
            continue;
        }
        const rest = steps.length - i - 1;
        failed += 1 + rest;
        console.log(`#   ${error.message.replace(/\n/g, '\n#   ')}`);
        if (rest) console.log(`not ok - ${mode}: ${rest} later step(s) not run`);
        if (s.demo) console.log(`#   demo output: ${path.relative(TOP, s.demo.log)}`);
        return;
    }
}

async function run(browser, mode) {
    const s = {}; // demo, context, page, cookie, visits
    const steps = [
        ['demo starts', async () => {
            s.demo = await startDemo(mode);
        }],
        ['login form', async () => {
            s.context = await browser.newContext();
            s.page = await s.context.newPage();
            await s.page.goto(s.demo.base + '/');
            expect(await s.page.locator('form[action="/dologin"]').isVisible(), 'no login form on /');
        }],
        ['log in as demo/demo', async () => {
            await s.page.fill('input[name=httpd_username]', 'demo');
            await s.page.fill('input[name=httpd_password]', 'demo');
            await Promise.all([s.page.waitForURL('**/private/'), s.page.click('input[type=submit]')]);
            const p = await privatePage(s.page);
            expect(p.user === 'demo', `private page greets ${p.user}, not demo`);
            expect(p.visits >= 1, `visit counter shows ${p.visits}`);
            s.visits = p.visits;
        }],
        ['reload: visit counter rises', async () => {
            for (let i = 0; i < 2; i++) {
                await s.page.reload();
                const p = await privatePage(s.page);
                expect(p.user === 'demo', `after a reload the page greets ${p.user}`);
                expect(p.visits === s.visits + 1, `counter went from ${s.visits} to ${p.visits}, not +1`);
                s.visits = p.visits;
            }
        }],
        ['cookie is HttpOnly, its value nowhere in the page', async () => {
            const c = await sessionCookie(s.context);
            expect(c, `no ${COOKIE} cookie in the browser`);
            expect(c.httpOnly, 'the session cookie is not HttpOnly');
            expect(c.value.length >= 40, `cookie value too short: ${c.value.length} chars`);
            const html = await s.page.content();
            expect(!html.includes(c.value), 'the cookie value appears in the page HTML');
            const js = await s.page.evaluate(() => document.cookie);
            expect(!js.includes(c.value), 'document.cookie shows the session ID');
            // The page shows the log tag instead: SHA-256 of the ID, 8 hex digits.
            const tag = createHash('sha256').update(c.value).digest('hex').slice(0, 8);
            const p = await privatePage(s.page);
            expect(p.tag === tag, `page shows tag ${p.tag}, the cookie's is ${tag}`);
            s.cookie = c;
        }],
    ];
    if (mode === 'redis') {
        steps.push(['reloads: node1 and node2 both serve the login', async () => {
            const seen = new Set();
            for (let i = 0; i < 20 && seen.size < 2; i++) {
                await s.page.reload();
                const p = await privatePage(s.page);
                expect(p.user === 'demo', `on ${p.node} the page greets ${p.user}`);
                expect(p.visits === s.visits + 1, `on ${p.node} the counter went from ${s.visits} to ${p.visits}`);
                s.visits = p.visits;
                seen.add(p.node);
            }
            expect(seen.has('node1') && seen.has('node2'), `only ${[...seen]} served in 20 reloads`);
            console.log(`#   both nodes seen; visits now ${s.visits}`);
        }]);
    }
    steps.push(
        ['log out', async () => {
            await Promise.all([s.page.waitForURL(s.demo.base + '/'), s.page.click('a[href="/logout"]')]);
            expect(await s.page.locator('form[action="/dologin"]').isVisible(), 'no login form after logout');
            await s.page.goto(s.demo.base + '/private/');
            expect(new URL(s.page.url()).pathname === '/', `after logout /private/ ends at ${s.page.url()}`);
        }],
        ['old cookie in a fresh browser context: back to login', async () => {
            const fresh = await browser.newContext();
            await fresh.addCookies([{ ...s.cookie, expires: -1 }]);
            s.page = await fresh.newPage();
            const res = await s.page.goto(s.demo.base + '/private/');
            expect(new URL(s.page.url()).pathname === '/', `the old cookie reached ${s.page.url()}`);
            expect(res.ok() && (await s.page.locator('form[action="/dologin"]').isVisible()), 'no login form');
            expect(!(await s.page.content()).includes('Hello, demo'), 'the old cookie still shows the user');
        }],
    );
    try {
        await scenario(mode, steps, s);
    } finally {
        if (s.demo) console.log(`#   ${mode} demo stopped in ${await stopDemo(s.demo)} ms`);
    }
}

const t0 = Date.now();
let browser;
try {
    browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        // Playwright gives each launch a fresh, empty --user-data-dir.
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
            '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    console.log(`# ${CHROMIUM} ${browser.version()}`);
    for (const mode of ['shm', 'redis']) await run(browser, mode);
} catch (e) {
    failed++;
    console.log(`not ok - ${e.message}`);
} finally {
    await browser?.close();
}
console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${path.relative(TOP, OUT)}/`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
