// Turns the raw samples of one run into bench/results/latest.json and latest.md: absolute
// figures (median, p95, p99 over every sample of every repetition), the ratio to the limit
// (raw IndexedDB, or the database driver) of the same run, and each target with MET/MISSED.
import fs from 'node:fs';
import path from 'node:path';
import { summarize } from './stats.mjs';

const PEERS = ['dexie', 'rxdb', 'pouchdb'];
const LABEL = {
  idb: 'raw IndexedDB (one value per record and per outbox entry)',
  'idb-onevalue': 'raw IndexedDB (outbox entries of a transaction as one value)',
  dexie: 'Dexie 4.4.7',
  rxdb: 'RxDB 17.6.0 (Dexie storage)',
  pouchdb: 'PouchDB 9.0.0 (pouchdb-browser)',
  ferry: 'Ferry',
  'idb-ferrylike': "diagnostic: raw IndexedDB replaying Ferry's former commit pattern (until 2026-11-22: each request awaited; read before write)",
};
const WASM_GZIP_TARGET = 200 * 1000; // 200 KB

const fmt = (x, d = 2) => (x == null || Number.isNaN(x) ? '—' : x >= 100 ? x.toFixed(0) : x.toFixed(d));
const ratio = (a, b) => (a != null && b ? a / b : null);
const fx = (r) => (r == null ? '—' : `${r.toFixed(2)}×`);

export function analyse(results) {
  const s = { write1: {}, writeMany: {}, cold: {}, coldInScript: {}, sync: {}, server: {} };
  for (const [e, runs] of Object.entries(results.write1)) s.write1[e] = summarize(runs.flat());
  for (const [e, xs] of Object.entries(results.writeMany)) s.writeMany[e] = summarize(xs);
  for (const [e, xs] of Object.entries(results.cold)) {
    s.cold[e] = summarize(xs.map((c) => c.sincePage));
    (s.coldSinceNav ||= {})[e] = summarize(xs.map((c) => c.sinceNav));
    s.coldInScript[e] = summarize(xs.map((c) => c.inScript));
  }
  for (const [k, xs] of Object.entries(results.sync)) s.sync[k] = summarize(xs);
  for (const [k, xs] of Object.entries(results.server)) {
    s.server[k] = { rate: summarize(xs.map((r) => r.rate)), p99: summarize(xs.map((r) => r.p99_ms)), p50: summarize(xs.map((r) => r.p50_ms)) };
  }
  const sub = (results.subscribe.ferry || []).flat ? results.subscribe.ferry || [] : [];
  if (sub.length) {
    s.subscribe = {
      seen: summarize(sub.flatMap((r) => r.seen)),
      resolved: summarize(sub.flatMap((r) => r.resolved)),
      firedBeforeResolve: sub.reduce((a, r) => a + r.before, 0),
      writes: sub.reduce((a, r) => a + r.seen.length, 0),
    };
  }
  const med = (o) => o?.median ?? null;
  const best = (...xs) => {
    const v = xs.filter((x) => x != null);
    return v.length ? Math.min(...v) : null;
  };
  const peersBest = (tbl) => {
    let b = null;
    for (const p of PEERS) if (med(tbl[p]) != null && (b == null || med(tbl[p]) < b.v)) b = { engine: p, v: med(tbl[p]) };
    return b;
  };
  const aheadOfPeers = (tbl) => {
    const f = med(tbl.ferry);
    if (f == null) return null;
    const present = PEERS.filter((p) => med(tbl[p]) != null);
    return present.length ? present.every((p) => f < med(tbl[p])) : null;
  };
  const rows = [];
  const status = (ok) => (ok == null ? 'n/a' : ok ? 'MET' : 'MISSED');

  // 1
  {
    const limit = best(med(s.write1.idb), med(s.write1['idb-onevalue']));
    const f = med(s.write1.ferry);
    const r = ratio(f, limit);
    rows.push({ id: '1', what: 'Local write, 1 record + outbox entry, until durable (ms, median)', ferry: f, limit, ratio: r, peer: peersBest(s.write1), target: '≤ 1.2× limit', status: status(r == null ? null : r <= 1.2) });
    if (s.subscribe) {
      const all = s.subscribe.firedBeforeResolve === s.subscribe.writes;
      rows.push({ id: '1b', what: `Subscriber sees the write (ms after put(), median); fired before the promise resolved in ${s.subscribe.firedBeforeResolve}/${s.subscribe.writes}`, ferry: med(s.subscribe.seen), limit: null, ratio: null, peer: null, target: 'before the promise resolves', status: status(all) });
    }
  }
  // 2
  {
    const limit = best(med(s.writeMany.idb), med(s.writeMany['idb-onevalue']));
    const f = med(s.writeMany.ferry);
    const r = ratio(f, limit);
    const ahead = aheadOfPeers(s.writeMany);
    rows.push({ id: '2', what: `${results.meta.n} writes issued at once (ms, median)`, ferry: f, limit, ratio: r, peer: peersBest(s.writeMany), target: '≤ 1.5× limit, ahead of every peer', status: status(r == null ? null : r <= 1.5 && ahead !== false) });
  }
  // 3
  {
    const limit = best(med(s.cold.idb), med(s.cold['idb-onevalue']));
    const f = med(s.cold.ferry);
    const r = ratio(f, limit);
    const ahead = aheadOfPeers(s.cold);
    rows.push({ id: '3', what: `Cold start: page load → ${results.meta.n} records read (ms, median)`, ferry: f, limit, ratio: r, peer: peersBest(s.cold), target: '≤ 1.5× limit, ahead of every peer', status: status(r == null ? null : r <= 1.5 && ahead !== false) });
  }
  // 4
  for (const [k, label] of [
    ['pull', `Sync: pull ${results.meta.n} records until durable (ms, median)`],
    ['push', `Sync: push ${results.meta.pushN} offline mutations until the outbox is empty (ms, median)`],
  ]) {
    const f = med(s.sync[`${k}:ferry`]);
    const limit = med(s.sync[`${k}:idb`]);
    const r = ratio(f, limit);
    rows.push({ id: '4', what: label, ferry: f, limit, ratio: r, peer: null, target: '≤ 1.5× limit', status: status(r == null ? null : r <= 1.5) });
  }
  // 5
  for (const backend of ['sqlite', 'postgres']) {
    for (const c of [8, 32]) {
      const srv = s.server[`${backend}:${c}:server`];
      const drv = s.server[`${backend}:${c}:driver`];
      if (!srv && !drv) continue;
      const r = ratio(med(srv?.rate), med(drv?.rate));
      rows.push({ id: '5', what: `Server push, ${backend}, ${c} clients × batches of 50 (mutations/s, median; p99 ${fmt(med(srv?.p99), 1)} ms vs ${fmt(med(drv?.p99), 1)} ms)`, ferry: med(srv?.rate), limit: med(drv?.rate), ratio: r, peer: null, target: '≥ 0.5× driver', status: status(r == null ? null : r >= 0.5), higherIsBetter: true });
    }
  }
  // 6
  {
    const w = results.size['ferry_bg.wasm'];
    const js = Object.entries(results.size).filter(([f]) => f.endsWith('.js')).reduce((a, [, v]) => ({ raw: a.raw + v.raw, gzip: a.gzip + v.gzip }), { raw: 0, gzip: 0 });
    rows.push({ id: '6', what: `Size: pkg/ferry_bg.wasm gzip (raw ${w ? (w.raw / 1000).toFixed(1) : '—'} KB); JS ${js.raw ? `${(js.raw / 1000).toFixed(1)} KB raw, ${(js.gzip / 1000).toFixed(1)} KB gzip` : '—'}`, ferry: w ? w.gzip / 1000 : null, limit: null, ratio: null, peer: null, target: '≤ 200 KB gzip', status: status(w ? w.gzip <= WASM_GZIP_TARGET : null), unit: 'KB' });
  }
  return { summary: s, headline: rows };
}

function table(head, rows) {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function renderMarkdown(results, a) {
  const m = results.meta;
  const out = [];
  out.push('# Ferry benchmarks — latest run', '');
  out.push(`${m.date} · commit ${m.commit} · ${m.chromium} · Node ${m.node} · ${m.cpus} × ${m.cpuModel} · ${m.memGiB} GiB · load average at start ${m.loadavgAtStart.map((x) => x.toFixed(2)).join(' ')}, at end ${(m.loadavgAtEnd || []).map((x) => x.toFixed(2)).join(' ')}`, '');
  out.push(`${m.reps} repetitions per browser benchmark, each engine in a fresh Chromium profile per repetition, engine order rotated and reversed between repetitions. Figures are medians (p95/p99 below) over all samples of all repetitions; "× limit" compares with the limit measured in the same run. Percentiles are nearest-rank: where a benchmark gives one sample per repetition (2, 3, 4), p95 and p99 are the slowest repetition. Run to run, figures on this machine move by ±30%: compare within one run.`, '');
  out.push('## Headline', '');
  out.push(
    table(
      ['#', 'benchmark', 'Ferry', 'limit', 'Ferry ÷ limit', 'fastest peer', 'target', 'status'],
      a.headline.map((r) => [r.id, r.what, fmt(r.ferry), fmt(r.limit), fx(r.ratio), r.peer ? `${r.peer.engine} ${fmt(r.peer.v)}` : '—', r.target, r.status === 'MISSED' ? '**MISSED**' : r.status]),
    ),
    '',
  );
  const engTable = (tbl, limit, unit) =>
    table(
      ['engine', `median ${unit}`, `p95 ${unit}`, `p99 ${unit}`, 'samples', '÷ limit (median)'],
      Object.entries(tbl).map(([e, x]) => [LABEL[e] || e, fmt(x?.median), fmt(x?.p95), fmt(x?.p99), x?.n ?? 0, fx(ratio(x?.median, limit))]),
    );
  const s = a.summary;
  const lim = (tbl) => {
    const v = [tbl.idb?.median, tbl['idb-onevalue']?.median].filter((x) => x != null);
    return v.length ? Math.min(...v) : null;
  };
  if (Object.keys(s.write1).length) {
    out.push(`## 1. Local write, one record + its outbox entry, until durable`, '');
    out.push(`${m.write1} sequential writes per repetition after ${m.warmup} warm-up writes; each sample is one write's latency. The limit: raw IndexedDB, the record and the outbox entry in one readwrite transaction, awaiting \`oncomplete\`.`, '');
    out.push(engTable(s.write1, lim(s.write1), '(ms)'), '');
    if (s.subscribe) {
      out.push(`Ferry with a live query subscribed: put() → subscriber callback median ${fmt(s.subscribe.seen.median, 3)} ms (p95 ${fmt(s.subscribe.seen.p95, 3)}, p99 ${fmt(s.subscribe.seen.p99, 3)}); put() → promise resolved median ${fmt(s.subscribe.resolved.median)} ms (p99 ${fmt(s.subscribe.resolved.p99)}). The callback fired before the promise resolved for ${s.subscribe.firedBeforeResolve} of ${s.subscribe.writes} writes.`, '');
    }
  }
  if (Object.keys(s.writeMany).length) {
    out.push(`## 2. ${m.n} writes issued at once`, '');
    out.push(`All ${m.n} writes started in the same tick, then \`Promise.all\`; one sample per repetition (${m.repsMany ?? m.reps} repetitions). Raw IndexedDB writes them in one transaction (both outbox layouts; the faster is the limit). Peers get ${m.n} separate write calls, as an app would make them.`, '');
    out.push(engTable(s.writeMany, lim(s.writeMany), '(ms)'), '');
  }
  if (Object.keys(s.cold).length) {
    out.push(`## 3. Cold start: open and read ${m.n} stored records`, '');
    out.push(`A new browser on a profile that holds ${m.n} records (seeded by each engine's own bulk path; Ferry's by a pull from ferry-server, so its outbox is empty), one page load: time from the page's first inline script until all ${m.n} records are in JavaScript (includes fetching and compiling the page's code and, for Ferry, instantiating the wasm; served with no-store, so no code cache helps).`, '');
    out.push(engTable(s.cold, lim(s.cold), '(ms)'), '');
    const fc = results.cold.ferry || [];
    if (fc.length && fc[0].marks) {
      const mm = (k) => summarize(fc.map((c) => c.marks?.[k]))?.median;
      out.push(`Ferry's cold start, split (medians, from the call): \`Ferry.open\` resolved after ${fmt(mm('openMs'))} ms — it loads the wasm module (fetched and instantiated after ${fmt(mm('wasmInitMs'))} ms) while reading the database, then decodes the rows — and the first query result came ${fmt(mm('firstQueryMs'))} ms later.`, '');
    }
    out.push('The same, counted from navigation start (adds the fresh browser\'s first-navigation costs):', '');
    out.push(engTable(s.coldSinceNav, lim(s.coldSinceNav), '(ms)'), '');
    out.push('The same, counted from the first line of the page\'s own module (after its code is loaded):', '');
    out.push(engTable(s.coldInScript, lim(s.coldInScript), '(ms)'), '');
  }
  if (Object.keys(s.sync).length) {
    out.push(`## 4. Sync with ferry-server (SQLite, loopback)`, '');
    out.push(`Pull: ${m.n} records from an empty profile until durable${m.pullLatencyMs ? `, over a link with ${m.pullLatencyMs} ms added round-trip latency (Chromium's network emulation, for both)` : ''}; the limit fetches the same pages (limit ${m.ferryPullLimit || 500}) and puts each page with its cursor in one raw IndexedDB transaction. Push: ${m.pushN} creates queued while offline, from going online until the outbox is empty; the limit reads the outbox, posts batches of ${m.ferryPushBatch || 500}, and deletes the acknowledged entries in one transaction per batch.`, '');
    out.push(
      table(
        ['run', 'median (ms)', 'p95 (ms)', 'p99 (ms)', 'samples'],
        Object.entries(s.sync).map(([k, x]) => [k.replace(':idb', ': limit (fetch + raw IndexedDB)').replace(':ferry', ': Ferry'), fmt(x.median), fmt(x.p95), fmt(x.p99), x.n]),
      ),
      '',
    );
  }
  if (Object.keys(s.server).length) {
    out.push(`## 5. Server push throughput`, '');
    out.push(`Each client pushes ${m.serverBatches} batches of 50 creates, one after another, on its own connection; ${m.serverReps} repetitions. "server": through ferry-server's HTTP API (rate limit and in-flight cap off). "driver": the same rows (tenant head, idempotency key, record, op, client seq) written straight through sqlx, one transaction per batch, with the server's pool settings — the storage limit, without the reads the server does to decide each mutation.`, '');
    out.push(
      table(
        ['backend:clients:side', 'mutations/s (median)', 'min', 'max', 'p50 latency (ms)', 'p99 latency (ms, median of runs)'],
        Object.entries(s.server).map(([k, x]) => [k, fmt(x.rate?.median), fmt(x.rate?.min), fmt(x.rate?.max), fmt(x.p50?.median, 1), fmt(x.p99?.median, 1)]),
      ),
      '',
    );
  }
  if (Object.keys(results.size).length) {
    out.push('## 6. Size of the npm package (pkg/)', '');
    out.push(table(['file', 'raw (bytes)', 'gzip -9 (bytes)'], Object.entries(results.size).map(([f, v]) => [f, v.raw, v.gzip])), '');
  }
  if (m.pageBundleBytes) {
    out.push(`Benchmark page bundles (esbuild, minified, bytes): ${Object.entries(m.pageBundleBytes).map(([e, b]) => `${e} ${b}`).join(', ')}.`, '');
  }
  if (results.findings?.length) {
    out.push('## Findings', '', ...results.findings.map((f) => `- ${f}`), '');
  }
  if (results.errors.length) {
    out.push('## Errors in this run', '', ...results.errors.map((e) => `- ${e.bench} / ${e.engine}${e.rep != null ? ` / rep ${e.rep + 1}` : ''}: ${String(e.error).replace(/\n/g, ' ').slice(0, 400)}`), '');
  }
  return out.join('\n');
}

export function writeReport(results, dir, base = 'latest') {
  const a = analyse(results);
  // Findings kept by hand beside the results (bench/results/findings.md) are appended.
  const findingsFile = path.join(dir, 'findings.md');
  const full = { ...results, summary: a.summary, headline: a.headline };
  const json = path.join(dir, `${base}.json`);
  const md = path.join(dir, `${base}.md`);
  fs.writeFileSync(json, `${JSON.stringify(full, null, 1)}\n`);
  let text = renderMarkdown(results, a);
  if (fs.existsSync(findingsFile)) text += `\n${fs.readFileSync(findingsFile, 'utf8')}`;
  fs.writeFileSync(md, `${text}\n`);
  return { json, md };
}
