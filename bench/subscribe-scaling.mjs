// Diagnostic: how Ferry's write latency with a subscribed live query grows with the number of
// rows the query holds. Uses the pages of the last run (bench/results/tmp/www/).
//
//   node bench/subscribe-scaling.mjs [--rows 0,1000]
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serve } from './lib/serve.mjs';
import { WWW } from './build-pages.mjs';

const argv = process.argv.slice(2);
const sizes = (argv.includes('--rows') ? argv[argv.indexOf('--rows') + 1] : '0,1000').split(',').map(Number);
const site = await serve(WWW);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-sub-'));
const ctx = await chromium.launchPersistentContext(dir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.setDefaultTimeout(300_000);
  await page.goto(`${site.origin}/ferry.html`);
  await page.waitForFunction(() => window.B);
  await page.evaluate(() => window.B.open());
  await ctx.setOffline(true);
  let stored = 0;
  for (const rows of sizes) {
    if (rows > stored) {
      await page.evaluate((o) => window.B.seed(o), { n: rows - stored, tag: `s${rows}` });
      stored = rows;
    }
    const r = await page.evaluate(() => window.B.subscribeLatency({ warmup: 3, n: 20, tag: `q${Math.random().toString(36).slice(2, 6)}` }));
    const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
    console.log(`~${rows} rows in the query: put→callback median ${med(r.seen).toFixed(2)} ms, put→resolved median ${med(r.resolved).toFixed(2)} ms, callback first in ${r.before}/20`);
  }
} finally {
  await ctx.close();
  await site.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
