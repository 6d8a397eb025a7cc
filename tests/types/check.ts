// Type-checks the published declarations (pkg/index.d.ts): what apps write must compile,
// and the mistakes below must not. Run: npx tsc -p tests/types
import { Ferry, init, type SyncState, type FerryRecord, type Conflict, type DeadLetter, type FerryError } from '../../pkg/index.js';

export async function usage(): Promise<void> {
  await init();
  const ferry: Ferry = await Ferry.open({
    name: 'app',
    url: '/v1',
    collections: { notes: { policy: 'merge-fields' }, tasks: {} },
    getToken: async (refresh: boolean) => (refresh ? 'new' : null),
    encryptionKey: new Uint8Array(32),
  });
  await ferry.put('notes', { id: 'n1', title: 'hi', tags: ['a'], meta: { n: 1 } });
  await ferry.patch('notes', 'n1', { title: null });
  await ferry.delete('notes', 'n1');
  const one: FerryRecord | undefined = ferry.get('notes', 'n1');
  const rows = ferry.query('notes', { where: { done: false }, orderBy: ['title', 'desc'], limit: 10 });
  const stop = rows.subscribe((list: FerryRecord[]) => list.map((r) => r.id));
  stop();
  rows.subscribe({ next: (list) => list.length }).unsubscribe();
  const snapshot: FerryRecord[] = rows.getSnapshot();
  const same: typeof rows = rows[Symbol.observable]();
  const state: SyncState = ferry.syncState.getSnapshot();
  const status: 'offline' | 'idle' | 'syncing' | 'backoff' | 'error' | 'auth-required' = state.status;
  const quota: number | null = state.storage.quota;
  ferry.conflicts.subscribe((list: Conflict[]) => list.forEach((c) => void c.resolve(c.fields.length ? 'local' : 'server')));
  ferry.deadLetters.subscribe((list: DeadLetter[]) => list.forEach((d) => void (d.code === 'x' ? d.retry({ id: d.recordId }) : d.discard())));
  const rate: number | null = ferry.metrics().syncSuccessRate;
  ferry.syncNow();
  await ferry.close();
  try {
    await ferry.put('notes', { id: 'x' });
  } catch (e) {
    const code: string = (e as FerryError).code;
    void code;
  }
  void [one, snapshot, same, status, quota, rate];
}

export async function mistakes(ferry: Ferry): Promise<void> {
  // @ts-expect-error a record needs an id
  await ferry.put('notes', { title: 'no id' });
  // @ts-expect-error functions cannot be stored
  await ferry.put('notes', { id: 'x', f: () => 1 });
  // @ts-expect-error unknown policy
  await Ferry.open({ name: 'a', url: '/v1', collections: { notes: { policy: 'newest' } } });
  // @ts-expect-error orderBy direction
  ferry.query('notes', { orderBy: ['title', 'up'] });
  // @ts-expect-error syncState is not a list
  ferry.syncState.getSnapshot().map((x: unknown) => x);
}
