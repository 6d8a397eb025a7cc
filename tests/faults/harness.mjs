// Harness of the browser fault suite (node --test tests/faults/*.test.mjs, npm run
// test:faults): the engine-e2e harness (the npm package, the real ferry-server, Debian's
// Chromium through playwright-core), plus what the faults need:
// - a server that can be stopped and started again on the same port (the page's origin, so
//   the tab keeps its IndexedDB), optionally from a copy of its database taken earlier (a
//   restore from backup);
// - Chromium with `--js-flags=--expose-gc`, so a test can collect garbage.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createRequire } from 'node:module';
import { after, before } from 'node:test';
import { CHROMIUM_ARGS, ROOT, Server, ensurePackage, ensureServerBinary, launchChromium, openPage, uniqueName } from '../engine-e2e/harness.mjs';

export * from '../engine-e2e/harness.mjs';

const require = createRequire(join(ROOT, 'package.json'));

/** A ferry-server that can be stopped, restored from a snapshot and restarted in place. */
export class FaultServer extends Server {
  static async start(bin) {
    const s = await Server.start(bin);
    const server = new FaultServer(s.child, s.url, s.dir, s.secret);
    server.bin = bin;
    server.port = new URL(s.url).port;
    return server;
  }

  get database() {
    return join(this.dir, 'ferry.db');
  }

  /** Stops the process, keeping its data. */
  async halt() {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }

  /** Copies the (stopped) server's database aside, as a backup. */
  snapshot(name) {
    for (const suffix of ['', '-wal', '-shm']) {
      const from = this.database + suffix;
      if (existsSync(from)) copyFileSync(from, join(this.dir, `${name}${suffix}`));
      else rmSync(join(this.dir, `${name}${suffix}`), { force: true });
    }
  }

  /** Puts a snapshot back in place of the (stopped) server's database. */
  restore(name) {
    for (const suffix of ['', '-wal', '-shm']) {
      const from = join(this.dir, `${name}${suffix}`);
      if (existsSync(from)) copyFileSync(from, this.database + suffix);
      else rmSync(this.database + suffix, { force: true });
    }
  }

  /** Starts the process again on the same port, over the same files. */
  async resume() {
    const child = spawn(
      this.bin,
      ['--database', `sqlite://${this.database}`, '--listen', `127.0.0.1:${this.port}`, '--demo', '--static', join(this.dir, 'www')],
      {
        env: { ...process.env, FERRY_SECRET: this.secret, RUST_LOG: process.env.RUST_LOG || 'warn' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      lines.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`ferry-server exited (${code}) before listening`)));
    });
    child.stdout.resume();
    this.child = child;
  }
}

/** Chromium whose pages may call `gc()`. */
export async function launchChromiumWithGc() {
  const { chromium } = require('playwright-core');
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: [...CHROMIUM_ARGS, '--js-flags=--expose-gc'] });
}

export const put = (page, collection, record) =>
  page.evaluate(([c, r]) => window.ferry.put(c, r).then(() => true), [collection, record]);

/**
 * The set-up every fault file shares: registers `before`/`after` hooks that build what is
 * needed, start a FaultServer and Chromium (`gc`: one whose pages may call `gc()`), and stop
 * them after. Returns the object whose `server` and `browser` the hooks fill in.
 */
export function faultSuite({ gc = false } = {}) {
  const suite = { server: undefined, browser: undefined };
  before(async () => {
    ensurePackage();
    suite.server = await FaultServer.start(ensureServerBinary());
    suite.browser = gc ? await launchChromiumWithGc() : await launchChromium();
  });
  after(async () => {
    await suite.browser?.close();
    await suite.server?.stop();
  });
  return suite;
}

/**
 * Runs `body({context, tab, name, server})` with one tab of a fresh browser context open at
 * the suite's server and Ferry started in it on a new database named after `prefix`
 * (`options` as `window.startFerry` takes them); the context is closed after, whatever
 * happened.
 */
export async function withFerryTab(suite, prefix, options, body) {
  const context = await suite.browser.newContext();
  // The page's console, printed when the body fails: what the engine logged is often the
  // only trace of why a write failed inside the browser.
  const consoleLines = [];
  context.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
  try {
    const tab = await openPage(context, suite.server);
    const name = uniqueName(prefix);
    await tab.evaluate(([n, o]) => window.startFerry(n, o), [name, options]);
    return await body({ context, tab, name, server: suite.server });
  } catch (error) {
    if (consoleLines.length) console.error(`# the page's console:\n${consoleLines.slice(-200).join('\n')}`);
    throw error;
  } finally {
    await context.close();
  }
}
