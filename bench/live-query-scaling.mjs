// Diagnostic: what a write costs a subscribed live query as the collection grows, with and
// without a declared index, and how long the first page takes after a page load. Serves the
// built package (pkg/, `bash scripts/build-pkg.sh`) from a scratch page; sync off.
//
//   node bench/live-query-scaling.mjs [--sizes 10000,100000] [--writes 30]
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './lib/serve.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const arg = (name, fallback) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : fallback);
const sizes = arg('--sizes', '10000,100000').split(',').map(Number);
const writes = Number(arg('--writes', '30'));

const site = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-lq-site-'));
fs.cpSync(path.join(ROOT, 'pkg'), site, { recursive: true });
fs.writeFileSync(
  path.join(site, 'page.html'),
  `<!doctype html><script type="module">
import { Ferry } from './index.js';
const t0 = performance.now();
const indexed = new URLSearchParams(location.search).has('indexed');
const collections = { notes: indexed ? { policy: 'merge-fields', indexes: ['updatedAt'] } : { policy: 'merge-fields' } };
const ferry = await Ferry.open({ name: 'lq', url: '/v1', live: false, collections });
const page = ferry.query('notes', { orderBy: ['updatedAt', 'desc'], limit: 50 });
let first = null;
page.subscribe((rows) => { if (first === null && rows.length) first = performance.now() - t0; });
let bump = Date.now();
const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
const max = (a) => Math.max(...a);
window.L = {
  first: () => first,
  async seed(n, from) {
    for (let i = 0; i < n; i += 1000) {
      let last;
      for (let j = i; j < Math.min(n, i + 1000); j++) {
        const k = from + j;
        last = ferry.put('notes', { id: 'n' + String(k).padStart(8, '0'), title: 'note ' + k, body: 'x'.repeat(200), updatedAt: (k * 7919) % 1000003 });
      }
      await last;
    }
  },
  async latency(query, n, tag) {
    const q = ferry.query('notes', query);
    let seen = 0;
    const stop = q.subscribe(() => { seen++; });
    const times = [];
    for (let i = 0; i < n; i++) {
      const before = seen;
      const t = performance.now();
      const done = ferry.put('notes', { id: tag + i, title: tag, body: 'y', updatedAt: bump++ });
      if (seen === before) throw new Error('the subscriber did not hear the write inside put()');
      times.push(performance.now() - t);
      await done;
    }
    stop();
    return { median: med(times), max: max(times) };
  },
  memory: () => (performance.memory ? performance.memory.usedJSHeapSize : null),
};
window.ready = true;
</script>`,
);
const server = await serve(site);
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-lq-profile-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--enable-precise-memory-info'],
});
try {
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.setDefaultTimeout(900_000);
  let stored = 0;
  for (const n of sizes) {
    for (const indexed of [false, true]) {
      await page.goto(`${server.origin}/page.html${indexed ? '?indexed' : ''}`);
      await page.waitForFunction(() => window.ready);
      if (n > stored) {
        await page.evaluate(([k, from]) => window.L.seed(k, from), [n - stored, stored]);
        stored = n;
        await page.goto(`${server.origin}/page.html${indexed ? '?indexed' : ''}`);
        await page.waitForFunction(() => window.ready);
      }
      await page.waitForFunction(() => window.L.first() !== null);
      const first = await page.evaluate(() => window.L.first());
      const paged = await page.evaluate((k) => window.L.latency({ orderBy: ['updatedAt', 'desc'], limit: 50 }, k, 'p' + Math.random().toString(36).slice(2, 6)), writes);
      const whole = await page.evaluate((k) => window.L.latency({}, k, 'w' + Math.random().toString(36).slice(2, 6)), Math.min(writes, 10));
      const heap = await page.evaluate(() => window.L.memory());
      console.log(
        `${n} records, ${indexed ? 'index on updatedAt' : 'no index'}: page load → first page of 50 ${first.toFixed(0)} ms; ` +
          `put() → live 50-row page median ${paged.median.toFixed(2)} ms (max ${paged.max.toFixed(2)}); ` +
          `put() → live whole list median ${whole.median.toFixed(1)} ms; JS heap ${heap === null ? '?' : (heap / 1e6).toFixed(0) + ' MB'}`,
      );
    }
  }
} finally {
  await ctx.close();
  await server.close();
  fs.rmSync(profile, { recursive: true, force: true });
  fs.rmSync(site, { recursive: true, force: true });
}
