// End-to-end harness: the reference server on a free loopback port with a fresh SQLite file,
// headless Chromium (Debian's, through playwright-core), and helpers that drive the sample app
// the way a person does.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SCREENSHOTS = path.join(ROOT, 'tests', 'e2e', 'screenshots');

export function serverBinary() {
  if (process.env.FERRY_SERVER_BIN) return process.env.FERRY_SERVER_BIN;
  const target = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target');
  return path.join(target, 'release', 'ferry-server');
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts ferry-server (demo mode, serving www/dist). Returns {url, stop(), token(user), changes(token)}. */
export async function startServer() {
  const dir = mkdtempSync(path.join(tmpdir(), 'ferry-e2e-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = ['--database', `sqlite://${path.join(dir, 'ferry.db')}`, '--listen', `127.0.0.1:${port}`,
    '--static', path.join(ROOT, 'www', 'dist'), '--demo'];
  const child = spawn(serverBinary(), args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  let log = '';
  const keep = (chunk) => {
    log += chunk;
    if (log.length > 200_000) log = log.slice(-100_000);
    if (process.env.FERRY_E2E_VERBOSE) process.stderr.write(chunk);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`ferry-server exited at start (${JSON.stringify(exited)}):\n${log}`);
    try {
      const r = await fetch(`${url}/index.html`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`ferry-server did not answer within 30 s:\n${log}`);
    }
    await sleep(100);
  }

  async function token(user) {
    const r = await fetch(`${url}/v1/demo/token`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user }),
    });
    if (!r.ok) throw new Error(`demo token: ${r.status} ${await r.text()}`);
    return (await r.json()).token;
  }

  /** Every record of the tenant as the server has it now: Map "collection/id" → record. */
  async function records(user = 'e2e-checker') {
    const t = await token(user);
    const all = new Map();
    let cursor = 0;
    for (;;) {
      const r = await fetch(`${url}/v1/sync/changes?cursor=${cursor}&limit=1000`, { headers: { Authorization: `Bearer ${t}` } });
      if (!r.ok) throw new Error(`pull: ${r.status} ${await r.text()}`);
      const page = await r.json();
      for (const rec of page.changes) all.set(`${rec.collection}/${rec.id}`, rec);
      if (!page.has_more) break;
      cursor = page.cursor;
    }
    return all;
  }

  async function stop() {
    if (!exited) {
      child.kill('SIGTERM');
      const t0 = Date.now();
      while (!exited && Date.now() - t0 < 5000) await sleep(50);
      if (!exited) child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  }

  return { url, stop, token, records, log: () => log };
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/** A device: its own browser context (own IndexedDB, storage, service workers). */
export async function openDevice(browser, baseURL, user, { serviceWorkers = 'block', viewport = { width: 1280, height: 860 } } = {}) {
  const context = await browser.newContext({ baseURL, viewport, serviceWorkers });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (process.env.FERRY_E2E_VERBOSE) console.log(`[${user}] ${m.type()}: ${m.text()}`);
  });
  await page.goto('/');
  await signIn(page, user);
  return { user, context, page, errors };
}

export async function signIn(page, user) {
  await page.getByTestId('signin-name').fill(user);
  await page.getByTestId('signin-submit').click();
  await appReady(page);
}

export async function appReady(page) {
  await page.waitForSelector('html[data-ready="true"]', { timeout: 30_000 });
}

export function syncState(page) {
  return page.evaluate(() => window.ferry.syncState.getSnapshot());
}

/**
 * Asks for a sync and waits until a cycle that started after the request has finished with
 * nothing left to send.
 */
export async function syncSettled(page, timeout = 30_000) {
  await page.evaluate(async (timeoutMs) => {
    const ferry = window.ferry;
    const before = ferry.syncState.getSnapshot().lastSyncedAt || 0;
    ferry.syncNow();
    const t0 = Date.now();
    for (;;) {
      const s = ferry.syncState.getSnapshot();
      if (s.status === 'idle' && s.outboxDepth === 0 && s.inFlight === 0 && (s.lastSyncedAt || 0) > before) return;
      if (Date.now() - t0 > timeoutMs) throw new Error(`not synced after ${timeoutMs} ms: ${JSON.stringify(s)}`);
      if (Date.now() - t0 > 2000 && s.status === 'idle') ferry.syncNow();
      await new Promise((r) => setTimeout(r, 100));
    }
  }, timeout);
}

/** Retries `fn` until it stops throwing. */
export async function eventually(fn, { timeout = 20_000, interval = 150 } = {}) {
  const t0 = Date.now();
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() - t0 > timeout) throw err;
      await sleep(interval);
    }
  }
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
}

/** Shows a tab of the app. */
export async function showView(page, view) {
  await page.locator(`[role="tab"][data-view="${view}"]`).click();
  await page.locator(`#view-${view}`).waitFor({ state: 'visible' });
}

/** The fields of a record as the page's engine has it. */
export function localRecord(page, collection, id) {
  return page.evaluate(([c, i]) => window.ferry.get(c, i) ?? null, [collection, id]);
}
