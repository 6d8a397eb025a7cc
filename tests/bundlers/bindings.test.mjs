// The framework bindings in Chromium, from the packed tarball: ferry-sync/react (StrictMode
// opens once and never races; typing re-renders without resubscribing or re-querying;
// useQuery/useRecord/useSyncState/useConflicts/useDeadLetters follow writes), ferry-sync/vue
// (refs follow writes; unmounting ends every subscription) and Svelte 5 stores (the
// observables as they are: `$query`, `$syncState`). Bundled with esbuild; Ferry runs with
// no server (its fetch fails), which these bindings do not care about.
//
//   npm ci --prefix tests/bundlers && node --test tests/bundlers/bindings.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, WAIT_MS, ensureMatrixDeps, launchChromium, packedTarball, project, requireRoot, serveStatic, urlOf } from './helpers.mjs';

let browser;

before(async () => {
  ensureMatrixDeps();
  packedTarball();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
});

const OPTIONS = `{
  name: 'bindings-' + Math.random().toString(16).slice(2),
  url: '/v1',
  live: false,
  collections: { notes: { policy: 'merge-fields' } },
  fetch: () => Promise.reject(new TypeError('no server in this test')),
}`;

/** Bundles `entry` of project `dir` with esbuild (development build, as a dev server serves). */
async function bundle(dir, entry) {
  const dist = join(dir, 'dist');
  await requireRoot('esbuild').build({
    entryPoints: [join(dir, entry)],
    bundle: true,
    format: 'esm',
    outfile: join(dist, 'main.js'),
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"development"', __VUE_OPTIONS_API__: 'true', __VUE_PROD_DEVTOOLS__: 'false', __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: 'false' },
    conditions: ['browser', 'development'],
    logLevel: 'error',
  });
  const { copyFileSync } = await import('node:fs');
  copyFileSync(join(dir, 'node_modules', 'ferry-sync', 'ferry_bg.wasm'), join(dist, 'ferry_bg.wasm'));
  writeFileSync(join(dist, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><div id="app"></div><script type="module" src="/main.js"></script>');
  return dist;
}

async function openPage(dist) {
  const server = await serveStatic(dist);
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.goto(`${urlOf(server)}/`);
  return { page, errors, close: async () => (await page.close(), server.close()) };
}

const text = (page, id) => page.locator(`#${id}`).innerText({ timeout: WAIT_MS });

test('React: StrictMode opens once; typing re-renders without resubscribing; the hooks follow writes', async () => {
  const dir = project('react-bindings', {
    'src/main.jsx': `import { StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { Ferry } from 'ferry-sync';
import { FerryProvider, useFerry, useQuery, useRecord, useSyncState, useConflicts, useDeadLetters } from 'ferry-sync/react';

const counts = (window.counts = { opens: 0, closes: 0, queries: 0, stateSubscribes: 0, stateUnsubscribes: 0, renders: 0 });
const open = Ferry.open;
Ferry.open = async (options) => {
  counts.opens++;
  const ferry = await open.call(Ferry, options);
  const close = ferry.close.bind(ferry);
  ferry.close = () => (counts.closes++, close());
  const query = ferry.query.bind(ferry);
  ferry.query = (...args) => (counts.queries++, query(...args));
  const state = ferry.syncState;
  const subscribe = state.subscribe.bind(state);
  state.subscribe = (observer) => {
    counts.stateSubscribes++;
    const stop = subscribe(observer);
    return () => (counts.stateUnsubscribes++, stop());
  };
  return ferry;
};
const options = ${OPTIONS};

function Notes() {
  counts.renders++;
  const ferry = useFerry();
  const [draft, setDraft] = useState('');
  const notes = useQuery('notes', { orderBy: 'title' });
  const first = useRecord('notes', 'n1');
  const sync = useSyncState();
  const conflicts = useConflicts();
  const letters = useDeadLetters();
  return (
    <div>
      <input id="draft" value={draft} onChange={(e) => setDraft(e.target.value)} />
      <button id="add" onClick={() => void ferry.put('notes', { id: 'n' + (notes.length + 1), title: draft })}>Add</button>
      <p id="count">{notes.length}</p>
      <p id="first">{first ? first.title : '-'}</p>
      <p id="pending">{String(sync.hasPendingWrites)}:{String(sync.synced)}:{sync.outboxDepth}</p>
      <p id="inbox">{conflicts.length}:{letters.length}</p>
    </div>
  );
}

createRoot(document.getElementById('app')).render(
  <StrictMode>
    <FerryProvider options={options} fallback={<p id="opening">opening</p>}>
      <Notes />
    </FerryProvider>
  </StrictMode>,
);
`,
  });
  const { page, errors, close } = await openPage(await bundle(dir, 'src/main.jsx'));
  try {
    assert.equal(await text(page, 'count'), '0');
    const before = await page.evaluate(() => ({ ...window.counts }));
    await page.locator('#draft').pressSequentially('typed text', { delay: 5 });
    assert.equal(await page.locator('#draft').inputValue(), 'typed text');
    const after = await page.evaluate(() => ({ ...window.counts }));
    assert.ok(after.renders >= before.renders + 10, `ten keystrokes re-rendered (${before.renders} -> ${after.renders})`);
    assert.equal(after.stateSubscribes, before.stateSubscribes, 'typing did not resubscribe to the sync state');
    assert.equal(after.queries, before.queries, 'typing did not create queries');
    assert.equal(after.opens, 1, 'StrictMode opened the database once');
    assert.equal(after.closes, 0);
    assert.ok(after.stateSubscribes - after.stateUnsubscribes === 1, `one live sync-state subscription: ${JSON.stringify(after)}`);

    await page.locator('#add').click();
    await page.locator('#count', { hasText: '1' }).waitFor({ timeout: WAIT_MS });
    assert.equal(await text(page, 'first'), 'typed text');
    await page.locator('#pending', { hasText: 'true:false:1' }).waitFor({ timeout: WAIT_MS });
    assert.equal(await text(page, 'inbox'), '0:0');
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('Vue: composables return refs that follow writes; unmounting ends their subscriptions', async () => {
  const dir = project('vue-bindings', {
    'src/main.js': `import { createApp, defineComponent, h, nextTick } from 'vue';
import { Ferry } from 'ferry-sync';
import { ferryPlugin, useQuery, useRecord, useSyncState, useConflicts } from 'ferry-sync/vue';

const ferry = await Ferry.open(${OPTIONS});
const live = (window.live = { query: 0, state: 0 });
const query = ferry.query.bind(ferry);
ferry.query = (...args) => {
  const observable = query(...args);
  const subscribe = observable.subscribe.bind(observable);
  observable.subscribe = (o) => { live.query++; const stop = subscribe(o); return () => (live.query--, stop()); };
  return observable;
};
const state = ferry.syncState;
const subscribeState = state.subscribe.bind(state);
state.subscribe = (o) => { live.state++; const stop = subscribeState(o); return () => (live.state--, stop()); };

const App = defineComponent({
  setup() {
    const notes = useQuery('notes', () => ({ orderBy: 'title' }));
    const first = useRecord('notes', 'n1');
    const sync = useSyncState();
    const conflicts = useConflicts();
    return () => h('div', [
      h('p', { id: 'count' }, String(notes.value.length)),
      h('p', { id: 'first' }, first.value ? first.value.title : '-'),
      h('p', { id: 'pending' }, String(sync.value.hasPendingWrites) + ':' + sync.value.outboxDepth),
      h('p', { id: 'conflicts' }, String(conflicts.value.length)),
    ]);
  },
});
const app = createApp(App).use(ferryPlugin(ferry));
app.mount('#app');
window.mountedLive = { ...live };
await ferry.put('notes', { id: 'n1', title: 'from vue' });
await nextTick();
window.unmount = () => { app.unmount(); return { ...live }; };
window.ready = true;
`,
  });
  const { page, errors, close } = await openPage(await bundle(dir, 'src/main.js'));
  try {
    await page.waitForFunction(() => window.ready === true, null, { timeout: WAIT_MS });
    await page.locator('#count', { hasText: '1' }).waitFor({ timeout: WAIT_MS });
    assert.equal(await text(page, 'first'), 'from vue');
    await page.locator('#pending', { hasText: 'true:1' }).waitFor({ timeout: WAIT_MS });
    assert.equal(await text(page, 'conflicts'), '0');
    const mounted = await page.evaluate(() => window.mountedLive);
    assert.deepEqual(mounted, { query: 2, state: 1 }, 'useQuery and useRecord each hold a query; useSyncState holds the state');
    assert.deepEqual(await page.evaluate(() => window.unmount()), { query: 0, state: 0 }, 'unmounting ended every subscription');
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('Svelte 5: the observables work as stores ($query, $syncState) with no binding', async () => {
  const { compile } = await import('svelte/compiler');
  const component = compile(
    `<script>
  let { ferry } = $props();
  const notes = ferry.query('notes', { orderBy: 'title' });
  const sync = ferry.syncState;
</script>
<p id="count">{$notes.length}</p>
<p id="pending">{$sync.hasPendingWrites}:{$sync.outboxDepth}</p>
<ul>{#each $notes as note (note.id)}<li>{note.title}</li>{/each}</ul>
`,
    { filename: 'Notes.svelte', generate: 'client', dev: true },
  );
  const dir = project('svelte-bindings', {
    'src/Notes.js': component.js.code,
    'src/main.js': `import { mount, unmount, flushSync } from 'svelte';
import { Ferry } from 'ferry-sync';
import Notes from './Notes.js';

const ferry = await Ferry.open(${OPTIONS});
const app = mount(Notes, { target: document.getElementById('app'), props: { ferry } });
await ferry.put('notes', { id: 'n1', title: 'from svelte' });
await ferry.put('notes', { id: 'n2', title: 'again' });
flushSync();
window.ready = true;
`,
  });
  mkdirSync(join(dir, 'dist'), { recursive: true });
  const { page, errors, close } = await openPage(await bundle(dir, 'src/main.js'));
  try {
    await page.waitForFunction(() => window.ready === true, null, { timeout: WAIT_MS });
    await page.locator('#count', { hasText: '2' }).waitFor({ timeout: WAIT_MS });
    assert.deepEqual(await page.locator('li').allInnerTexts(), ['again', 'from svelte']);
    await page.locator('#pending', { hasText: 'true:2' }).waitFor({ timeout: WAIT_MS });
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('the binding declarations type-check under strict, lib ES2022 + DOM, skipLibCheck false', async () => {
  const dir = project('bindings-types', {
    'tsconfig.json': JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'ESNext', moduleResolution: 'bundler', lib: ['ES2022', 'DOM'], skipLibCheck: false, jsx: 'react-jsx', types: [] },
      include: ['src'],
    }),
    'src/check.tsx': `import { Ferry } from 'ferry-sync';
import { FerryProvider, hooksFor, useObservable } from 'ferry-sync/react';
import { composablesFor, ferryPlugin } from 'ferry-sync/vue';
import { openInspector } from 'ferry-sync/devtools';
import { createApp, ref } from 'vue';

interface Note { id: string; title: string; done: boolean }
interface Schema { notes: Note }

const react = hooksFor<Schema>();
export function Notes() {
  const notes: Note[] = react.useQuery('notes', { where: { done: false }, orderBy: ['title', 'desc'] });
  const one: Note | undefined = react.useRecord('notes', 'n1');
  const ferry: Ferry<Schema> = react.useFerry();
  const status = useObservable(ferry.syncState).status;
  // @ts-expect-error no such collection
  react.useQuery('todos');
  return <p>{notes.length} {one?.title} {status}</p>;
}
export const app = <FerryProvider<Schema> options={{ name: 'n', url: '/v1', collections: { notes: {} } }} fallback={<p>…</p>}><Notes /></FerryProvider>;

const vue = composablesFor<Schema>();
export function setup() {
  const notes = vue.useQuery('notes', () => ({ orderBy: 'title' as const }));
  const titles: string[] = notes.value.map((n) => n.title);
  const id = ref('n1');
  const one: Note | undefined = vue.useRecord('notes', id).value;
  const synced: boolean = vue.useSyncState().value.synced;
  // @ts-expect-error rows are read-only refs
  notes.value = [];
  return { titles, one, synced };
}
export async function start(): Promise<void> {
  const ferry = await Ferry.open<Schema>({ name: 'n', url: '/v1', collections: { notes: {} } });
  createApp({}).use(ferryPlugin(ferry));
  openInspector(ferry).remove();
}
`,
  });
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const { execFileSync } = await import('node:child_process');
  let out = '';
  try {
    execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    out = String(e.stdout) + String(e.stderr);
  }
  assert.equal(out, '', `tsc reported:\n${out}`);
});
