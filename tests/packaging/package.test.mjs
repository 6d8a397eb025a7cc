// Packaging test: the packed npm package works in a fresh webpack 5 project in Chromium.
//
//   node --test tests/packaging/
//
// Builds pkg/ when it is missing (bash scripts/build-pkg.sh), packs it with `npm pack`,
// installs the tarball into a temporary project, bundles it with webpack 5 (from this
// repository's devDependencies), serves the bundle and runs it in headless Chromium through
// playwright-core: a put/get round trip through IndexedDB, and the TypeScript declarations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, readFileSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, dirname, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(ROOT, 'package.json'));
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'] }).toString();

function packedTarball(into) {
  if (!existsSync(join(ROOT, 'pkg', 'index.js')) || !existsSync(join(ROOT, 'pkg', 'ferry_bg.wasm'))) {
    run('bash', ['scripts/build-pkg.sh'], ROOT);
  }
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

function serve(dir) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
  const server = createServer((req, res) => {
    const path = join(dir, req.url === '/' ? 'index.html' : req.url.split('?')[0]);
    if (!path.startsWith(dir) || !existsSync(path)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' });
    res.end(readFileSync(path));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

test('the packed package bundles with webpack 5 and round-trips a record in Chromium', async () => {
  const work = mkdtempSync(join(tmpdir(), 'ferry-pack-'));
  try {
    const { tarball, files } = packedTarball(work);
    for (const f of ['package.json', 'index.js', 'index.d.ts', 'early-open.js', 'ferry.js', 'ferry_bg.wasm', 'README.md']) {
      assert.ok(files.includes(f), `the tarball contains ${f}`);
    }
    const app = join(work, 'app');
    mkdirSync(join(app, 'src'), { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    run('npm', ['install', '--no-audit', '--no-fund', '--offline', tarball], app);
    writeFileSync(
      join(app, 'src', 'index.js'),
      `import { Ferry } from 'ferry-sync';
(async () => {
  try {
    const ferry = await Ferry.open({
      name: 'packaging-' + Math.random().toString(16).slice(2),
      url: '/v1',
      live: false,
      collections: { notes: { policy: 'merge-fields' } },
      fetch: () => Promise.reject(new TypeError('offline in this test')),
    });
    const seen = [];
    ferry.query('notes').subscribe((rows) => seen.push(rows.length));
    await ferry.put('notes', { id: 'n1', title: 'packed', n: 1 });
    window.__result = { record: ferry.get('notes', 'n1'), seen, depth: ferry.syncState.getSnapshot().outboxDepth };
    await ferry.close();
  } catch (e) {
    window.__result = { error: String(e && e.stack || e), code: e && e.code };
  }
})();
`,
    );
    writeFileSync(join(app, 'index.html'), '<!doctype html><meta charset="utf-8"><script src="main.js"></script>');
    const dist = join(app, 'dist');
    await bundle({
      mode: 'production',
      context: app,
      entry: './src/index.js',
      output: { path: dist, filename: 'main.js', publicPath: '/' },
      resolve: { modules: [join(app, 'node_modules'), join(ROOT, 'node_modules')] },
      performance: { hints: false },
    });
    writeFileSync(join(dist, 'index.html'), readFileSync(join(app, 'index.html')));

    const server = await serve(dist);
    const { chromium } = require('playwright-core');
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${server.address().port}/`);
      await page.waitForFunction(() => window.__result !== undefined);
      const result = await page.evaluate(() => window.__result);
      assert.equal(result.error, undefined, `no error in the page: ${result.error}`);
      assert.deepEqual(result.record, { id: 'n1', title: 'packed', n: 1 });
      assert.deepEqual(result.seen, [0, 1]);
      assert.equal(result.depth, 1);
    } finally {
      await browser.close();
      server.close();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('the TypeScript declarations type-check (tests/types/check.ts)', () => {
  if (!existsSync(join(ROOT, 'pkg', 'index.d.ts'))) {
    run('bash', ['scripts/build-pkg.sh'], ROOT);
  }
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  assert.doesNotThrow(() => run(process.execPath, [tsc, '-p', join(ROOT, 'tests', 'types')], ROOT));
});
