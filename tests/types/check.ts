// Type-checks the published declarations (pkg/index.d.ts) under `strict`, `lib: ["ES2022",
// "DOM"]` and `skipLibCheck: false`: what apps write must compile without casts, and the
// mistakes below must not. Run: npx tsc -p tests/types
import {
  Ferry,
  FerryError,
  isFerryError,
  init,
  FERRY_ERROR_CODES,
  type SyncState,
  type FerryRecord,
  type Conflict,
  type DeadLetter,
  type FerryErrorCode,
  type FerryMetrics,
} from '../../pkg/index.js';
import * as entry from '../../pkg/index.js';
import { openInspector, type FerryInspectorElement } from '../../pkg/devtools.js';
import type { FerryInspection } from '../../pkg/index.js';

export async function usage(): Promise<void> {
  await init();
  const ferry: Ferry = await Ferry.open({
    name: 'app',
    url: '/v1',
    collections: { notes: { policy: 'merge-fields', indexes: ['updatedAt', ['assignee', 'done']] }, tasks: {} },
    getToken: async (refresh: boolean) => (refresh ? 'new' : null),
    encryptionKey: new Uint8Array(32),
  });
  const quick = await Ferry.open({ name: 'big', url: '/v1', collections: { notes: { indexes: ['updatedAt'] } }, waitForRecords: false });
  const loaded: Promise<void> = quick.loaded;
  await loaded;
  await ferry.put('notes', { id: 'n1', title: 'hi', tags: ['a'], meta: { n: 1 } });
  await ferry.patch('notes', 'n1', { title: null });
  await ferry.delete('notes', 'n1');
  const one: FerryRecord | undefined = ferry.get('notes', 'n1');
  const rows = ferry.query('notes', { where: { done: false }, orderBy: ['title', 'desc'], limit: 10 });
  const stop = rows.subscribe((list: FerryRecord[]) => list.map((r) => r.id));
  stop();
  rows.subscribe({ next: (list) => list.length }).unsubscribe();
  const snapshot: FerryRecord[] = rows.getSnapshot();
  const same: typeof rows = rows['@@observable']();
  const state: SyncState = ferry.syncState.getSnapshot();
  const status: 'loading' | 'offline' | 'idle' | 'syncing' | 'backoff' | 'error' | 'auth-required' = state.status;
  const plainlySynced: boolean = state.synced && !state.hasPendingWrites;
  const quota: number | null = state.storage.quota;
  ferry.conflicts.subscribe((list: Conflict[]) => list.forEach((c) => void c.resolve(c.fields.length ? 'local' : 'server')));
  ferry.deadLetters.subscribe((list: DeadLetter[]) => list.forEach((d) => void (d.code === 'x' ? d.retry({ title: 'y' }) : d.discard())));
  const metrics: FerryMetrics = ferry.metrics();
  const early: boolean = metrics.loadedEarly;
  const rate: number | null = metrics.syncSuccessRate;
  const dump: FerryInspection = ferry.inspect();
  const attempts: number[] = dump.outbox.map((e) => e.attempts);
  const traces: string[] = dump.cycles.map((c) => c.traceId);
  const panel: FerryInspectorElement = openInspector(ferry);
  panel.remove();
  void [attempts, traces];
  ferry.syncNow();
  await ferry.close();
  try {
    await ferry.put('notes', { id: 'x' });
  } catch (e) {
    if (e instanceof FerryError) {
      const code: FerryErrorCode = e.code;
      if (code === 'wasm_load_failed' || code === 'unsupported_environment' || code === 'not_found') void code;
    }
    if (isFerryError(e, 'closed')) {
      const closed: 'closed' = e.code;
      void closed;
    }
  }
  const codes: readonly FerryErrorCode[] = FERRY_ERROR_CODES;
  const made = new FerryError('invalid_argument', 'made by an app');
  void [quick, one, snapshot, same, status, plainlySynced, quota, early, rate, codes, made];
}

// Records typed by a schema of interfaces (no index signature needed).
interface Note {
  id: string;
  title: string;
  done: boolean;
  tags?: string[];
}
interface Expense {
  id: string;
  amount: number;
}
interface Schema {
  notes: Note;
  expenses: Expense;
}

export async function typed(): Promise<void> {
  const ferry = await Ferry.open<Schema>({
    name: 'typed',
    url: '/v1',
    collections: { notes: { policy: 'merge-fields' }, expenses: { policy: 'server-wins-review' } },
  });
  const note: Note = { id: 'n1', title: 'typed', done: false };
  await ferry.put('notes', note);
  await ferry.put('expenses', { id: 'e1', amount: 12 });
  await ferry.patch('notes', 'n1', { done: true, tags: null });
  const got: Note | undefined = ferry.get('notes', 'n1');
  const notes: Note[] = ferry.query('notes', { where: { done: false }, orderBy: 'title' }).getSnapshot();
  const page: Note[] = ferry
    .query('notes', { where: { title: { prefix: 'Re' }, done: { in: [false] } }, orderBy: ['title', 'desc'], limit: 20, after: note })
    .getSnapshot();
  ferry.query('expenses', { where: { amount: { gte: 10, lt: 20 } } });
  ferry.query('expenses', { where: { amount: { between: [1, 2] } } });
  void page;
  const titles: string[] = notes.map((n) => n.title);
  ferry.conflicts.subscribe((list) => {
    for (const c of list) {
      if (c.collection === 'expenses') {
        const amount: number | undefined = c.server?.amount;
        void amount;
      }
    }
  });
  void [got, titles];
}

export async function mistakes(ferry: Ferry): Promise<void> {
  // @ts-expect-error a record needs an id
  await ferry.put('notes', { title: 'no id' });
  // @ts-expect-error functions cannot be stored
  await ferry.put('notes', { id: 'x', f: () => 1 });
  // @ts-expect-error unknown policy
  await Ferry.open({ name: 'a', url: '/v1', collections: { notes: { policy: 'newest' } } });
  // @ts-expect-error waitForRecords is a boolean
  await Ferry.open({ name: 'a', url: '/v1', collections: { notes: {} }, waitForRecords: 'no' });
  // @ts-expect-error loaded is a promise, not a flag to set
  ferry.loaded = Promise.resolve();
  // @ts-expect-error orderBy direction
  ferry.query('notes', { orderBy: ['title', 'up'] });
  // @ts-expect-error syncState is not a list
  ferry.syncState.getSnapshot().map((x: unknown) => x);
  // @ts-expect-error Ferry objects come from Ferry.open()
  new Ferry();
  // @ts-expect-error not a FerryErrorCode
  new FerryError('nope', 'x');
}

export async function typedMistakes(ferry: Ferry<Schema>): Promise<void> {
  // @ts-expect-error title must be a string
  await ferry.put('notes', { id: 'n', title: 1, done: false });
  // @ts-expect-error done is missing
  await ferry.put('notes', { id: 'n', title: 't' });
  // @ts-expect-error no such collection in the schema
  await ferry.put('todos', { id: 't' });
  // @ts-expect-error amount is a number
  await ferry.patch('expenses', 'e', { amount: 'ten' });
  // @ts-expect-error query rows are Notes, not Expenses
  const wrong: Expense[] = ferry.query('notes').getSnapshot();
  // @ts-expect-error no such field to order by
  ferry.query('notes', { orderBy: 'amount' });
  // @ts-expect-error a range on a string field takes strings
  ferry.query('notes', { where: { title: { gt: 1 } } });
  // @ts-expect-error the schema's collections must all be configured
  await Ferry.open<Schema>({ name: 'a', url: '/v1', collections: { notes: {} } });
  void wrong;
}

// The entry exports the public API only: none of wasm-bindgen's internals.
// @ts-expect-error initSync is internal
void entry.initSync;
// @ts-expect-error InitOutput is internal
export type Internal = entry.InitOutput;
