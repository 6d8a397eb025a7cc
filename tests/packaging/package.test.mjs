// Packaging tests: what `npm pack` ships and how the packed package behaves.
//
//   node --test tests/packaging/
//
// Builds pkg/ when it is older than its sources (bash scripts/build-pkg.sh) and packs it with `npm pack`:
// - the tarball's file list and package.json fields (licences, repository, engines, exports);
// - the error codes: the generated list equals what the Rust sources define;
// - plain Node: the entry imports, and Ferry.open rejects with `unsupported_environment`;
// - a fresh webpack 5 project in headless Chromium (playwright-core): a put/get round trip,
//   Promise methods that reject (never throw), FerryError for every engine error, stable
//   getters, the plain "synced" fields, and a failed wasm load that the next call retries;
// - the TypeScript declarations (tests/types) under strict, lib ES2022 + DOM, no skipLibCheck.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, readFileSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, dirname, extname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { ensurePackage } from '../engine-e2e/harness.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(ROOT, 'package.json'));
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'] }).toString();

// pkg/ is rebuilt when older than the engine's sources or pkg-template/ (the engine tests' rule).
const ensurePkg = ensurePackage;

function packedTarball(into) {
  ensurePkg();
  const out = run('npm', ['pack', '--json', '--pack-destination', into], join(ROOT, 'pkg'));
  const [{ filename, files }] = JSON.parse(out);
  return { tarball: join(into, filename), files: files.map((f) => f.path) };
}

function bundle(config) {
  const webpack = require('webpack');
  return new Promise((resolve, reject) => {
    webpack(config, (err, stats) => {
      if (err) return reject(err);
      if (stats.hasErrors()) return reject(new Error(stats.toString({ all: false, errors: true })));
      resolve(stats);
    });
  });
}

/** A static server of `dir`; while `faults.wasmAsHtml` > 0, .wasm requests get an HTML page. */
function serve(dir, faults = { wasmAsHtml: 0 }) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
  const server = createServer((req, res) => {
    const path = join(dir, req.url === '/' ? 'index.html' : req.url.split('?')[0]);
    if (extname(path) === '.wasm' && faults.wasmAsHtml > 0) {
      faults.wasmAsHtml -= 1;
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>app</title>');
      return;
    }
    if (!path.startsWith(dir) || !existsSync(path)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' });
    res.end(readFileSync(path));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

test('npm pack ships the API, the wasm, the licences and the changelog, and nothing internal', () => {
  const work = mkdtempSync(join(tmpdir(), 'ferry-pack-'));
  try {
    const { files } = packedTarball(work);
    const expected = [
      'package.json', 'README.md', 'CHANGELOG.md', 'LICENSE-MIT', 'LICENSE-APACHE',
      'index.js', 'errors.js', 'observables.js', 'support-log.js', 'index.d.ts', 'error-codes.js', 'error-codes.d.ts', 'early-open.js',
      'react.js', 'react.d.ts', 'vue.js', 'vue.d.ts', 'devtools.js', 'devtools.d.ts', 'ferry.js', 'ferry_bg.wasm',
      'sw.js', 'sw.d.ts', 'background.js',
    ];
    for (const f of expected) assert.ok(files.includes(f), `the tarball contains ${f}`);
    const snippets = files.filter((f) => f.startsWith('snippets/'));
    assert.ok(snippets.some((f) => f.endsWith('/src/store/commit.js')), 'the store snippet is packed');
    const others = files.filter((f) => !expected.includes(f) && !f.startsWith('snippets/'));
    assert.deepEqual(others, [], 'nothing else is packed (no ferry.d.ts with wasm-bindgen internals)');

    const manifest = JSON.parse(readFileSync(join(ROOT, 'pkg', 'package.json'), 'utf8'));
    assert.equal(manifest.name, 'ferry-sync');
    assert.equal(manifest.license, 'MIT OR Apache-2.0');
    // Ferry has no public repository address yet; the manifest must not invent one.
    assert.equal(manifest.repository, undefined, 'no repository address until Ferry has a public one');
    assert.ok(manifest.engines && manifest.engines.node, 'engines.node is set');
    for (const sub of ['.', './react', './vue', './devtools', './sw']) {
      const entry = manifest.exports[sub];
      assert.ok(entry && entry.types && entry.import, `exports["${sub}"] has types and import`);
      assert.ok(files.includes(entry.types.slice(2)) && files.includes(entry.import.slice(2)), `exports["${sub}"] points at packed files`);
    }
    assert.deepEqual(Object.keys(manifest.peerDependenciesMeta).sort(), ['react', 'vue']);
    assert.match(readFileSync(join(ROOT, 'pkg', 'LICENSE-MIT'), 'utf8'), /MIT License/);
    assert.match(readFileSync(join(ROOT, 'pkg', 'LICENSE-APACHE'), 'utf8'), /Apache License/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('the packaged error codes are the ones the Rust sources define (FerryErrorCode is generated)', async () => {
  ensurePkg();
  const { engineErrorCodes } = await import(pathToFileURL(join(ROOT, 'scripts', 'error-codes.mjs')));
  const fromRust = engineErrorCodes();
  // Every ErrorCode of ferry-core, read independently of the generator's own parsing.
  const core = readFileSync(join(ROOT, 'core', 'src', 'error.rs'), 'utf8');
  for (const [, code] of core.matchAll(/ErrorCode::\w+ => "([a-z_]+)"/g)) assert.ok(fromRust.includes(code), `${code} is listed`);
  assert.ok(fromRust.includes('invalid_options') && fromRust.includes('invalid_argument'), 'the API layer\'s codes are listed');
  const { RUST_ERROR_CODES } = await import(pathToFileURL(join(ROOT, 'pkg', 'error-codes.js')));
  assert.deepEqual([...RUST_ERROR_CODES], fromRust, 'pkg/error-codes.js is up to date with the Rust sources');
  const dts = readFileSync(join(ROOT, 'pkg', 'error-codes.d.ts'), 'utf8');
  assert.deepEqual([...dts.matchAll(/\| '([a-z_]+)'/g)].map((m) => m[1]), fromRust, 'the TypeScript union lists the same codes');
  const { FERRY_ERROR_CODES } = await import(pathToFileURL(join(ROOT, 'pkg', 'index.js')));
  assert.deepEqual([...FERRY_ERROR_CODES], [...fromRust, 'wasm_load_failed', 'unsupported_environment']);
});

test('plain Node: the package (public API only) and ferry-sync/devtools import, and Ferry.open rejects with a typed error naming IndexedDB', () => {
  ensurePkg();
  const script = `
    import { Ferry, FerryError } from ${JSON.stringify(pathToFileURL(join(ROOT, 'pkg', 'index.js')).href)};
    import { openInspector } from ${JSON.stringify(pathToFileURL(join(ROOT, 'pkg', 'devtools.js')).href)};
    if (typeof openInspector !== 'function') throw new Error('devtools did not import');
    const entry = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'pkg', 'index.js')).href)});
    const exported = Object.keys(entry).sort().join(',');
    if (exported !== 'FERRY_ERROR_CODES,Ferry,FerryError,init,isFerryError') throw new Error('the entry exports ' + exported);
    const opening = Ferry.open({ name: 'n', url: '/v1', collections: { notes: {} } });
    opening.then(() => console.log(JSON.stringify({ opened: true })), (e) => console.log(JSON.stringify({
      isFerryError: e instanceof FerryError, name: e.name, code: e.code, message: e.message })));`;
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script]).toString());
  assert.equal(out.isFerryError, true);
  assert.equal(out.name, 'FerryError');
  assert.equal(out.code, 'unsupported_environment');
  assert.match(out.message, /IndexedDB/);
});

// The page the webpack test runs: everything it saw goes to window.__result.
const PAGE_SOURCE = `import { Ferry, FerryError, isFerryError } from 'ferry-sync';
const settle = (p) => p.then((value) => ({ value }), (e) => ({ rejected: true, code: e && e.code, ferry: e instanceof FerryError, name: e && e.name }));
(async () => {
  try {
    const options = {
      name: 'packaging-' + Math.random().toString(16).slice(2),
      url: '/v1',
      live: false,
      collections: { notes: { policy: 'merge-fields' } },
      fetch: () => Promise.reject(new TypeError('offline in this test')),
    };
    // The server answers the first .wasm request with an HTML page: that load fails with
    // its own code, and the next open loads the module.
    const failedLoad = await settle(Ferry.open(options));
    const badFetch = await settle(Ferry.open({ ...options, fetch: 'not a function' }));
    const ferry = await Ferry.open(options);
    const seen = [];
    ferry.query('notes').subscribe((rows) => seen.push(rows.length));
    await ferry.put('notes', { id: 'n1', title: 'packed', n: 1 });
    const state = ferry.syncState.getSnapshot();
    const calls = {};
    const attempt = (name, make) => {
      try { calls[name] = settle(make()); } catch (e) { calls[name] = Promise.resolve({ threw: true, code: e && e.code }); }
    };
    attempt('patchMissing', () => ferry.patch('notes', 'missing', { title: 'x' }));
    attempt('deleteMissing', () => ferry.delete('notes', 'missing'));
    attempt('putNoId', () => ferry.put('notes', { title: 'no id' }));
    attempt('putUnknown', () => ferry.put('nope', { id: 'x' }));
    attempt('putFunction', () => ferry.put('notes', { id: 'x', f: () => 1 }));
    let thrown = null;
    try { ferry.query('notes', { orderBy: ['title', 'up'] }); } catch (e) { thrown = { code: e.code, ferry: e instanceof FerryError, guard: isFerryError(e, 'invalid_argument') }; }
    const results = {};
    for (const [k, p] of Object.entries(calls)) results[k] = await p;
    window.__result = {
      failedLoad,
      badFetch,
      record: ferry.get('notes', 'n1'),
      seen,
      state: { outboxDepth: state.outboxDepth, hasPendingWrites: state.hasPendingWrites, synced: state.synced, status: state.status },
      sameGetters: ferry.syncState === ferry.syncState && ferry.conflicts === ferry.conflicts && ferry.deadLetters === ferry.deadLetters,
      sameSnapshot: ferry.syncState.getSnapshot() === ferry.syncState.getSnapshot(),
      results,
      thrown,
      intact: ferry.get('notes', 'n1'),
    };
    await ferry.close();
    window.__result.afterClose = await settle(ferry.put('notes', { id: 'n2' }));
  } catch (e) {
    window.__result = { error: String(e && e.stack || e), code: e && e.code };
  }
})();
`;

test('the packed package bundles with webpack 5 and behaves as the README says in Chromium', async () => {
  const work = mkdtempSync(join(tmpdir(), 'ferry-pack-'));
  try {
    const { tarball } = packedTarball(work);
    const app = join(work, 'app');
    mkdirSync(join(app, 'src'), { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    run('npm', ['install', '--no-audit', '--no-fund', '--offline', tarball], app);
    writeFileSync(join(app, 'src', 'index.js'), PAGE_SOURCE);
    const dist = join(app, 'dist');
    await bundle({
      mode: 'production',
      context: app,
      entry: './src/index.js',
      output: { path: dist, filename: 'main.js', publicPath: '/' },
      resolve: { modules: [join(app, 'node_modules'), join(ROOT, 'node_modules')] },
      performance: { hints: false },
    });
    writeFileSync(join(dist, 'index.html'), '<!doctype html><meta charset="utf-8"><script src="main.js"></script>');

    const faults = { wasmAsHtml: 1 };
    const server = await serve(dist, faults);
    const { chromium } = require('playwright-core');
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${server.address().port}/`);
      await page.waitForFunction(() => window.__result !== undefined && (window.__result.error || window.__result.afterClose));
      const result = await page.evaluate(() => window.__result);
      assert.equal(result.error, undefined, `no error in the page: ${result.error}`);
      assert.equal(faults.wasmAsHtml, 0, 'the first wasm request got the HTML page');
      assert.deepEqual(result.failedLoad, { rejected: true, code: 'wasm_load_failed', ferry: true, name: 'FerryError' });
      assert.deepEqual(result.badFetch, { rejected: true, code: 'invalid_options', ferry: true, name: 'FerryError' });
      assert.deepEqual(result.record, { id: 'n1', title: 'packed', n: 1 });
      assert.deepEqual(result.seen, [0, 1]);
      assert.deepEqual(result.state, { outboxDepth: 1, hasPendingWrites: true, synced: false, status: result.state.status });
      assert.equal(result.sameGetters, true, 'syncState, conflicts and deadLetters return one object each');
      assert.equal(result.sameSnapshot, true);
      const rejected = (code) => ({ rejected: true, code, ferry: true, name: 'FerryError' });
      assert.deepEqual(result.results, {
        patchMissing: rejected('not_found'),
        deleteMissing: rejected('not_found'),
        putNoId: rejected('invalid_id'),
        putUnknown: rejected('unknown_collection'),
        putFunction: rejected('invalid_record'),
      });
      assert.deepEqual(result.thrown, { code: 'invalid_argument', ferry: true, guard: true });
      assert.deepEqual(result.intact, { id: 'n1', title: 'packed', n: 1 }, 'failed calls changed nothing');
      assert.deepEqual(result.afterClose, rejected('closed'));
    } finally {
      await browser.close();
      server.close();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('the TypeScript declarations type-check (tests/types/check.ts)', () => {
  ensurePkg();
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  assert.doesNotThrow(() => run(process.execPath, [tsc, '-p', join(ROOT, 'tests', 'types')], ROOT));
});
