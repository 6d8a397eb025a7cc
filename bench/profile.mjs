// Where does the time go? Runs one browser benchmark of one engine under the Chrome DevTools
// Protocol's sampling CPU profiler and prints the functions with the most self time (JS and
// wasm; wasm names need the name section, which wasm-opt keeps unless told to strip it).
// Pages must have been built by a run of bench/run.mjs (bench/results/tmp/www/).
//
//   node bench/profile.mjs --engine ferry --bench writeMany --n 10000 [--top 30] [--trace out.json]
//   node bench/profile.mjs --engine ferry --bench cold --n 10000 --server-bin target/release/ferry-server [--idb-trace]
//
// `cold` seeds the profile (Ferry: by a pull from a ferry-server it starts), restarts the
// browser and profiles the page load that opens and reads everything.
// --trace also records a Chromium trace (devtools.timeline, IndexedDB and v8 categories) to
// the file, for chrome://tracing or Perfetto.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './lib/serve.mjs';
import { WWW } from './build-pages.mjs';
import { serverTools } from './lib/ferry-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const opt = (k, d) => (argv.includes(`--${k}`) ? argv[argv.indexOf(`--${k}`) + 1] : d);
const engine = opt('engine', 'ferry');
const bench = opt('bench', 'writeMany');
const n = Number(opt('n', 10000));
const top = Number(opt('top', 30));
const traceFile = opt('trace', null);

const site = await serve(WWW);
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-profile-'));
const launch = () =>
  chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
if (bench === 'cold') {
  // Seed, then close the browser; the profiled load below reopens the same profile.
  const seedCtx = await launch();
  const page = seedCtx.pages()[0] || (await seedCtx.newPage());
  page.setDefaultTimeout(600_000);
  await page.goto(`${site.origin}/${engine}.html`);
  await page.waitForFunction(() => window.B);
  let server = null;
  if (engine === 'ferry') {
    const tools = serverTools(opt('server-bin', 'target/release/ferry-server'));
    const db = path.join(os.tmpdir(), `ferry-profile-${Date.now()}.db`);
    server = await tools.startServer(`sqlite://${db}`);
    site.setUpstream(server);
    const tok = tools.token(`sqlite://${db}`, 'profile');
    await tools.seedServer(server.url, tok, n);
    console.log(await page.evaluate((o) => window.B.seedByPull(o), { base: site.origin, token: tok, n }));
    site.setUpstream(null);
  } else {
    await page.evaluate(() => window.B.open());
    console.log(await page.evaluate((o) => window.B.seed(o), { n }));
  }
  await seedCtx.close();
  if (server) await server.stop();
}
const ctx = await launch();
try {
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.setDefaultTimeout(600_000);
  const cdp = await ctx.newCDPSession(page);
  if (bench !== 'cold') {
    await page.goto(`${site.origin}/${engine}.html${argv.includes('--idb-trace') ? '?trace=1' : ''}`);
    await page.waitForFunction(() => window.B);
    await page.evaluate(() => window.B.open());
    await ctx.setOffline(true); // as in run.mjs: no network loop competes
  }
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
  let traceChunks = null;
  if (traceFile) {
    traceChunks = [];
    cdp.on('Tracing.dataCollected', (e) => traceChunks.push(...e.value));
    await cdp.send('Tracing.start', {
      categories: 'devtools.timeline,v8,v8.execute,disabled-by-default-v8.cpu_profiler,IndexedDB,blink,toplevel',
      transferMode: 'ReportEvents',
    });
  }
  await cdp.send('Profiler.start');
  const t0 = Date.now();
  let result;
  if (bench === 'cold') {
    await page.goto(`${site.origin}/${engine}.html?cold=1${argv.includes('--idb-trace') ? '&trace=1' : ''}`);
    await page.waitForFunction(() => window.COLD, null, { timeout: 120_000 });
    result = await page.evaluate(() => window.COLD);
  } else if (bench === 'writeMany') {
    result = await page.evaluate((o) => window.B.writeMany(o), { n });
  } else {
    result = await page.evaluate((o) => window.B.writeOne(o), { warmup: 10, n });
  }
  const wall = Date.now() - t0;
  const idbTrace = await page.evaluate(() => window.IDB_TRACE || null);
  if (idbTrace) {
    // Consecutive requests of the same kind are folded into one line.
    const folded = [];
    for (const e of idbTrace.sort((a, b) => a.start - b.start)) {
      const last = folded.at(-1);
      if (last && last.op === e.op && last.store === e.store && e.start <= last.end + 1) {
        last.count += 1;
        last.end = Math.max(last.end, e.end);
      } else folded.push({ ...e, count: 1 });
    }
    console.log('IndexedDB / locks / fetch timeline (ms since navigation start):');
    for (const e of folded.slice(-Number(opt('trace-lines', 80)))) console.log(`  ${String(e.start).padStart(9)} → ${String(e.end).padStart(9)}  ${e.op} ${e.store}${e.count > 1 ? ` ×${e.count}` : ''}${e.n != null ? ` (${e.n} rows)` : ''}`);
  }
  const { profile: cpu } = await cdp.send('Profiler.stop');
  if (traceFile) {
    const done = new Promise((r) => cdp.once('Tracing.tracingComplete', r));
    await cdp.send('Tracing.end');
    await done;
    fs.writeFileSync(traceFile, JSON.stringify({ traceEvents: traceChunks }));
  }
  // Self time per function from the sampled profile.
  const byId = new Map(cpu.nodes.map((nd) => [nd.id, nd]));
  const self = new Map();
  const dt = cpu.timeDeltas;
  for (let i = 0; i < cpu.samples.length; i++) {
    const nd = byId.get(cpu.samples[i]);
    const f = nd.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url ? path.basename(f.url) : ''}${f.url ? `:${f.lineNumber}` : ''}`;
    self.set(key, (self.get(key) || 0) + (dt[i] || 0) / 1000);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log(`${engine} ${bench} n=${n}: page result ${JSON.stringify(result).slice(0, 400)}; wall ${wall} ms; sampled ${total.toFixed(0)} ms`);
  for (const [k, ms] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${ms.toFixed(1).padStart(9)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${k}`);
  }
  fs.writeFileSync(path.join(here, 'results', 'tmp', `${engine}-${bench}.cpuprofile`), JSON.stringify(cpu));
} finally {
  await ctx.close();
  await site.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
