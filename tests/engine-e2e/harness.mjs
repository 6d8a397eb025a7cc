// Harness for the engine tests against the real server (node --test tests/engine-e2e/).
//
// - builds the npm package (bash scripts/build-pkg.sh) unless pkg/ is newer than the engine's
//   sources, and ferry-server (cargo build --release -p ferry-server; a no-op when fresh);
// - starts ferry-server on a free 127.0.0.1 port with a fresh SQLite file, --demo, a known
//   --secret and --static <temp dir> holding the package and a tiny test page, so the page,
//   the wasm and the sync API share one origin;
// - launches Debian's Chromium through playwright-core (never downloads a browser).
//
// The test page (PAGE below) exposes `window.startFerry(name, options)`, which opens Ferry
// with a `getToken(refresh)` that asks the server for demo tokens, and keeps the latest
// sync state in `window.lastState`.
import { execFileSync, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(ROOT, 'package.json'));

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Generous: the tests wait for outcomes, they never assert on timings. */
export const WAIT_MS = 90_000;

const log = (...a) => process.stderr.write(`engine-e2e: ${a.join(' ')}\n`);

function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

/** Builds pkg/ unless it is newer than src/, core/, pkg-template/ and the manifests. */
export function ensurePackage() {
  const built = ['index.js', 'ferry.js', 'ferry_bg.wasm'].map((f) => join(ROOT, 'pkg', f));
  const sources = ['src', 'core/src', 'pkg-template', 'Cargo.toml', 'Cargo.lock', 'core/Cargo.toml'];
  const sourceTime = Math.max(...sources.map((p) => newestMtime(join(ROOT, p))));
  if (built.every(existsSync) && Math.min(...built.map((f) => statSync(f).mtimeMs)) > sourceTime) {
    log('pkg/ is up to date');
    return;
  }
  log('building pkg/ (bash scripts/build-pkg.sh)');
  execFileSync('bash', ['scripts/build-pkg.sh'], { cwd: ROOT, stdio: ['ignore', process.stderr, process.stderr] });
}

/** Builds ferry-server in release mode (cargo skips the work when it is up to date), or takes `FERRY_SERVER_BIN`. */
export function ensureServerBinary() {
  // A binary built elsewhere (as tests/e2e allows): no cargo build.
  if (process.env.FERRY_SERVER_BIN) return process.env.FERRY_SERVER_BIN;
  const targetDir = process.env.CARGO_TARGET_DIR || join(ROOT, 'target');
  const bin = join(targetDir, 'release', 'ferry-server');
  log('cargo build --release -p ferry-server');
  execFileSync('cargo', ['build', '--release', '-p', 'ferry-server'], {
    cwd: ROOT,
    stdio: ['ignore', process.stderr, process.stderr],
  });
  if (!existsSync(bin)) throw new Error(`ferry-server not found at ${bin}`);
  return bin;
}

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>ferry engine-e2e</title>
<script type="module">
import { Ferry, init } from './pkg/index.js';
window.Ferry = Ferry;
window.tokenCalls = [];
async function demoToken(user) {
  const r = await fetch('/v1/demo/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  if (!r.ok) throw new Error('demo token: ' + r.status);
  return (await r.json()).token;
}
// Opens Ferry as window.ferry. firstToken: what getToken(false) answers the first time
// (an expired or garbage token), before the server's good ones.
// token: a fixed token for every call (a tenant of the test's own), instead of demo tokens.
window.startFerry = async (name, { user = 'alice', firstToken = null, live = true, token = null } = {}) => {
  let first = firstToken;
  const ferry = await Ferry.open({
    name,
    url: '/v1',
    live,
    collections: {
      notes: { policy: 'merge-fields' },
      tasks: { policy: 'last-writer-wins' },
      expenses: { policy: 'server-wins-review' },
    },
    getToken: async (refresh) => {
      window.tokenCalls.push(refresh);
      if (token !== null) return token;
      if (!refresh && first !== null) {
        const t = first;
        first = null;
        return t;
      }
      return demoToken(user);
    },
  });
  window.ferry = ferry;
  ferry.syncState.subscribe((s) => { window.lastState = s; });
  return true;
};
await init();
window.ready = true;
</script>
`;

/** A running ferry-server serving the test page. */
export class Server {
  /**
   * `configToml`: a ferry-server config file (`--config`) for this server, when given.
   * `files`: more files to serve beside the test page (`{ 'sw.js': source }`).
   */
  static async start(bin, { configToml, files = {} } = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-engine-e2e-'));
    const www = join(dir, 'www');
    cpSync(join(ROOT, 'pkg'), join(www, 'pkg'), { recursive: true });
    writeFileSync(join(www, 'index.html'), PAGE);
    for (const [file, text] of Object.entries(files)) writeFileSync(join(www, file), text);
    const secret = randomBytes(32).toString('hex');
    const extra = [];
    if (configToml !== undefined) {
      writeFileSync(join(dir, 'ferry.toml'), configToml);
      extra.push('--config', join(dir, 'ferry.toml'));
    }
    const child = spawn(
      bin,
      ['--database', `sqlite://${join(dir, 'ferry.db')}`, '--listen', '127.0.0.1:0', '--demo', '--static', www, ...extra],
      {
        env: { ...process.env, FERRY_SECRET: secret, RUST_LOG: process.env.RUST_LOG || 'warn' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const url = await new Promise((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      lines.once('line', (line) => resolve(line.trim().split(' ').pop()));
      child.once('exit', (code) => reject(new Error(`ferry-server exited (${code}) before listening`)));
    });
    if (!url.startsWith('http://127.0.0.1:')) throw new Error(`unexpected ferry-server startup line: ${url}`);
    child.stdout.resume();
    log(`ferry-server at ${url} (data in ${dir})`);
    return new Server(child, url, dir, secret);
  }

  constructor(child, url, dir, secret) {
    Object.assign(this, { child, url, dir, secret });
  }

  async token(user = 'alice') {
    const r = await fetch(`${this.url}/v1/demo/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user }),
    });
    if (!r.ok) throw new Error(`demo token: ${r.status}`);
    return (await r.json()).token;
  }

  /** A correctly signed token of tenant `demo` that expired long ago. */
  expiredToken(user = 'alice') {
    return this.signedToken({ tenant: 'demo', user, exp: 1 });
  }

  /** A token for `tenant`, valid for an hour (so a test can have a tenant of its own). */
  tenantToken(tenant, user = 'alice') {
    return this.signedToken({ tenant, user, exp: Math.floor(Date.now() / 1000) + 3600 });
  }

  signedToken(claims) {
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    const sig = createHmac('sha256', this.secret).update(payload).digest('base64url');
    return `${payload}.${sig}`;
  }

  /** Creates `n` notes through the push API (batches of 500) as client `seeder`. */
  async seedNotes(token, n) {
    for (let start = 0; start < n; start += 500) {
      const mutations = [];
      for (let i = start; i < Math.min(n, start + 500); i++) {
        mutations.push({
          op_id: `seeder.${i + 1}`,
          client_id: 'seeder',
          seq: i + 1,
          collection: 'notes',
          record_id: `s-${String(i).padStart(6, '0')}`,
          op: 'create',
          base_version: 0,
          patch: { title: `Note ${i}`, n: i },
          hlc: `${String(Date.now()).padStart(15, '0')}-${String(i).padStart(10, '0')}-seeder`,
        });
      }
      const r = await fetch(`${this.url}/v1/sync/mutations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': `seed-${start}` },
        body: JSON.stringify({ client_id: 'seeder', mutations }),
      });
      if (!r.ok) throw new Error(`seed push ${r.status}: ${await r.text()}`);
      const answer = await r.json();
      if (answer.accepted.length !== mutations.length) throw new Error(`seed: ${JSON.stringify(answer).slice(0, 300)}`);
    }
  }

  /** Every live record on the server (GET /v1/sync/changes from cursor 0, all pages). */
  async records() {
    const token = await this.token('checker');
    const out = new Map();
    let cursor = 0;
    for (;;) {
      const r = await fetch(`${this.url}/v1/sync/changes?cursor=${cursor}&limit=1000`, {
        headers: { authorization: `Bearer ${token}` },
      });
      if (!r.ok) throw new Error(`pull: ${r.status} ${await r.text()}`);
      const page = await r.json();
      for (const rec of page.changes) out.set(`${rec.collection}/${rec.id}`, rec);
      cursor = page.cursor;
      if (!page.has_more) return out;
    }
  }

  async record(collection, id) {
    return (await this.records()).get(`${collection}/${id}`);
  }

  async stop() {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function launchChromium() {
  const { chromium } = require('playwright-core');
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/** A page of `context` with the test page loaded and the package initialised. */
export async function openPage(context, server) {
  const page = await context.newPage();
  page.on('pageerror', (e) => log(`page error: ${e.stack || e}`));
  await page.goto(`${server.url}/index.html`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: WAIT_MS });
  return page;
}

/** Waits until `fn(arg)` evaluated in the page is truthy; returns its value. */
export async function until(page, fn, arg, what) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout: WAIT_MS, polling: 100 });
    return await handle.jsonValue();
  } catch (e) {
    const state = await page.evaluate(() => window.lastState).catch(() => undefined);
    const locks = await page.evaluate(() => navigator.locks?.query()).catch(() => undefined);
    throw new Error(
      `gave up waiting until ${what}: ${e.message}\nlast sync state: ${JSON.stringify(state)}\nweb locks: ${JSON.stringify(locks)}`,
    );
  }
}

/** Waits (polling the server) until `check()` resolves truthy; returns its value. */
export async function untilServer(check, what) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function uniqueName(prefix) {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** Every row of every object store of every IndexedDB database of the page's origin, as JSON text. */
export function rawIndexedDb(page) {
  return page.evaluate(async () => {
    const dump = [];
    for (const { name } of await indexedDB.databases()) {
      const db = await new Promise((resolve, reject) => {
        const open = indexedDB.open(name);
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
      });
      for (const store of db.objectStoreNames) {
        const rows = await new Promise((resolve, reject) => {
          const req = db.transaction(store, 'readonly').objectStore(store).getAll();
          req.onsuccess = () => resolve(req.result);
          req.onerror = () => reject(req.error);
        });
        // Sealed values would be Uint8Arrays; without encryption every value is JSON text
        // or plain objects, so a marker string shows wherever it is stored.
        dump.push({ db: name, store, rows });
      }
      db.close();
    }
    return JSON.stringify(dump);
  });
}
