// Remembers this device's own recent edits, so the app can tell what happened to them when a
// record changes under it: merged with another device's edit (notes, merge-fields), or replaced
// by a later write (tasks, last-writer-wins).
import { sameValue } from './dom.js';

export const META = (k) => k === 'id' || k.startsWith('_') || k.startsWith('$');

export function fieldsOf(row) {
  const out = {};
  if (!row) return out;
  const src = row.fields && typeof row.fields === 'object' && !Array.isArray(row.fields) ? row.fields : row;
  for (const [k, v] of Object.entries(src)) if (!META(k)) out[k] = v;
  return out;
}

export class EditTracker {
  constructor() {
    this.entries = new Map();
  }

  /** This device wrote `patch` over `base` (the fields it saw). */
  wrote(collection, id, base, patch) {
    const key = `${collection}/${id}`;
    const prev = this.entries.get(key);
    const entry = prev
      ? { base: prev.base, mine: { ...prev.mine, ...patch }, at: Date.now(), acked: false }
      : { base: { ...base }, mine: { ...patch }, at: Date.now(), acked: false };
    this.entries.set(key, entry);
  }

  /** Everything this device wrote is on the server: merges can no longer happen to it. */
  allAcked() {
    for (const entry of this.entries.values()) if (!entry.acked) entry.acked = Date.now();
  }

  /**
   * A record's current row. Returns null when it shows what this device expects, else
   * `{theirs: [fields changed elsewhere], kept: [own fields that survived], lost: [own fields
   * overwritten], acked}` and forgets the entry.
   */
  observe(collection, row, { maxAgeMs = 15 * 60_000, ackGraceMs = 3000 } = {}) {
    const key = `${collection}/${row.id}`;
    const entry = this.entries.get(key);
    if (!entry) return null;
    const now = Date.now();
    if (now - entry.at > maxAgeMs || (entry.acked && now - entry.acked > ackGraceMs && collection !== 'tasks')) {
      this.entries.delete(key);
      return null;
    }
    const current = fieldsOf(row);
    const names = new Set([...Object.keys(entry.base), ...Object.keys(entry.mine), ...Object.keys(current)]);
    const theirs = [];
    const kept = [];
    const lost = [];
    for (const f of names) {
      const mineChanged = f in entry.mine && !sameValue(entry.mine[f], entry.base[f]);
      const expected = f in entry.mine ? entry.mine[f] : entry.base[f];
      if (sameValue(current[f], expected)) {
        if (mineChanged) kept.push(f);
      } else if (mineChanged) {
        lost.push(f);
      } else {
        theirs.push(f);
      }
    }
    if (theirs.length === 0 && lost.length === 0) return null;
    this.entries.delete(key);
    return { theirs, kept, lost, acked: !!entry.acked };
  }

  forget(collection, id) {
    this.entries.delete(`${collection}/${id}`);
  }
}
