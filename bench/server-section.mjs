// The server section of the benchmarks on its own: ferry-server against its driver baseline
// (bench/server-bench) on SQLite and PostgreSQL at 8 and 32 clients, and idle polls plain vs
// conditional (If-None-Match → 304), and whole-log pulls with permission filtering (partial
// sync) beside the same pulls unfiltered, in the same run. Writes
// bench/results/server-<date>.{json,md}; leaves latest.md (the full run's report) alone.
//
//   node bench/server-section.mjs [--reps 3] [--batches 40] [--poll-requests 400]
//     [--sections push,poll,filtered] [--filtered-records 4000] [--filtered-rounds 3]
//     [--server-bin target/release/ferry-server] [--bench-bin bench/server-bench/target/release/ferry-server-bench]
//
// PostgreSQL: FERRY_BENCH_POSTGRES_URL (every table is dropped between runs: use a scratch
// database). Both binaries must be built first (scripts/bench.sh builds them).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serverTools } from './lib/ferry-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const REPS = Number(opt('reps', 3));
const BATCHES = Number(opt('batches', 40));
const POLL_REQUESTS = Number(opt('poll-requests', 400));
const SECTIONS = new Set(opt('sections', 'push,poll,filtered').split(','));
const FILTERED_RECORDS = Number(opt('filtered-records', 4000));
const FILTERED_ROUNDS = Number(opt('filtered-rounds', 3));
// Partial sync: 8 users; each owns 1/8 of the notes and each note is shared with the next
// user, so a user may read 2/8 of the log. "open": the same notes readable by the tenant.
const FILTER_USERS = Array.from({ length: 8 }, (_, i) => `u${i}`);
const FILTER_CONFIGS = {
  open: '[collections.notes]\nread = ["tenant"]\n',
  filtered: '[collections.notes]\nread = ["owner", "users_in:shared_with"]\nupdate = ["owner"]\n',
};
const SERVER_BIN = opt('server-bin', path.join(root, 'target', 'release', 'ferry-server'));
const BENCH_BIN = opt('bench-bin', path.join(here, 'server-bench', 'target', 'release', 'ferry-server-bench'));
const PG_URL = process.env.FERRY_BENCH_POSTGRES_URL || '';
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-server-bench-'));
const { startServer, token } = serverTools(SERVER_BIN);

const bench = (args) => JSON.parse(execFileSync(BENCH_BIN, args, { encoding: 'utf8', maxBuffer: 1 << 20 }).trim().split('\n').at(-1));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null;
};
const fmt = (x, d = 0) => (x == null ? '—' : x.toFixed(d));
const log = (...a) => console.error('[server-section]', ...a);

async function database(backend, name) {
  if (backend === 'sqlite') {
    const file = path.join(TMP, `${name}-${Date.now()}.db`);
    const cleanup = () => {
      for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}.secret`]) fs.rmSync(f, { force: true });
    };
    return { url: `sqlite://${file}`, cleanup };
  }
  bench(['reset', '--database', PG_URL]);
  return { url: PG_URL, cleanup: () => {} };
}

const results = { push: {}, poll: {}, filtered: {}, errors: [] };

/** Seeds FILTERED_RECORDS notes, 1/8 created by each user (the owner), each shared with the next user. */
async function seedShared(url, tokens) {
  const per = Math.ceil(FILTERED_RECORDS / FILTER_USERS.length);
  for (const [u, user] of FILTER_USERS.entries()) {
    const next = FILTER_USERS[(u + 1) % FILTER_USERS.length];
    for (let start = 0; start < per; start += 500) {
      const mutations = [];
      for (let i = start; i < Math.min(per, start + 500); i++) {
        mutations.push({
          op_id: `${user}.${i + 1}`, client_id: `seed-${user}`, seq: i + 1, collection: 'notes',
          record_id: `${user}-${String(i).padStart(6, '0')}`, op: 'create', base_version: 0,
          patch: { title: `Note ${i} of ${user}`, body: 'Site visit notes: check the north wall for damp.', shared_with: [next] },
          hlc: `${String(Date.now()).padStart(15, '0')}-${String(i).padStart(10, '0')}-seed-${user}`,
        });
      }
      const r = await fetch(`${url}/v1/sync/mutations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens[u]}`, 'content-type': 'application/json', 'idempotency-key': `seed-${user}-${start}` },
        body: JSON.stringify({ client_id: `seed-${user}`, mutations }),
      });
      if (!r.ok) throw new Error(`seed push ${r.status}: ${await r.text()}`);
    }
  }
}
const record = (bucket, key, r) => (bucket[key] ||= []).push(r);

const backends = ['sqlite'];
if (PG_URL) {
  try {
    bench(['reset', '--database', PG_URL]);
    backends.push('postgres');
  } catch (e) {
    results.errors.push(`PostgreSQL unavailable: ${e.message}`);
  }
}

for (let rep = 0; rep < REPS; rep++) {
  for (const backend of rep % 2 ? [...backends].reverse() : backends) {
    for (const clients of SECTIONS.has('push') ? [8, 32] : []) {
      for (const side of rep % 2 ? ['driver', 'server'] : ['server', 'driver']) {
        const key = `${backend}:${clients}:${side}`;
        const db = await database(backend, `${clients}-${side}`);
        // Every side starts from a database the server itself created (its migrations).
        const server = await startServer(db.url);
        try {
          let r;
          if (side === 'server') {
            r = bench(['http', '--url', server.url, '--token', token(db.url, 'bench'), '--clients', String(clients), '--batch', '50', '--batches', String(BATCHES), '--tag', `h${rep}`]);
          } else {
            await server.stop();
            r = bench(['driver', '--database', db.url, '--clients', String(clients), '--batch', '50', '--batches', String(BATCHES), '--tag', `d${rep}`, '--tenant', 'bench', '--pool', '10']);
          }
          record(results.push, key, r);
          log(`rep ${rep + 1}/${REPS} ${key}: ${r.rate.toFixed(0)} mutations/s, p99 ${r.p99_ms.toFixed(1)} ms`);
        } catch (e) {
          results.errors.push(`${key} rep ${rep}: ${String(e.message || e).slice(0, 400)}`);
        } finally {
          await server.stop();
          db.cleanup();
        }
      }
    }
    // Whole-log pulls, open and filtered, on servers seeded alike (alternating which goes first).
    if (SECTIONS.has('filtered')) {
      for (const view of rep % 2 ? ['filtered', 'open'] : ['open', 'filtered']) {
        const db = await database(backend, `pull-${view}`);
        const configFile = path.join(TMP, `${view}.toml`);
        fs.writeFileSync(configFile, FILTER_CONFIGS[view]);
        const server = await startServer(db.url, ['--config', configFile]);
        try {
          const tokens = FILTER_USERS.map((u) => token(db.url, 'bench', u));
          await seedShared(server.url, tokens);
          for (const clients of [8, 32]) {
            const key = `${backend}:${clients}:${view}`;
            const r = bench(['pull', '--url', server.url, '--tokens', tokens.join(','), '--clients', String(clients), '--rounds', String(FILTERED_ROUNDS), '--limit', '500']);
            record(results.filtered, key, r);
            log(`rep ${rep + 1}/${REPS} pull ${key}: ${r.whole_pulls_per_second.toFixed(2)} whole-log pulls/s, ${r.records_per_second.toFixed(0)} records/s, p99 ${r.p99_ms.toFixed(1)} ms`);
          }
        } catch (e) {
          results.errors.push(`pull ${backend} ${view} rep ${rep}: ${String(e.message || e).slice(0, 400)}`);
        } finally {
          await server.stop();
          db.cleanup();
        }
      }
    }
    if (!SECTIONS.has('poll')) continue;
    // Idle polls: one tenant with 500 records, every pull from its head.
    const db = await database(backend, 'poll');
    const server = await startServer(db.url);
    try {
      const tok = token(db.url, 'bench');
      bench(['http', '--url', server.url, '--token', tok, '--clients', '1', '--batch', '50', '--batches', '10', '--tag', `p${rep}`]);
      for (const clients of [8, 32]) {
        for (const conditional of rep % 2 ? [1, 0] : [0, 1]) {
          const key = `${backend}:${clients}:${conditional ? 'conditional' : 'plain'}`;
          const r = bench(['poll', '--url', server.url, '--token', tok, '--clients', String(clients), '--requests', String(POLL_REQUESTS), '--conditional', String(conditional)]);
          record(results.poll, key, r);
          log(`rep ${rep + 1}/${REPS} poll ${key}: ${r.requests_per_second.toFixed(0)} requests/s, p99 ${r.p99_ms.toFixed(2)} ms`);
        }
      }
    } catch (e) {
      results.errors.push(`poll ${backend} rep ${rep}: ${String(e.message || e).slice(0, 400)}`);
    } finally {
      await server.stop();
      db.cleanup();
    }
  }
}

const meta = {
  date: new Date().toISOString(),
  commit: execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim(),
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model,
  loadavg: os.loadavg(),
  reps: REPS,
  batches: BATCHES,
  pollRequests: POLL_REQUESTS,
};
const out = [`# Ferry server benchmark — server section`, '', `${meta.date} · commit ${meta.commit} · ${meta.cpus} × ${meta.cpuModel} · load average at end ${meta.loadavg.map((x) => x.toFixed(2)).join(' ')} · ${REPS} repetitions, sides and backends alternated.`, ''];
if (SECTIONS.has('push')) {
out.push('## Push: server vs driver', '', `Each client pushes ${BATCHES} batches of 50 creates on its own connection. "driver": the same rows written straight through sqlx, one transaction per batch, prepared statements reused, records and ops as one multi-row INSERT each, the client's seq once per batch (bench/server-bench). Target: server ≥ 0.5× driver.`, '');
out.push('| backend | clients | server (mutations/s, median) | driver (median) | server / driver | server p99 (ms) | driver p99 (ms) | target |', '|---|---|---|---|---|---|---|---|');
for (const backend of backends) {
  for (const clients of [8, 32]) {
    const srv = results.push[`${backend}:${clients}:server`] || [];
    const drv = results.push[`${backend}:${clients}:driver`] || [];
    const s = median(srv.map((r) => r.rate));
    const d = median(drv.map((r) => r.rate));
    const ratio = s != null && d ? s / d : null;
    out.push(`| ${backend} | ${clients} | ${fmt(s)} (${srv.map((r) => fmt(r.rate)).join(', ')}) | ${fmt(d)} (${drv.map((r) => fmt(r.rate)).join(', ')}) | ${fmt(ratio, 2)}× | ${fmt(median(srv.map((r) => r.p99_ms)), 1)} | ${fmt(median(drv.map((r) => r.p99_ms)), 1)} | ${ratio == null ? '—' : ratio >= 0.5 ? 'met' : 'missed'} |`);
  }
}
}
if (SECTIONS.has('poll')) {
out.push('', '## Idle polls: plain vs conditional', '', `One tenant holding 500 records; each client sends ${POLL_REQUESTS} pulls from the tenant's head, one after another on its own connection. "plain": the pull clients sent before conditional pulls (answered 200 with an empty page). "conditional": \`If-None-Match: "<epoch>.<cursor>"\` (answered 304).`, '');
out.push('| backend | clients | plain (requests/s, median) | conditional (median) | conditional / plain | plain p99 (ms) | conditional p99 (ms) |', '|---|---|---|---|---|---|---|');
for (const backend of backends) {
  for (const clients of [8, 32]) {
    const p = results.poll[`${backend}:${clients}:plain`] || [];
    const c = results.poll[`${backend}:${clients}:conditional`] || [];
    const pm = median(p.map((r) => r.requests_per_second));
    const cm = median(c.map((r) => r.requests_per_second));
    out.push(`| ${backend} | ${clients} | ${fmt(pm)} | ${fmt(cm)} | ${pm && cm ? fmt(cm / pm, 2) + '×' : '—'} | ${fmt(median(p.map((r) => r.p99_ms)), 2)} | ${fmt(median(c.map((r) => r.p99_ms)), 2)} |`);
  }
}
}
if (SECTIONS.has('filtered')) {
out.push('', '## Pull with permission filtering (partial sync)', '', `One tenant of ${FILTERED_RECORDS} notes written by 8 users, each note shared with one other user, so a user may read 2/8 of the log. Each client (client i signs in as user i mod 8) pulls the whole log from cursor 0 in pages of 500, ${FILTERED_ROUNDS} times. "open": \`notes\` readable by the tenant (every row sent). "filtered": \`read = ["owner", "users_in:shared_with"]\` (every row scanned and judged, 1/4 sent). Both servers seeded alike, measured in the same run.`, '');
out.push('| backend | clients | open (whole-log pulls/s, median) | filtered (median) | filtered / open | open records/s | filtered records/s | open p99 (ms) | filtered p99 (ms) |', '|---|---|---|---|---|---|---|---|---|');
for (const backend of backends) {
  for (const clients of [8, 32]) {
    const o = results.filtered[`${backend}:${clients}:open`] || [];
    const f = results.filtered[`${backend}:${clients}:filtered`] || [];
    const om = median(o.map((r) => r.whole_pulls_per_second));
    const fm = median(f.map((r) => r.whole_pulls_per_second));
    out.push(`| ${backend} | ${clients} | ${fmt(om, 2)} | ${fmt(fm, 2)} | ${om && fm ? fmt(fm / om, 2) + '×' : '—'} | ${fmt(median(o.map((r) => r.records_per_second)))} | ${fmt(median(f.map((r) => r.records_per_second)))} | ${fmt(median(o.map((r) => r.p99_ms)), 1)} | ${fmt(median(f.map((r) => r.p99_ms)), 1)} |`);
  }
}
}
if (results.errors.length) out.push('', '## Errors', '', ...results.errors.map((e) => `- ${e}`));
const stamp = meta.date.slice(0, 16).replace(/[:T]/g, '-');
const dir = path.join(here, 'results');
fs.writeFileSync(path.join(dir, `server-${stamp}.json`), JSON.stringify({ meta, ...results }, null, 2));
fs.writeFileSync(path.join(dir, `server-${stamp}.md`), out.join('\n') + '\n');
log(`wrote bench/results/server-${stamp}.md`);
fs.rmSync(TMP, { recursive: true, force: true });
