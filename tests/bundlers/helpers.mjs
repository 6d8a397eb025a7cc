// Shared by the bundler matrix and the framework binding tests: the packed tarball, fresh
// projects that install it, a static file server, headless Chromium and a probe page.
//
// The bundlers and frameworks come from tests/bundlers/node_modules (pinned in
// tests/bundlers/package.json and its lockfile; `npm ci --prefix tests/bundlers` installs
// them once), webpack 5, esbuild, TypeScript and playwright-core from the workspace's. Every
// project is made under tests/bundlers/.work/ so Node's resolution finds both, and each
// installs the tarball into its own node_modules the way an app does (`npm install`).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePackage } from '../engine-e2e/harness.mjs';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(HERE, '..', '..');
export const WORK = join(HERE, '.work');
export const requireRoot = createRequire(join(ROOT, 'package.json'));
export const requireMatrix = createRequire(join(HERE, 'package.json'));

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const WAIT_MS = 90_000;

export const run = (cmd, args, cwd, env = process.env) =>
  execFileSync(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'inherit'] }).toString();

/** Checks that the matrix's packages are installed (the test command runs npm ci first). */
export function ensureMatrixDeps() {
  if (!existsSync(join(HERE, 'node_modules', 'vite', 'package.json'))) {
    run('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts'], HERE);
  }
}

let tarball;

/** Builds pkg/ when older than its sources and packs it once per process; returns the tarball's path. */
export function packedTarball() {
  if (tarball) return tarball;
  ensurePackage();
  mkdirSync(WORK, { recursive: true });
  const [{ filename }] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', WORK], join(ROOT, 'pkg')));
  tarball = join(WORK, filename);
  return tarball;
}

/** A fresh project in tests/bundlers/.work/<name> with `files` written and ferry-sync installed. */
export function project(name, files) {
  const dir = join(WORK, name);
  rmSync(dir, { recursive: true, force: true });
  for (const [path, text] of Object.entries({ 'package.json': JSON.stringify({ name, private: true, type: 'module' }), ...files })) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  run('npm', ['install', '--no-audit', '--no-fund', '--offline', '--ignore-scripts', packedTarball()], dir);
  return dir;
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css' };

/** Serves `dir` on a free loopback port (index.html for `/`). */
export function serveStatic(dir) {
  const server = createServer((req, res) => {
    const path = join(dir, decodeURIComponent(req.url === '/' ? 'index.html' : req.url.split('?')[0]));
    if (!path.startsWith(dir) || !existsSync(path)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' });
    res.end(readFileSync(path));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

export const urlOf = (server) => `http://127.0.0.1:${server.address().port}`;

export async function launchChromium() {
  const { chromium } = requireRoot('playwright-core');
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/**
 * The probe: opens Ferry (no server: its fetch fails), writes and reads a record, and puts
 * the outcome in `globalThis.__result` (posted to the page when it runs in a worker).
 */
export const PROBE = `import { Ferry, FerryError } from 'ferry-sync';
export async function probe() {
  try {
    const ferry = await Ferry.open({
      name: 'probe-' + Math.random().toString(16).slice(2),
      url: '/v1',
      live: false,
      collections: { notes: { policy: 'merge-fields' } },
      fetch: () => Promise.reject(new TypeError('no server in this test')),
    });
    const seen = [];
    ferry.query('notes').subscribe((rows) => seen.push(rows.length));
    await ferry.put('notes', { id: 'n1', title: 'bundled' });
    const missing = await ferry.patch('notes', 'nope', { title: 'x' }).then(() => null, (e) => e instanceof FerryError && e.code);
    const result = { record: ferry.get('notes', 'n1'), seen, missing, depth: ferry.syncState.getSnapshot().outboxDepth };
    await ferry.close();
    return result;
  } catch (e) {
    return { error: String((e && e.stack) || e), code: e && e.code };
  }
}
`;

export const EXPECTED_PROBE = { record: { id: 'n1', title: 'bundled' }, seen: [0, 1], missing: 'not_found', depth: 1 };

/** Loads `url` in a fresh page and returns the probe's `__result`. */
export async function probeResult(browser, url) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(url);
    await page.waitForFunction(() => globalThis.__result !== undefined, null, { timeout: WAIT_MS });
    return await page.evaluate(() => globalThis.__result);
  } catch (e) {
    throw new Error(`${e.message}\npage errors: ${errors.join('\n')}`);
  } finally {
    await page.close();
  }
}
