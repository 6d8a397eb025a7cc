// The bundler matrix: the packed ferry-sync in a fresh project per bundler, loaded in
// headless Chromium, where a probe opens Ferry, writes, reads and checks a rejection
// (helpers.mjs PROBE). Vite 8 (dev without any config, and build), Vite 5 (esbuild
// pre-bundling: dev and build with the README's `optimizeDeps.exclude`), webpack 5
// (development and production), Rollup, esbuild, and a module Web Worker.
//
//   npm ci --prefix tests/bundlers && node --test tests/bundlers/matrix.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { createServer as netServer } from 'node:net';
import { join } from 'node:path';
import {
  EXPECTED_PROBE,
  PROBE,
  ensureMatrixDeps,
  launchChromium,
  packedTarball,
  probeResult,
  project,
  requireRoot,
  serveStatic,
  urlOf,
} from './helpers.mjs';

let browser;

before(async () => {
  ensureMatrixDeps();
  packedTarball();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
});

const PAGE = '<!doctype html><meta charset="utf-8"><script type="module" src="/src/main.js"></script>';
const MAIN = `import { probe } from './probe.js';\nprobe().then((r) => { globalThis.__result = r; });\n`;

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

function viteProject(name, config) {
  return project(name, {
    'index.html': PAGE,
    'src/main.js': MAIN,
    'src/probe.js': PROBE,
    // A plain object: `defineConfig` would import whichever `vite` resolves first.
    'vite.config.js': `export default ${JSON.stringify(config)};\n`,
  });
}

async function viteDev(vite, dir) {
  const port = await freePort();
  const server = await vite.createServer({
    root: dir,
    configFile: join(dir, 'vite.config.js'),
    logLevel: 'error',
    server: { host: '127.0.0.1', port, strictPort: true },
  });
  await server.listen();
  try {
    return await probeResult(browser, `http://127.0.0.1:${port}/`);
  } finally {
    await server.close();
  }
}

async function viteBuild(vite, dir) {
  await vite.build({ root: dir, configFile: join(dir, 'vite.config.js'), logLevel: 'error' });
  return servedProbe(join(dir, 'dist'));
}

async function servedProbe(dist) {
  const server = await serveStatic(dist);
  try {
    return await probeResult(browser, `${urlOf(server)}/`);
  } finally {
    server.close();
  }
}

const vite8 = () => import('vite');
const vite5 = () => import('vite5');

test('Vite 8 dev server, no ferry-sync config at all', async () => {
  const dir = viteProject('vite8-dev', {});
  assert.deepEqual(await viteDev(await vite8(), dir), EXPECTED_PROBE);
});

test('Vite 8 build, no ferry-sync config at all', async () => {
  const dir = viteProject('vite8-build', {});
  assert.deepEqual(await viteBuild(await vite8(), dir), EXPECTED_PROBE);
});

test('Vite 5 dev server (esbuild pre-bundling) with the README\'s optimizeDeps.exclude', async () => {
  const dir = viteProject('vite5-dev', { optimizeDeps: { exclude: ['ferry-sync'] } });
  assert.deepEqual(await viteDev(await vite5(), dir), EXPECTED_PROBE);
});

test('Vite 5 dev server without the exclude: the load fails with wasm_load_failed and says what to add', async () => {
  // Why the README asks for the exclude: pre-bundling moves the module away from its .wasm.
  const dir = viteProject('vite5-dev-no-exclude', {});
  const result = await viteDev(await vite5(), dir);
  assert.equal(result.code, 'wasm_load_failed', JSON.stringify(result));
  assert.match(result.error, /optimizeDeps/);
});

test('Vite 5 build with the README\'s optimizeDeps.exclude', async () => {
  const dir = viteProject('vite5-build', { optimizeDeps: { exclude: ['ferry-sync'] } });
  assert.deepEqual(await viteBuild(await vite5(), dir), EXPECTED_PROBE);
});

test('a module Web Worker (Vite 8 build, worker.format es) opens Ferry in the worker', async () => {
  const dir = project('worker', {
    'index.html': PAGE,
    'src/main.js': `const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
worker.onmessage = (e) => { globalThis.__result = e.data; };
worker.onerror = (e) => { globalThis.__result = { error: 'worker: ' + e.message }; };
`,
    'src/worker.js': `import { probe } from './probe.js';\nprobe().then((r) => postMessage({ ...r, inWorker: typeof document === 'undefined' }));\n`,
    'src/probe.js': PROBE,
    'vite.config.js': `export default ${JSON.stringify({ worker: { format: 'es' } })};\n`,
  });
  assert.deepEqual(await viteBuild(await vite8(), dir), { ...EXPECTED_PROBE, inWorker: true });
});

for (const mode of ['development', 'production']) {
  test(`webpack 5 (${mode})`, async () => {
    const dir = project(`webpack-${mode}`, { 'src/main.js': MAIN, 'src/probe.js': PROBE });
    const dist = join(dir, 'dist');
    const webpack = requireRoot('webpack');
    await new Promise((resolve, reject) =>
      webpack(
        {
          mode,
          context: dir,
          entry: './src/main.js',
          output: { path: dist, filename: 'main.js', publicPath: '/' },
          devtool: false,
          performance: { hints: false },
        },
        (err, stats) => (err ? reject(err) : stats.hasErrors() ? reject(new Error(stats.toString('errors-only'))) : resolve()),
      ),
    );
    writeFileSync(join(dist, 'index.html'), '<!doctype html><meta charset="utf-8"><script src="/main.js"></script>');
    assert.deepEqual(await servedProbe(dist), EXPECTED_PROBE);
  });
}

test('Rollup 4 with @rollup/plugin-node-resolve (the .wasm copied next to the bundle)', async () => {
  const dir = project('rollup', { 'src/main.js': MAIN, 'src/probe.js': PROBE });
  const dist = join(dir, 'dist');
  const { rollup } = await import('rollup');
  const { nodeResolve } = await import('@rollup/plugin-node-resolve');
  const bundle = await rollup({ input: join(dir, 'src', 'main.js'), plugins: [nodeResolve({ browser: true })] });
  await bundle.write({ dir: dist, format: 'es', entryFileNames: 'main.js' });
  await bundle.close();
  copyFileSync(join(dir, 'node_modules', 'ferry-sync', 'ferry_bg.wasm'), join(dist, 'ferry_bg.wasm'));
  writeFileSync(join(dist, 'index.html'), '<!doctype html><meta charset="utf-8"><script type="module" src="/main.js"></script>');
  assert.deepEqual(await servedProbe(dist), EXPECTED_PROBE);
});

test('esbuild (format esm, the .wasm copied next to the bundle)', async () => {
  const dir = project('esbuild', { 'src/main.js': MAIN, 'src/probe.js': PROBE });
  const dist = join(dir, 'dist');
  await requireRoot('esbuild').build({
    entryPoints: [join(dir, 'src', 'main.js')],
    bundle: true,
    format: 'esm',
    outfile: join(dist, 'main.js'),
    logLevel: 'error',
  });
  copyFileSync(join(dir, 'node_modules', 'ferry-sync', 'ferry_bg.wasm'), join(dist, 'ferry_bg.wasm'));
  writeFileSync(join(dist, 'index.html'), '<!doctype html><meta charset="utf-8"><script type="module" src="/main.js"></script>');
  assert.deepEqual(await servedProbe(dist), EXPECTED_PROBE);
});

