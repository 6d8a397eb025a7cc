// Bundles each engine's benchmark page with esbuild (production, minified) into
// bench/results/tmp/www/, one HTML page + one bundle per engine. The Ferry page also gets
// the engine's wasm from pkg/.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const WWW = path.join(here, 'results', 'tmp', 'www');

// The engine's npm package the Ferry page uses: a snapshot of pkg/ taken when the run starts
// (other builds may rewrite pkg/ while a run is going on).
export const PKG = process.env.FERRY_BENCH_PKG || path.join(here, 'results', 'tmp', 'pkg');

export const ENGINES = ['idb', 'idb-onevalue', 'dexie', 'rxdb', 'pouchdb', 'ferry', 'idb-ferrylike'];

/** Builds `engines`' pages and the scale section's pages (`scale-<engine>`) of `scaleEngines`. */
/** `ferry-alt` is the Ferry page built against `altPkg`, served from alt/ (its own wasm). */
export async function buildPages(engines = ENGINES, scaleEngines = [], altPkg = null) {
  fs.mkdirSync(WWW, { recursive: true });
  const sizes = {};
  for (const engine of [...engines, ...scaleEngines.map((e) => `scale-${e}`)]) {
    const alt = engine === 'ferry-alt';
    const pkg = alt ? altPkg : PKG;
    const name = alt ? 'ferry' : engine;
    const dir = alt ? path.join(WWW, 'alt') : WWW;
    fs.mkdirSync(dir, { recursive: true });
    const entry = path.join(here, 'pages', `${name}.js`);
    const result = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'chrome120',
      minify: true,
      outfile: path.join(dir, `${name}.js`),
      define: { 'process.env.NODE_ENV': '"production"', global: 'globalThis' },
      // The package entry, as an app imports it.
      // The package entry, as an app imports it; the scale page also reaches the wasm-bindgen
      // module the entry loads (for the size of the wasm memory).
      alias: { ferry: path.join(pkg, 'index.js'), 'ferry-wasm': path.join(pkg, 'ferry.js') },
      logLevel: 'error',
      metafile: true,
    });
    sizes[engine] = Object.values(result.metafile.outputs).reduce((a, o) => a + o.bytes, 0);
    fs.writeFileSync(
      path.join(dir, `${name}.html`),
      `<!doctype html><meta charset="utf-8"><title>${engine}</title><script>window.T0 = performance.now();</script><script type="module" src="${name}.js"></script>\n`,
    );
    if (name === 'ferry' || name === 'scale-ferry') {
      fs.copyFileSync(path.join(pkg, 'ferry_bg.wasm'), path.join(dir, 'ferry_bg.wasm'));
    }
  }
  return sizes;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const sizes = await buildPages(process.argv.slice(2).length ? process.argv.slice(2) : ENGINES);
  console.log(sizes);
}
