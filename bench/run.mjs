// Ferry's side-by-side benchmarks. Run through `bash scripts/bench.sh` (which builds first).
//
//   node bench/run.mjs [--reps 5] [--n 10000] [--write1 200] [--push 1000]
//                      [--only write1,writeMany,cold,sync,server,size] [--engines idb,dexie,...]
//                      [--reps-many N] [--report-only]
//                      [--only scale --scale 10000,100000,1000000 --scale-reps 3 --scale-puts 30]
//                      [--pull-latency MS] [--alt-pkg DIR (adds engine ferry-alt)] [--out NAME]
//
// Browser benchmarks run in headless Chromium (Debian's /usr/bin/chromium via playwright-core),
// each engine in a fresh profile per repetition, engines interleaved (rotated, alternating
// direction) across repetitions. Server benchmarks run ferry-server on loopback against
// SQLite and PostgreSQL, beside the driver baseline of bench/server-bench. Results:
// bench/results/latest.json and bench/results/latest.md. Nothing here asserts a timing.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { serve } from './lib/serve.mjs';
import { summarize } from './lib/stats.mjs';
import { buildPages, ENGINES, WWW, PKG } from './build-pages.mjs';
import { writeReport } from './lib/report.mjs';
import { serverTools } from './lib/ferry-server.mjs';
import { benchScale, SCALE_ENGINES } from './lib/scale.mjs';
import { writeScaleReport } from './lib/scale-report.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const TMP = path.join(here, 'results', 'tmp');

// ------------------------------------------------------------------ options
const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  // The usage is this file's opening comment, so the two cannot drift apart.
  const source = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8');
  const lines = source.split('\n');
  const usage = lines.slice(0, lines.findIndex((l) => !l.startsWith('//')));
  console.log(usage.map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const REPS = Number(opt('reps', 5));
const REPS_MANY = Number(opt('reps-many', REPS)); // the 10,000-write benchmark (peers take ~1 min each)
const N = Number(opt('n', 10000));
const WRITE1 = Number(opt('write1', 200));
const WARMUP = Number(opt('warmup', 20));
const PUSH_N = Number(opt('push', 1000));
// Added round-trip latency (ms) for the pull benchmark, through Chromium's network emulation,
// the same for Ferry and the limit: loopback has none, a device's network does.
const PULL_LATENCY_MS = Number(opt('pull-latency', 0));
const SERVER_BATCHES = Number(opt('server-batches', 40));
const SERVER_REPS = Number(opt('server-reps', 3));
const ONLY = new Set(opt('only', 'write1,writeMany,cold,sync,server,size,scale').split(','));
// The scale section (issue 16): sizes, repetitions per size, puts per live-query figure,
// leader commits for the follower figure, pull samples per size, one page's timeout.
const SCALE = {
  sizes: opt('scale', '10000,100000,1000000').split(',').map(Number),
  reps: Number(opt('scale-reps', 3)),
  puts: Number(opt('scale-puts', 30)),
  putsAll: Number(opt('scale-puts-all', 10)),
  follow: Number(opt('scale-follow', 20)),
  pullReps: Number(opt('scale-pull-reps', 1)),
  warmup: 5,
  timeoutMs: Number(opt('scale-timeout', 900_000)),
};
const ENGINE_LIST = opt('engines', ENGINES.join(',')).split(',');
// A second build of Ferry's package measured in the same run as engine `ferry-alt` (e.g. other
// size settings), so its figures are comparable with `ferry`'s: --alt-pkg DIR --engines ...,ferry-alt
const ALT_PKG = opt('alt-pkg', null);
// The report's file name: results/<out>.{md,json} (default latest).
const OUT = opt('out', 'latest');
const isFerry = (e) => e === 'ferry' || e === 'ferry-alt';
const pagePath = (e) => (e === 'ferry-alt' ? 'alt/ferry' : e);
const PG_URL = opt('pg', process.env.FERRY_BENCH_POSTGRES_URL || 'postgres://ferry:ferry@127.0.0.1:5432/ferry_bench');
const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, 'target');
const SERVER_BIN = opt('server-bin', path.join(targetDir, 'release', 'ferry-server'));
const BENCH_BIN = opt(
  'bench-bin',
  path.join(process.env.FERRY_BENCH_TARGET_DIR || path.join(here, 'server-bench', 'target'), 'release', 'ferry-server-bench'),
);
const { startServer, token, seedServer } = serverTools(SERVER_BIN);

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const log = (...a) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

// ------------------------------------------------------------------ browser helpers
function freshProfile(label) {
  fs.mkdirSync(path.join(TMP, 'profiles'), { recursive: true });
  return fs.mkdtempSync(path.join(TMP, 'profiles', `${label}-`));
}

async function withBrowser(profile, fn) {
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  try {
    const page = ctx.pages()[0] || (await ctx.newPage());
    page.setDefaultTimeout(600_000);
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    return await fn(page, ctx, errors);
  } finally {
    await ctx.close();
  }
}

async function openEngine(page, origin, engine, errors, query = '') {
  await page.goto(`${origin}/${pagePath(engine)}.html${query}`);
  await page.waitForFunction(() => window.B || window.COLD, null, { timeout: 60_000 }).catch(() => {
    throw new Error(`${engine}: page did not start: ${errors.join(' | ')}`);
  });
}

/** Engine order for repetition `rep`: rotated by rep, reversed on odd reps. */
function orderFor(list, rep) {
  const k = rep % list.length;
  const rotated = [...list.slice(k), ...list.slice(0, k)];
  return rep % 2 ? rotated.reverse() : rotated;
}

async function rmProfile(p) {
  fs.rmSync(p, { recursive: true, force: true });
}

// ------------------------------------------------------------------ benchmarks
const results = {
  meta: {},
  write1: {},
  subscribe: {},
  writeMany: {},
  cold: {},
  sync: {},
  server: {},
  size: {},
  errors: [],
};
const push = (obj, key, v) => (obj[key] = obj[key] || []).push(v);

async function benchWrite1(origin, engines) {
  for (let rep = 0; rep < REPS; rep++) {
    for (const engine of orderFor(engines, rep)) {
      const profile = freshProfile(`${engine}-w1`);
      try {
        await withBrowser(profile, async (page, ctx, errors) => {
          await openEngine(page, origin, engine, errors);
          await page.evaluate(() => window.B.open());
          // Local benchmarks run with the browser offline: no engine's network loop competes.
          await ctx.setOffline(true);
          const r = await page.evaluate((o) => window.B.writeOne(o), { warmup: WARMUP, n: WRITE1 });
          push(results.write1, engine, r.lat);
          if (isFerry(engine)) {
            const s = await page.evaluate((o) => window.B.subscribeLatency(o), { warmup: WARMUP, n: WRITE1 });
            push(results.subscribe, engine, s);
          }
        });
        log(`write1 rep ${rep + 1}/${REPS} ${engine}: median ${summarize(results.write1[engine].at(-1)).median.toFixed(2)} ms`);
      } catch (e) {
        results.errors.push({ bench: 'write1', engine, rep, error: String(e.message || e) });
        log(`write1 ${engine} FAILED: ${e.message || e}`);
      } finally {
        await rmProfile(profile);
      }
    }
  }
}

async function benchWriteMany(origin, engines) {
  for (let rep = 0; rep < REPS_MANY; rep++) {
    for (const engine of orderFor(engines, rep)) {
      const profile = freshProfile(`${engine}-wm`);
      try {
        await withBrowser(profile, async (page, ctx, errors) => {
          await openEngine(page, origin, engine, errors);
          await page.evaluate(() => window.B.open());
          await ctx.setOffline(true);
          const r = await page.evaluate((o) => window.B.writeMany(o), { n: N });
          if (r.count !== N) throw new Error(`stored ${r.count} of ${N}`);
          push(results.writeMany, engine, r.ms);
          log(`writeMany rep ${rep + 1}/${REPS_MANY} ${engine}: ${r.ms.toFixed(0)} ms`);
        });
      } catch (e) {
        results.errors.push({ bench: 'writeMany', engine, rep, error: String(e.message || e) });
        log(`writeMany ${engine} FAILED: ${e.message || e}`);
      } finally {
        await rmProfile(profile);
      }
    }
  }
}

async function benchCold(origin, engines, ferrySeed) {
  for (let rep = 0; rep < REPS; rep++) {
    for (const engine of orderFor(engines, rep)) {
      const profile = freshProfile(`${engine}-cold`);
      try {
        // Seed with the engine's own bulk path (Ferry: a pull from the server, so its outbox is
        // empty as after a normal session), then close the browser.
        await withBrowser(profile, async (page, _ctx, errors) => {
          await openEngine(page, origin, engine, errors);
          if (isFerry(engine) && ferrySeed) {
            const r = await page.evaluate((o) => window.B.seedByPull(o), ferrySeed);
            if (r.count !== N) throw new Error(`seeded ${r.count} of ${N}`);
          } else {
            await page.evaluate(() => window.B.open());
            const r = await page.evaluate((o) => window.B.seed(o), { n: N });
            if (r.count !== N) throw new Error(`seeded ${r.count} of ${N}`);
          }
        });
        // A new browser on the same profile: a fresh page load opens and reads everything.
        await withBrowser(profile, async (page, _ctx, errors) => {
          await openEngine(page, origin, engine, errors, '?cold=1');
          await page.waitForFunction(() => window.COLD, null, { timeout: 120_000 });
          const cold = await page.evaluate(() => window.COLD);
          if (cold.error) throw new Error(cold.error);
          if (cold.rows !== N) throw new Error(`read ${cold.rows} of ${N}`);
          push(results.cold, engine, cold);
          log(`cold rep ${rep + 1}/${REPS} ${engine}: ${cold.sincePage.toFixed(0)} ms from page start (${cold.sinceNav.toFixed(0)} since navigation, ${cold.inScript.toFixed(0)} in script)`);
        });
      } catch (e) {
        results.errors.push({ bench: 'cold', engine, rep, error: String(e.message || e) });
        log(`cold ${engine} FAILED: ${e.message || e}`);
      } finally {
        await rmProfile(profile);
      }
    }
  }
}

async function benchSync(origin, site, engines) {
  const dbFile = path.join(TMP, `sync-${Date.now()}.db`);
  const database = `sqlite://${dbFile}`;
  const server = await startServer(database);
  site.setUpstream(server);
  try {
    const pullTok = token(database, 'bench-pull');
    await seedServer(server.url, pullTok, N);
    const pushTok = token(database, 'bench-push');
    const sides = engines.filter((e) => isFerry(e) || e === 'idb');
    for (let rep = 0; rep < REPS; rep++) {
      for (const engine of orderFor(sides, rep)) {
        // pull N records into an empty profile
        const profile = freshProfile(`${engine}-pull`);
        try {
          await withBrowser(profile, async (page, _ctx, errors) => {
            await openEngine(page, origin, engine, errors);
            if (PULL_LATENCY_MS > 0) {
              const cdp = await page.context().newCDPSession(page);
              await cdp.send('Network.enable');
              await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: PULL_LATENCY_MS, downloadThroughput: -1, uploadThroughput: -1 });
            }
            let r;
            if (isFerry(engine)) {
              r = await page.evaluate((o) => window.B.pull(o), { base: origin, token: pullTok, n: N });
            } else {
              r = await page.evaluate((o) => window.B.pullLimit(o), { base: origin, token: pullTok, limit: ferryPullLimit() });
            }
            if (r.total !== N) throw new Error(`pulled ${r.total} of ${N}`);
            push(results.sync, `pull:${engine}`, r.ms);
            log(`pull rep ${rep + 1}/${REPS} ${engine}: ${r.ms.toFixed(0)} ms (${r.pages ?? '?'} pages)`);
          });
        } catch (e) {
          results.errors.push({ bench: 'pull', engine, rep, error: String(e.message || e) });
          log(`pull ${engine} FAILED: ${e.message || e}`);
        } finally {
          await rmProfile(profile);
        }
        // push PUSH_N mutations queued offline
        const profile2 = freshProfile(`${engine}-push`);
        try {
          await withBrowser(profile2, async (page, ctx, errors) => {
            await openEngine(page, origin, engine, errors);
            let r;
            const clientId = `pc${rep}${engine.replace(/[^a-z]/g, '')}${Date.now() % 100000}`;
            if (isFerry(engine)) {
              await page.evaluate(() => window.B.init());
              await ctx.setOffline(true);
              await page.evaluate((o) => window.B.queueOffline(o), { base: origin, token: pushTok, n: PUSH_N });
              await ctx.setOffline(false);
              r = await page.evaluate(() => window.B.drain());
            } else {
              await page.evaluate(() => window.B.open());
              r = await page.evaluate((o) => window.B.pushLimit(o), { base: origin, token: pushTok, n: PUSH_N, batch: ferryPushBatch(), clientId });
            }
            if (r.sent !== PUSH_N) throw new Error(`pushed ${r.sent} of ${PUSH_N}`);
            push(results.sync, `push:${engine}`, r.ms);
            log(`push rep ${rep + 1}/${REPS} ${engine}: ${r.ms.toFixed(0)} ms`);
          });
        } catch (e) {
          results.errors.push({ bench: 'push', engine, rep, error: String(e.message || e) });
          log(`push ${engine} FAILED: ${e.message || e}`);
        } finally {
          await rmProfile(profile2);
        }
      }
    }
  } finally {
    site.setUpstream(null);
    await server.stop();
    for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) fs.rmSync(f, { force: true });
  }
}

// Ferry's own page size and push batch (read from the engine's source when it says; else the
// protocol defaults), so the limit moves the same pages and batches.
function ferryPullLimit() {
  return Number(process.env.FERRY_BENCH_PULL_LIMIT || results.meta.ferryPullLimit || 500);
}
function ferryPushBatch() {
  return Number(process.env.FERRY_BENCH_PUSH_BATCH || results.meta.ferryPushBatch || 500);
}

function benchBin(args) {
  const out = execFileSync(BENCH_BIN, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').at(-1));
}

async function pgAvailable() {
  try {
    benchBin(['reset', '--database', PG_URL]);
    return true;
  } catch (e) {
    results.errors.push({ bench: 'server', engine: 'postgres', error: `PostgreSQL at ${PG_URL} unavailable: ${String(e.message || e).slice(0, 300)}` });
    return false;
  }
}

async function benchServer() {
  const backends = ['sqlite'];
  if (await pgAvailable()) backends.push('postgres');
  const CLIENTS = [8, 32];
  for (let rep = 0; rep < SERVER_REPS; rep++) {
    for (const backend of rep % 2 ? [...backends].reverse() : backends) {
      for (const clients of CLIENTS) {
        for (const side of rep % 2 ? ['driver', 'server'] : ['server', 'driver']) {
          const key = `${backend}:${clients}:${side}`;
          let database;
          let dbFile;
          if (backend === 'sqlite') {
            dbFile = path.join(TMP, `srv-${Date.now()}-${clients}-${side}.db`);
            database = `sqlite://${dbFile}`;
          } else {
            benchBin(['reset', '--database', PG_URL]);
            database = PG_URL;
          }
          // Every side starts from a database the server itself created (its migrations).
          const server = await startServer(database);
          try {
            let r;
            if (side === 'server') {
              const tok = token(database, 'bench');
              r = benchBin(['http', '--url', server.url, '--token', tok, '--clients', String(clients), '--batch', '50', '--batches', String(SERVER_BATCHES), '--tag', `h${rep}`]);
            } else {
              await server.stop();
              r = benchBin(['driver', '--database', database, '--clients', String(clients), '--batch', '50', '--batches', String(SERVER_BATCHES), '--tag', `d${rep}`, '--tenant', 'bench', '--pool', '10']);
            }
            push(results.server, key, r);
            log(`server rep ${rep + 1}/${SERVER_REPS} ${key}: ${r.rate.toFixed(0)} mutations/s, p99 ${r.p99_ms.toFixed(1)} ms`);
          } catch (e) {
            results.errors.push({ bench: 'server', engine: key, rep, error: String(e.message || e).slice(0, 500) });
            log(`server ${key} FAILED: ${e.message || e}`);
          } finally {
            await server.stop();
            if (dbFile) for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`, `${dbFile}.secret`]) fs.rmSync(f, { force: true });
          }
        }
      }
    }
  }
}

function benchSize() {
  const pkg = PKG;
  if (!fs.existsSync(pkg)) return;
  // Every .wasm and .js the package ships, including wasm-bindgen's snippets/ (the JS half
  // of the IndexedDB store).
  for (const f of fs.readdirSync(pkg, { recursive: true })) {
    if (!/\.(wasm|js)$/.test(f)) continue;
    const data = fs.readFileSync(path.join(pkg, f));
    results.size[f] = { raw: data.length, gzip: zlib.gzipSync(data, { level: 9 }).length };
  }
}

// ------------------------------------------------------------------ main
async function main() {
  if (argv.includes('--report-only')) {
    // Re-render latest.md from latest.json (e.g. after editing results/findings.md).
    const saved = JSON.parse(fs.readFileSync(path.join(here, 'results', 'latest.json'), 'utf8'));
    for (const k of ['summary', 'headline']) delete saved[k];
    const { md } = writeReport(saved, path.join(here, 'results'));
    log(`rewrote ${path.relative(root, md)}`);
    return;
  }
  fs.mkdirSync(TMP, { recursive: true });
  // Snapshot pkg/ (unless scripts/bench.sh already did, right after building it).
  if (!process.env.FERRY_BENCH_PKG && fs.existsSync(path.join(root, 'pkg', 'ferry_bg.wasm'))) {
    fs.rmSync(PKG, { recursive: true, force: true });
    fs.cpSync(path.join(root, 'pkg'), PKG, { recursive: true });
  }
  const haveFerry = ['ferry_bg.wasm', 'index.js'].every((f) => fs.existsSync(path.join(PKG, f))) && fs.existsSync(path.join(here, 'pages', 'ferry.js'));
  const engines = ENGINE_LIST.filter((e) => (e !== 'ferry' || haveFerry) && (e !== 'ferry-alt' || (ALT_PKG && haveFerry)));
  if (ENGINE_LIST.includes('ferry') && !haveFerry) results.errors.push({ bench: 'all', engine: 'ferry', error: `${PKG} is not the built package: run bash scripts/build-pkg.sh` });
  const pageSizes = await buildPages([...ONLY].some((k) => k !== 'scale') ? engines : [], ONLY.has('scale') ? SCALE_ENGINES.filter((e) => engines.includes(e)) : [], ALT_PKG);
  let chromiumVersion = '';
  try {
    chromiumVersion = execFileSync('/usr/bin/chromium', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    /* reported as unknown */
  }
  Object.assign(results.meta, {
    date: new Date().toISOString(),
    commit: execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim(),
    chromium: chromiumVersion,
    pullLatencyMs: PULL_LATENCY_MS,
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    loadavgAtStart: os.loadavg(),
    reps: REPS,
    repsMany: REPS_MANY,
    n: N,
    write1: WRITE1,
    warmup: WARMUP,
    pushN: PUSH_N,
    serverBatches: SERVER_BATCHES,
    serverReps: SERVER_REPS,
    engines,
    pageBundleBytes: pageSizes,
  });
  readFerryParams();
  const site = await serve(WWW);
  const haveServer = fs.existsSync(SERVER_BIN);
  try {
    if (ONLY.has('write1')) await benchWrite1(site.origin, engines);
    if (ONLY.has('writeMany')) await benchWriteMany(site.origin, engines);
    if (ONLY.has('cold')) {
      let ferrySeed = null;
      let seedServerHandle = null;
      if (engines.some(isFerry) && haveServer) {
        const dbFile = path.join(TMP, `cold-${Date.now()}.db`);
        const database = `sqlite://${dbFile}`;
        seedServerHandle = await startServer(database);
        site.setUpstream(seedServerHandle);
        const tok = token(database, 'bench-cold');
        await seedServer(seedServerHandle.url, tok, N, 'coldseeder');
        ferrySeed = { base: site.origin, token: tok, n: N };
      }
      try {
        // Both raw variants read the same record store: one raw row is enough here.
        await benchCold(site.origin, engines.filter((e) => e !== 'idb-ferrylike' && e !== 'idb-onevalue'), ferrySeed);
      } finally {
        site.setUpstream(null);
        if (seedServerHandle) await seedServerHandle.stop();
      }
    }
    if (ONLY.has('sync')) {
      if (haveServer) await benchSync(site.origin, site, engines);
      else results.errors.push({ bench: 'sync', engine: 'all', error: `${SERVER_BIN} missing` });
    }
    if (ONLY.has('server')) {
      if (haveServer && fs.existsSync(BENCH_BIN)) await benchServer();
      else results.errors.push({ bench: 'server', engine: 'all', error: `${SERVER_BIN} or ${BENCH_BIN} missing` });
    }
    if (ONLY.has('size')) benchSize();
    if (ONLY.has('scale')) {
      if (haveServer) {
        fs.mkdirSync(path.join(TMP, 'profiles'), { recursive: true });
        await benchScale({
          site,
          serverTools: { startServer, token },
          tmp: TMP,
          chromiumArgs: CHROMIUM_ARGS,
          log,
          results,
          opts: { ...SCALE, engines, pullLimit: ferryPullLimit() },
        });
      } else results.errors.push({ bench: 'scale', engine: 'all', error: `${SERVER_BIN} missing` });
    }
  } finally {
    await site.close();
  }
  results.meta.loadavgAtEnd = os.loadavg();
  if (results.scale) {
    const s = writeScaleReport(results, path.join(here, 'results'), OUT === 'latest' ? 'scale-latest' : `scale-${OUT}`);
    log(`wrote ${path.relative(root, s.json)} and ${path.relative(root, s.md)}`);
  }
  // A scale-only run leaves latest.{md,json} (the other sections' last run) as they are.
  if ([...ONLY].some((k) => k !== 'scale')) {
    const { json, md } = writeReport(results, path.join(here, 'results'), OUT);
    log(`wrote ${path.relative(root, json)} and ${path.relative(root, md)}`);
  }
}

/** Reads Ferry's pull page size and push batch from the engine source, when it names them. */
function readFerryParams() {
  const grab = (re) => {
    for (const dir of ['src', 'core/src']) {
      const walk = (d) => {
        for (const f of fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }) : []) {
          const p = path.join(d, f.name);
          if (f.isDirectory()) {
            const v = walk(p);
            if (v) return v;
          } else if (f.name.endsWith('.rs')) {
            const m = fs.readFileSync(p, 'utf8').match(re);
            if (m) return Number(m[1].replace(/_/g, ''));
          }
        }
        return null;
      };
      const v = walk(path.join(root, dir));
      if (v) return v;
    }
    return null;
  };
  // The replica's default page size is either a literal or the protocol's maximum.
  results.meta.ferryPullLimit = grab(/pull_limit:\s*([\d_]+),/) || grab(/MAX_PULL_LIMIT:\s*u32\s*=\s*([\d_]+)/) || undefined;
  results.meta.ferryPushBatch = grab(/DEFAULT_BATCH_SIZE:\s*usize\s*=\s*([\d_]+)/) || undefined;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
