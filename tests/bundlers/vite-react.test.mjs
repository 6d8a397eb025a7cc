// "Done means": a fresh Vite 8 + React 19 + TypeScript (strict) project built only from the
// package README (its files are the README's code blocks, read from the installed package)
// type-checks with no casts, and syncs two browser contexts through ferry-server, in dev
// (vite dev server, StrictMode) and in the production build (vite preview).
//
//   npm ci --prefix tests/bundlers && node --test tests/bundlers/vite-react.test.mjs
//
// The only change to the README's files: the proxy target is the test's ferry-server (on a
// free port) instead of 127.0.0.1:8787.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer as netServer } from 'node:net';
import { dirname, join } from 'node:path';
import { Server, ensureServerBinary } from '../engine-e2e/harness.mjs';
import { ROOT, WAIT_MS, ensureMatrixDeps, launchChromium, packedTarball, project, run } from './helpers.mjs';

let browser;
let bin;
let dir;

/** The README's code blocks that start with `// <path>`, by path. */
function readmeFiles(readme) {
  const files = {};
  for (const [, lang, body] of readme.matchAll(/```(ts|tsx)\n([\s\S]*?)```/g)) {
    const first = body.split('\n', 1)[0];
    const path = first.match(/^\/\/ ([\w./-]+\.(?:ts|tsx))$/)?.[1];
    if (path) files[path] = body;
    void lang;
  }
  return files;
}

// What `npm create vite@latest -- --template react-ts` makes, reduced to what matters here,
// with the strictest usual settings: strict, lib ES2022 + DOM, skipLibCheck false.
const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    lib: ['ES2022', 'DOM', 'DOM.Iterable'],
    module: 'ESNext',
    moduleResolution: 'bundler',
    jsx: 'react-jsx',
    strict: true,
    noUnusedLocals: true,
    noUnusedParameters: true,
    noFallthroughCasesInSwitch: true,
    verbatimModuleSyntax: true,
    isolatedModules: true,
    skipLibCheck: false,
    noEmit: true,
    types: [],
  },
  include: ['src'],
};

const INDEX_HTML = `<!doctype html>
<html lang="en">
  <head><meta charset="UTF-8" /><title>notes</title></head>
  <body><div id="root"></div><script type="module" src="/src/main.tsx"></script></body>
</html>
`;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = netServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

before(async () => {
  ensureMatrixDeps();
  packedTarball();
  bin = ensureServerBinary();
  browser = await launchChromium();
  // The README as installed with the package.
  dir = project('vite-react-ts', { 'index.html': INDEX_HTML, 'tsconfig.json': JSON.stringify(TSCONFIG, null, 2) });
  const files = readmeFiles(readFileSync(join(dir, 'node_modules', 'ferry-sync', 'README.md'), 'utf8'));
  for (const f of ['vite.config.ts', 'src/schema.ts', 'src/App.tsx', 'src/main.tsx']) {
    assert.ok(files[f], `the README has a ${f} block`);
  }
  for (const [path, text] of Object.entries(files)) {
    if (path === 'src/main.ts') continue; // the non-React entry; this project is React's
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
});

after(async () => {
  await browser?.close();
});

test('the README\'s server command starts ferry-server and POST /v1/demo/token answers with a token', async () => {
  const readme = readFileSync(join(dir, 'node_modules', 'ferry-sync', 'README.md'), 'utf8');
  const line = readme.match(/^cargo run --release -p ferry-server -- (.*?)\s*(?:#.*)?$/m);
  assert.ok(line, 'the README has a `cargo run -p ferry-server` line');
  const args = line[1].split(/\s+/).filter(Boolean);
  // The README's arguments as written; the listen address and database are the test's own.
  const work = mkdtempSync(join(tmpdir(), 'ferry-readme-server-'));
  const port = await freePort();
  const child = spawn(bin, [...args, '--listen', `127.0.0.1:${port}`, '--database', `sqlite://${join(work, 'ferry.db')}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: 'warn' },
  });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  try {
    await new Promise((resolve, reject) => {
      child.stdout.on('data', (c) => String(c).includes('listening') && resolve());
      child.once('exit', (code) => reject(new Error(`ferry-server ${args.join(' ')} exited (${code}): ${stderr}`)));
    });
    const response = await fetch(`http://127.0.0.1:${port}/v1/demo/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'alice' }),
    });
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(typeof body.token, 'string');
    assert.match(body.token, /^[\x21-\x7e]+$/, 'a bearer token');
  } finally {
    child.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  }
});

test('the README project type-checks under strict with skipLibCheck false', () => {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const out = (() => {
    try {
      run(process.execPath, [tsc, '-p', dir], dir);
      return '';
    } catch (e) {
      return String(e.stdout || e.message);
    }
  })();
  assert.equal(out, '', `tsc reported:\n${out}`);
  for (const f of ['src/App.tsx', 'src/schema.ts', 'src/main.tsx']) {
    const text = readFileSync(join(dir, f), 'utf8');
    // `x as T` casts and `x!` non-null assertions (angle-bracket casts do not parse in .tsx).
    assert.doesNotMatch(text, /\bas (?!const\b)[A-Za-z]|[\w)\]]!(?=[.);,\]\s])/, `${f} has no casts or non-null assertions`);
  }
});

/** Two browser contexts (two devices) on `url`: a note added in each shows up in the other. */
async function twoDevices(url) {
  const a = await browser.newContext();
  const b = await browser.newContext();
  try {
    const pageA = await a.newPage();
    const pageB = await b.newPage();
    const errors = [];
    for (const p of [pageA, pageB]) p.on('pageerror', (e) => errors.push(String(e)));
    await pageA.goto(url);
    await pageB.goto(url);
    const wait = { timeout: WAIT_MS };
    try {
      await pageA.getByRole('button', { name: 'Add' }).click(wait);
      await pageA.getByText('Note 1', { exact: true }).waitFor(wait);
      await pageB.getByText('Note 1', { exact: true }).waitFor(wait);
      await pageB.getByRole('button', { name: 'Add' }).click(wait);
      await pageA.getByText('Note 2', { exact: true }).waitFor(wait);
      for (const p of [pageA, pageB]) await p.locator('p.sync', { hasText: /^synced$/ }).waitFor(wait);
    } catch (e) {
      const texts = await Promise.all([pageA, pageB].map((p) => p.locator('body').innerText().catch(() => '?')));
      throw new Error(`${e.message}\npage A: ${texts[0]}\npage B: ${texts[1]}\npage errors: ${errors.join('\n')}`);
    }
    assert.deepEqual(errors, []);
  } finally {
    await a.close();
    await b.close();
  }
}

/** Points the README's proxy at `server` (the one edit to the README's files). */
function proxyTo(server) {
  const config = join(dir, 'vite.config.ts');
  const text = readFileSync(config, 'utf8').replace(/http:\/\/127\.0\.0\.1:\d+/, server.url);
  writeFileSync(config, text);
}

test('dev server (StrictMode): two browser contexts sync through ferry-server', async () => {
  const server = await Server.start(bin);
  try {
    await proxyTo(server);
    const vite = await import('vite');
    const port = await freePort();
    const dev = await vite.createServer({
      root: dir,
      configFile: join(dir, 'vite.config.ts'),
      logLevel: 'error',
      server: { host: '127.0.0.1', port, strictPort: true },
    });
    await dev.listen();
    try {
      await twoDevices(`http://127.0.0.1:${port}/`);
    } finally {
      await dev.close();
    }
  } finally {
    await server.stop();
  }
});

test('production build (vite build + vite preview): two browser contexts sync through ferry-server', async () => {
  const server = await Server.start(bin);
  try {
    await proxyTo(server);
    const vite = await import('vite');
    await vite.build({ root: dir, configFile: join(dir, 'vite.config.ts'), logLevel: 'error' });
    const port = await freePort();
    const preview = await vite.preview({
      root: dir,
      configFile: join(dir, 'vite.config.ts'),
      logLevel: 'error',
      preview: { host: '127.0.0.1', port, strictPort: true },
    });
    try {
      await twoDevices(`http://127.0.0.1:${port}/`);
    } finally {
      await new Promise((resolve) => preview.httpServer.close(resolve));
    }
  } finally {
    await server.stop();
  }
});
