// The scale section (issue 16): at each size, Ferry beside Dexie 4 and raw IndexedDB, in the
// same run, fresh browser profiles. Per size: ferry-server is seeded once; each engine fills
// one template profile its own bulk way (Ferry: a pull from the server, which is also the pull
// figure; Dexie: bulkPut; raw IndexedDB: one transaction per 20,000 puts), and every repetition
// runs in a fresh copy of that template (the seeded database already on disk), measuring
//   (a) navigation → first page of 50 ordered by `n` returned (a new browser, one page load),
//   (e) memory with the records open (after (a): the browser's own measure, cross-origin
//       isolated; CDP's JS heap; Ferry's wasm memory),
//   (b) put() → a live 50-row query shows the record (median and max over the puts),
//   (c) put() → a live whole-list query shows it,
//   (f) a follower tab: time from a leader-tab commit to the follower's live page showing it,
//       and the follower's main-thread time (CDP TaskDuration) per leader commit;
// and (d) a pull of every record from ferry-server into an empty profile (Ferry), beside raw
// IndexedDB fetching the same pages and writing each in one transaction (the floor).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { scaleFields, scaleRecord } from '../pages/scale-common.js';

/** Leader commits the follower takes in before its figures are measured (see (f)). */
export const FOLLOW_WARMUP = 2;

export const SCALE_ENGINES = ['ferry', 'dexie', 'idb'];
const MB = 1 << 20;

/** Seeds `n` scale records into ferry-server through its push API, `clients` at a time. */
async function seedScaleServer(url, tok, n, clients = 4, batch = 500) {
  let next = 0;
  const client = async (c) => {
    const clientId = `scaleseed${c}`;
    let seq = 0;
    for (;;) {
      const start = next;
      next += batch;
      if (start >= n) return;
      const mutations = [];
      for (let i = start; i < Math.min(n, start + batch); i++) {
        seq += 1;
        mutations.push({
          op_id: `${clientId}.${seq}`,
          client_id: clientId,
          seq,
          collection: 'notes',
          record_id: scaleRecord(i).id,
          op: 'create',
          base_version: 0,
          patch: scaleFields(i),
          hlc: `${String(Date.now()).padStart(15, '0')}-${String(seq).padStart(10, '0')}-${clientId}`,
        });
      }
      const r = await fetch(`${url}/v1/sync/mutations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json', 'idempotency-key': `${clientId}-${seq}` },
        body: JSON.stringify({ client_id: clientId, mutations }),
      });
      if (!r.ok) throw new Error(`scale seed push ${r.status}: ${await r.text()}`);
      const ans = await r.json();
      if (ans.accepted.length !== mutations.length) throw new Error(`scale seed: ${JSON.stringify(ans).slice(0, 300)}`);
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
}

/** Bytes of the stored data as JSON (the yardstick of the memory target). */
function storedBytes(n) {
  let b = 0;
  for (let i = 0; i < n; i++) b += JSON.stringify(scaleRecord(i)).length;
  return b;
}

export async function benchScale({ site, serverTools, tmp, chromiumArgs, log, opts, results }) {
  const { startServer, token } = serverTools;
  const out = (results.scale = { sizes: opts.sizes, reps: opts.reps, puts: opts.puts, putsAll: opts.putsAll, follow: opts.follow, bySize: {}, errors: [] });
  const engines = opts.engines.filter((e) => SCALE_ENGINES.includes(e));
  const fail = (size, bench, engine, e, rep) => {
    const error = String(e?.message || e).slice(0, 600);
    out.errors.push({ size, bench, engine, rep, error });
    log(`scale ${size} ${bench} ${engine} FAILED: ${error}`);
  };

  async function withBrowser(profile, fn) {
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      // The browser's own memory measure without its up-to-20-second wait for a GC.
      args: [...chromiumArgs, '--enable-blink-features=ForceEagerMeasureMemory'],
    });
    try {
      const errors = [];
      const watch = (page) => {
        page.setDefaultTimeout(opts.timeoutMs);
        page.on('pageerror', (e) => errors.push(String(e)));
        page.on('crash', () => errors.push('the page crashed'));
        // FERRY_BENCH_CONSOLE=1: the pages' console in the bench's output (for debugging a run).
        if (process.env.FERRY_BENCH_CONSOLE) page.on('console', (m) => console.log('[page]', m.text().slice(0, 300)));
        page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
        return page;
      };
      const page = watch(ctx.pages()[0] || (await ctx.newPage()));
      return await fn({ page, ctx, errors, newPage: async () => watch(await ctx.newPage()) });
    } finally {
      await ctx.close().catch(() => {});
    }
  }
  const load = async (page, engine, errors, query = '') => {
    await page.goto(`${site.origin}/scale-${engine}.html${query}`);
    await page.waitForFunction(() => window.S, null, { timeout: 60_000 }).catch(() => {
      throw new Error(`${engine}: page did not start: ${errors.join(' | ')}`);
    });
  };
  // page.evaluate has no timeout of its own: a page that never answers fails after timeoutMs.
  const withErrors = async (errors, p) => {
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    });
    try {
      return await Promise.race([p, late]);
    } catch (e) {
      throw new Error(`${String(e.message || e).split('\n')[0]}${errors.length ? ` | page: ${errors.slice(-3).join(' | ')}` : ''}`);
    } finally {
      clearTimeout(timer);
    }
  };

  for (const size of opts.sizes) {
    const S = (out.bySize[size] = { stored: storedBytes(size), first: {}, memory: {}, putPage: {}, putAll: {}, follower: {}, pull: {}, seed: {} });
    const dbFile = path.join(tmp, `scale-${size}-${Date.now()}.db`);
    const database = `sqlite://${dbFile}`;
    const server = await startServer(database);
    site.setUpstream(server);
    const templates = {};
    try {
      const tok = token(database, 'bench-scale');
      let t0 = Date.now();
      await seedScaleServer(server.url, tok, size);
      log(`scale ${size}: server seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

      // Template profiles, one per engine.
      for (const engine of engines) {
        const profile = fs.mkdtempSync(path.join(tmp, 'profiles', `scale-${engine}-${size}-`));
        try {
          await withBrowser(profile, async ({ page, errors }) => {
            await load(page, engine, errors);
            t0 = Date.now();
            let r;
            if (engine === 'ferry') {
              r = await withErrors(errors, page.evaluate((o) => window.S.pull(o), { token: tok, n: size, timeoutMs: opts.timeoutMs - 10_000 }));
              if (r.total !== size) throw new Error(`pulled ${r.total} of ${size}`);
              (S.pull.ferry ||= []).push(r.ms);
            } else {
              await page.evaluate(() => window.S.open());
              r = await withErrors(errors, page.evaluate((o) => window.S.seed(o), { from: 0, to: size }));
              if (r.count !== size) throw new Error(`seeded ${r.count} of ${size}`);
            }
            S.seed[engine] = Date.now() - t0;
            log(`scale ${size}: ${engine} template seeded in ${(S.seed[engine] / 1000).toFixed(1)} s${engine === 'ferry' ? ' (a pull from ferry-server)' : ''}`);
          });
          templates[engine] = profile;
        } catch (e) {
          fail(size, 'seed', engine, e);
          fs.rmSync(profile, { recursive: true, force: true });
        }
      }

      // (d) the floor of the pull: raw IndexedDB fetching Ferry's pages.
      if (engines.includes('idb')) {
        for (let rep = 0; rep < opts.pullReps; rep++) {
          const profile = fs.mkdtempSync(path.join(tmp, 'profiles', `scale-idbpull-${size}-`));
          try {
            await withBrowser(profile, async ({ page, errors }) => {
              await load(page, 'idb', errors);
              const r = await withErrors(errors, page.evaluate((o) => window.S.pullLimit(o), { token: tok, limit: opts.pullLimit }));
              if (r.total !== size) throw new Error(`pulled ${r.total} of ${size}`);
              (S.pull.idb ||= []).push(r.ms);
              log(`scale ${size}: idb pull ${r.ms.toFixed(0)} ms`);
            });
          } catch (e) {
            fail(size, 'pull', 'idb', e, rep);
          } finally {
            fs.rmSync(profile, { recursive: true, force: true });
          }
        }
      }
      // More Ferry pull samples beyond the template's.
      if (engines.includes('ferry') && templates.ferry) {
        for (let rep = 1; rep < opts.pullReps; rep++) {
          const profile = fs.mkdtempSync(path.join(tmp, 'profiles', `scale-ferrypull-${size}-`));
          try {
            await withBrowser(profile, async ({ page, errors }) => {
              await load(page, 'ferry', errors);
              const r = await withErrors(errors, page.evaluate((o) => window.S.pull(o), { token: tok, n: size, timeoutMs: opts.timeoutMs - 10_000 }));
              if (r.total !== size) throw new Error(`pulled ${r.total} of ${size}`);
              S.pull.ferry.push(r.ms);
              log(`scale ${size}: ferry pull ${r.ms.toFixed(0)} ms`);
            });
          } catch (e) {
            fail(size, 'pull', 'ferry', e, rep);
          } finally {
            fs.rmSync(profile, { recursive: true, force: true });
          }
        }
      }
      // The server is not needed from here on: the pages run without a token.
      site.setUpstream(null);
      await server.stop();

      const present = engines.filter((e) => templates[e]);
      for (let rep = 0; rep < opts.reps; rep++) {
        const k = rep % present.length;
        const rotated = [...present.slice(k), ...present.slice(0, k)];
        for (const engine of rep % 2 ? rotated.reverse() : rotated) {
          const profile = fs.mkdtempSync(path.join(tmp, 'profiles', `scale-${engine}-${size}-r${rep}-`));
          fs.cpSync(templates[engine], profile, { recursive: true });
          try {
            await withBrowser(profile, async ({ page, errors, newPage }) => {
              // (a) first page from page load
              await load(page, engine, errors, '?first=1');
              await withErrors(errors, page.waitForFunction(() => window.FIRST, null, { timeout: opts.timeoutMs }));
              const first = await page.evaluate(() => window.FIRST);
              if (first.error) throw new Error(first.error);
              if (first.rows !== 50 || first.firstN !== 0) throw new Error(`first page: ${JSON.stringify(first)}`);
              (S.first[engine] ||= []).push(first.sinceNav);
              if (first.settledMs != null) ((S.settled ||= {})[engine] ||= []).push(first.settledMs);
              // (e) memory with the records open
              const cdp = await page.context().newCDPSession(page);
              await cdp.send('HeapProfiler.collectGarbage');
              await cdp.send('Performance.enable');
              const metrics = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
              const uaBytes = await page.evaluate(async () => (self.crossOriginIsolated && performance.measureUserAgentSpecificMemory ? (await performance.measureUserAgentSpecificMemory()).bytes : null));
              const wasm = engine === 'ferry' ? await page.evaluate(() => window.S.wasmMemory()) : 0;
              (S.memory[engine] ||= []).push({ ua: uaBytes, jsHeap: metrics.JSHeapUsedSize, wasm, heapPlusWasm: metrics.JSHeapUsedSize + wasm });
              log(`scale ${size} rep ${rep + 1} ${engine}: first page ${first.sinceNav.toFixed(0)} ms${first.settledMs != null ? ` (everything loaded at ${first.settledMs.toFixed(0)} ms)` : ''}; memory ${uaBytes == null ? '—' : (uaBytes / MB).toFixed(1)} MB (browser), JS heap ${(metrics.JSHeapUsedSize / MB).toFixed(1)} MB + wasm ${(wasm / MB).toFixed(1)} MB`);
              // (b) put → live page
              const pp = await withErrors(errors, page.evaluate((o) => window.S.putToLive(o), { kind: 'page', warmup: opts.warmup, n: opts.puts, tag: 'pp' }));
              (S.putPage[engine] ||= []).push(pp);
              // (c) put → live whole list
              const nAll = size >= 1_000_000 ? Math.min(opts.putsAll, 3) : opts.putsAll;
              const pa = await withErrors(errors, page.evaluate((o) => window.S.putToLive(o), { kind: 'all', warmup: 1, n: nAll, tag: 'pa' }));
              (S.putAll[engine] ||= []).push(pa);
              log(`scale ${size} rep ${rep + 1} ${engine}: put→live page median ${median(pp.lat).toFixed(1)} ms max ${Math.max(...pp.lat).toFixed(1)}; put→live list median ${median(pa.lat).toFixed(0)} ms`);
              // (f) a follower tab
              const follower = await newPage();
              await load(follower, engine, errors);
              await withErrors(errors, follower.evaluate(() => window.S.open()));
              await withErrors(errors, follower.evaluate(() => window.S.follow()));
              const fcdp = await follower.context().newCDPSession(follower);
              await fcdp.send('Performance.enable');
              const task = async () => Object.fromEntries((await fcdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
              // Warm-up: the tabs meet (each announces by key what it committed before) and
              // the first commits' one-off costs pass before the measured ones.
              for (let i = 0; i < FOLLOW_WARMUP; i++) {
                const c = await withErrors(errors, page.evaluate((o) => window.S.leaderPut(o), { tag: 'fw', i }));
                await withErrors(errors, follower.evaluate((o) => window.S.followerSaw(o), { id: c.id }));
              }
              const lat = [];
              const leaderPuts = [];
              // At 1,000,000 a follower that reloads everything per commit takes minutes each.
              const nFollow = size >= 1_000_000 ? Math.min(opts.follow, 3) : opts.follow;
              const profiling = process.env.FERRY_BENCH_FOLLOWER_PROFILE;
              const lcdp = profiling ? await page.context().newCDPSession(page) : null;
              if (profiling) {
                for (const c of [fcdp, lcdp]) {
                  await c.send('Profiler.enable');
                  await c.send('Profiler.setSamplingInterval', { interval: 100 });
                  await c.send('Profiler.start');
                }
              }
              const before = await task();
              for (let i = 0; i < nFollow; i++) {
                const c = await withErrors(errors, page.evaluate((o) => window.S.leaderPut(o), { tag: 'fl', i }));
                const seenAt = await withErrors(errors, follower.evaluate((o) => window.S.followerSaw(o), { id: c.id }));
                lat.push(seenAt - c.committed);
                leaderPuts.push(c.committed - c.t0);
              }
              const after = await task();
              if (profiling) {
                const { profile: cpuProfile } = await fcdp.send('Profiler.stop');
                fs.mkdirSync(profiling, { recursive: true });
                const file = path.join(profiling, `follower-${engine}-${size}-r${rep}.cpuprofile`);
                fs.writeFileSync(file, JSON.stringify(cpuProfile));
                log(`scale ${size} rep ${rep + 1} ${engine}: follower CPU profile in ${file}; most self time:\n${topSelfTime(cpuProfile, 12)}`);
                const { profile: leaderProfile } = await lcdp.send('Profiler.stop');
                const leaderFile = path.join(profiling, `leader-${engine}-${size}-r${rep}.cpuprofile`);
                fs.writeFileSync(leaderFile, JSON.stringify(leaderProfile));
                log(`scale ${size} rep ${rep + 1} ${engine}: leader CPU profile in ${leaderFile}; most self time:\n${topSelfTime(leaderProfile, 16)}`);
              }
              const cpu = ((after.TaskDuration - before.TaskDuration) * 1000) / nFollow;
              const script = ((after.ScriptDuration - before.ScriptDuration) * 1000) / nFollow;
              (S.follower[engine] ||= []).push({ lat, cpuMsPerCommit: cpu, scriptMsPerCommit: script });
              log(`scale ${size} rep ${rep + 1} ${engine}: follower sees a commit after ${median(lat).toFixed(1)} ms (median), ${cpu.toFixed(1)} ms main-thread per commit; the leader's put() took ${median(leaderPuts).toFixed(1)} ms (median)`);
            });
          } catch (e) {
            fail(size, 'run', engine, e, rep);
          } finally {
            fs.rmSync(profile, { recursive: true, force: true });
          }
        }
      }
    } catch (e) {
      fail(size, 'size', 'all', e);
    } finally {
      site.setUpstream(null);
      await server.stop();
      for (const p of Object.values(templates)) fs.rmSync(p, { recursive: true, force: true });
      for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`, `${dbFile}.secret`]) fs.rmSync(f, { force: true });
    }
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * The functions with the most self time in a CDP CPU profile, one per line (for
 * FERRY_BENCH_FOLLOWER_PROFILE, which profiles the follower tab over the measured commits).
 */
function topSelfTime(profile, n) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  const deltas = profile.timeDeltas || [];
  (profile.samples || []).forEach((id, i) => {
    const frame = byId.get(id)?.callFrame;
    const name = `${frame?.functionName || '(anonymous)'} ${frame?.url ? frame.url.split('/').pop() : ''}`.trim();
    self.set(name, (self.get(name) || 0) + (deltas[i] || 0) / 1000);
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, ms]) => `    ${ms.toFixed(1).padStart(8)} ms  ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${name}`)
    .join('\n');
}
