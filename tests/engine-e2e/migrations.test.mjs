// App-level data migrations in Chromium against the real ferry-server:
// `Ferry.open({ version, migrate })` rewrites stored records and pending writes once and the
// server receives the new shapes; a tab closed in the middle of a slow migration stored
// nothing and the next open migrates exactly once; a throwing migration rejects with a
// typed FerryError and loses nothing; a server whose minimum data version is newer answers
// `upgrade_required` and the writes wait in the outbox until the app migrates.
//
//   node --test tests/engine-e2e/migrations.test.mjs      (part of npm run test:engine)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, ensurePackage, ensureServerBinary, launchChromium, openPage, uniqueName, until, untilServer } from './harness.mjs';

let bin;
let browser;

before(async () => {
  ensurePackage();
  bin = ensureServerBinary();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
});

// Each test gets a server of its own: the migrations run over every stored record, and a record
// pulled from an earlier test's tenant data would count as one more (and may be the one that
// throws first).
async function withServer(body, options) {
  const server = await Server.start(bin, options);
  try {
    return await body(server);
  } finally {
    await server.stop();
  }
}

// The demo token of the page's server, fetched from here (the page may be offline).
const tokens = new Map();

// Opens `name` at data `version` (undefined: no version) with the migration whose source is
// `migrateSrc` (a function expression evaluated in the page; it may use window.calls).
// Resolves to 'opened' or to the rejection's {code, message, isFerryError}.
const openAt = async (page, name, version, migrateSrc) =>
  page.evaluate(
    async ([name, version, migrateSrc, token]) => {
      window.calls = 0;
      const options = {
        name,
        url: '/v1',
        collections: { notes: { policy: 'merge-fields' } },
        getToken: async () => token,
      };
      if (version !== null) options.version = version;
      // eslint-disable-next-line no-eval
      if (migrateSrc !== null) options.migrate = (0, eval)(`(${migrateSrc})`);
      try {
        window.ferry = await window.Ferry.open(options);
        window.ferry.syncState.subscribe((s) => { window.lastState = s; });
        return 'opened';
      } catch (e) {
        return { code: e.code, message: e.message, isFerryError: e instanceof window.FerryError };
      }
    },
    [name, version ?? null, migrateSrc ?? null, tokens.get(page)],
  );

const close = (page) => page.evaluate(() => window.ferry.close().then(() => true));
const get = (page, id) => page.evaluate((id) => window.ferry.get('notes', id), id);
const put = (page, record) => page.evaluate((r) => window.ferry.put('notes', r).then(() => true), record);

// Version 1 -> 2: `title` becomes `name`; `migrations` counts the runs (must end at 1).
const RENAME = `(record, { collection, from, to }) => {
  window.calls++;
  if (collection !== 'notes' || to !== 2) throw new Error('unexpected context ' + collection + ' ' + from + ' ' + to);
  const { title, ...rest } = record;
  return { ...rest, name: title, migrations: (record.migrations ?? 0) + 1 };
}`;

/** Writes `synced` notes and waits until the server has them, then `pending` notes offline. */
async function oldShapes(context, page, name, target, synced, pending) {
  assert.equal(await openAt(page, name, 1), 'opened');
  for (const id of synced) await put(page, { id, title: `T ${id}` });
  await untilServer(async () => {
    const all = await target.records();
    return synced.every((id) => all.has(`notes/${id}`));
  }, 'the synced notes are on the server');
  await context.setOffline(true);
  for (const id of pending) await put(page, { id, title: `T ${id}` });
  await close(page);
}

// The test page exposes Ferry; FerryError is imported here once per page.
async function page(context, target) {
  const p = await openPage(context, target);
  tokens.set(p, await target.token('alice'));
  await p.evaluate(async () => {
    window.FerryError = (await import('./pkg/index.js')).FerryError;
  });
  return p;
}

test('migrate: stored records and pending writes move once, and the server gets the new shapes', () => withServer(async (server) => {
  const context = await browser.newContext();
  try {
    const name = uniqueName('migrate');
    const p = await page(context, server);
    const [a, b] = [uniqueName('synced'), uniqueName('pending')];
    await oldShapes(context, p, name, server, [a], [b]);

    assert.equal(await openAt(p, name, 2, RENAME), 'opened');
    assert.equal(await p.evaluate(() => window.calls), 2, 'one call per stored record');
    assert.deepEqual(await get(p, a), { id: a, name: `T ${a}`, migrations: 1 });
    assert.deepEqual(await get(p, b), { id: b, name: `T ${b}`, migrations: 1 });
    await context.setOffline(false);
    await untilServer(async () => {
      const [ra, rb] = [await server.record('notes', a), await server.record('notes', b)];
      return ra?.fields.name && rb?.fields.name;
    }, 'the migrated shapes reach the server');
    assert.deepEqual((await server.record('notes', a)).fields, { name: `T ${a}`, migrations: 1 });
    assert.deepEqual((await server.record('notes', b)).fields, { name: `T ${b}`, migrations: 1 });
    await until(p, () => window.lastState?.outboxDepth === 0, null, 'the outbox empties');
    await close(p);

    // Opening at the same version again runs nothing.
    assert.equal(await openAt(p, name, 2, RENAME), 'opened');
    assert.equal(await p.evaluate(() => window.calls), 0);
    assert.equal((await get(p, a)).migrations, 1);
    await close(p);
  } finally {
    await context.close();
  }
}));

test('a tab closed in the middle of a slow migration stored nothing; the next open migrates exactly once', () => withServer(async (server) => {
  const context = await browser.newContext();
  try {
    const name = uniqueName('midway');
    // Every page is loaded before the context goes offline (the writes must stay pending).
    const [first, slow, next] = [await page(context, server), await page(context, server), await page(context, server)];
    const ids = Array.from({ length: 12 }, (_, i) => `r${String(i).padStart(2, '0')}`);
    await oldShapes(context, first, name, server, [], ids);
    await first.close();

    // Each record takes 250 ms; the page says so on the console before each one.
    let started = 0;
    const third = new Promise((resolve) =>
      slow.on('console', (m) => {
        if (m.text().startsWith('migrating ') && ++started === 3) resolve();
      }),
    );
    const SLOW = `(record, ctx) => {
      console.log('migrating ' + record.id);
      const until = Date.now() + 250;
      while (Date.now() < until) {}
      return (${RENAME})(record, ctx);
    }`;
    const opening = openAt(slow, name, 2, SLOW).catch((e) => `page gone: ${e.message}`);
    await third;
    await slow.close({ runBeforeUnload: false });
    assert.match(String(await opening), /page gone|closed/i, 'the slow open never finished');
    assert.ok(started >= 3 && started < ids.length, `closed midway (${started} of ${ids.length} records)`);

    // Untouched: an open at the old version sees the old shapes and every pending write.
    assert.equal(await openAt(next, name, 1), 'opened');
    assert.deepEqual(await get(next, ids[0]), { id: ids[0], title: `T ${ids[0]}` });
    assert.equal(await next.evaluate(() => window.ferry.syncState.getSnapshot().outboxDepth), ids.length);
    await close(next);

    assert.equal(await openAt(next, name, 2, RENAME), 'opened');
    assert.equal(await next.evaluate(() => window.calls), ids.length);
    for (const id of ids) assert.deepEqual(await get(next, id), { id, name: `T ${id}`, migrations: 1 });
    await close(next);
    assert.equal(await openAt(next, name, 2, RENAME), 'opened');
    assert.equal(await next.evaluate(() => window.calls), 0, 'migrated once: the version is stored with the rows');
    await close(next);
  } finally {
    await context.close();
  }
}));

test('a throwing migration rejects with a typed FerryError and loses nothing', () => withServer(async (server) => {
  const context = await browser.newContext();
  try {
    const name = uniqueName('throws');
    const p = await page(context, server);
    const [a, b] = [uniqueName('synced'), uniqueName('pending')];
    await oldShapes(context, p, name, server, [a], [b]);

    const THROWS = `(record, ctx) => {
      if (record.id.startsWith('pending')) throw new Error('cannot migrate ' + record.id);
      return (${RENAME})(record, ctx);
    }`;
    const failed = await openAt(p, name, 2, THROWS);
    assert.equal(failed.code, 'migration_failed');
    assert.equal(failed.isFerryError, true);
    assert.match(failed.message, new RegExp(`cannot migrate ${b}`));

    // Everything is as it was: the old shapes, the pending write, and the version.
    assert.equal(await openAt(p, name, 1), 'opened');
    assert.deepEqual(await get(p, a), { id: a, title: `T ${a}` });
    assert.deepEqual(await get(p, b), { id: b, title: `T ${b}` });
    assert.equal(await p.evaluate(() => window.ferry.syncState.getSnapshot().outboxDepth), 1);
    await close(p);

    // A migration that returns a Promise is refused the same way.
    const ASYNC = `async (record) => record`;
    assert.equal((await openAt(p, name, 2, ASYNC)).code, 'migration_failed');
    // And a fixed migration then runs once over everything.
    assert.equal(await openAt(p, name, 2, RENAME), 'opened');
    assert.deepEqual(await get(p, b), { id: b, name: `T ${b}`, migrations: 1 });
    await close(p);
    // Data migrated by a newer release is refused to an older one.
    assert.equal((await openAt(p, name, 1)).code, 'data_too_new');
  } finally {
    await context.close();
  }
}));

test('upgrade_required: an older client keeps its writes until it migrates', async () => {
  // A server that accepts pushes from data version 2 on.
  const strictServer = await Server.start(bin, { configToml: '[data_versions]\nminimum = 2\n' });
  const context = await browser.newContext();
  try {
    const name = uniqueName('upgrade');
    const p = await page(context, strictServer);
    const id = uniqueName('note');
    assert.equal(await openAt(p, name, 1), 'opened');
    await put(p, { id, title: 'old shape' });
    // Waited for together: between the refused push and the state settling on `error`, a
    // retry cycle may already be under way (`syncing`, the last error code still shown).
    const state = await until(
      p,
      () => window.lastState?.errorCode === 'upgrade_required' && window.lastState.status === 'error' && window.lastState,
      null,
      'the push is refused as upgrade_required and the state says error',
    );
    assert.equal(state.outboxDepth, 1, 'the write waits in the outbox');
    assert.equal(await strictServer.record('notes', id), undefined, 'no old shape was written');
    await close(p);

    assert.equal(await openAt(p, name, 2, RENAME), 'opened');
    await untilServer(async () => (await strictServer.record('notes', id))?.fields.name, 'the migrated write arrives');
    assert.deepEqual((await strictServer.record('notes', id)).fields, { name: 'old shape', migrations: 1 });
    await close(p);
  } finally {
    await context.close();
    await strictServer.stop();
  }
});
