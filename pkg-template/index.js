// ferry-sync entry point: the wasm-bindgen module, loaded on first use.
//
// `Ferry.open()` loads the WebAssembly module itself, so apps need no setup step; call
// `init()` yourself only to start loading earlier or to pass the .wasm location.
import initWasm, { Ferry } from './ferry.js';
import { earlyOpen } from './early-open.js';

export * from './ferry.js';

let loading;

/** Loads the WebAssembly module once; later calls return the same promise. */
export function init(input) {
  loading ??= initWasm(input === undefined ? undefined : { module_or_path: input }).then(() => undefined);
  return loading;
}

// Where Ferry.open finds the early read (src/client/early.rs).
const EARLY_OPEN = Symbol.for('ferry.earlyOpen');

const open = Ferry.open;
Ferry.open = async function openFerry(options) {
  // Read the database while the module loads: `earlyOpen` takes the leader lock if it is
  // free and reads every row, and Ferry.open carries on from there (it checks the schema
  // version, and opens the usual way when the read found nothing it can use).
  const name = options && typeof options === 'object' ? options.name : undefined;
  const early = typeof name === 'string' && name !== '' ? earlyOpen(name, `ferry:${name}:leader`) : null;
  await init();
  if (!early) return open.call(Ferry, options);
  // The caller's object stays untouched: its fields are read through the prototype.
  const withEarly = Object.assign(Object.create(options), { [EARLY_OPEN]: early });
  try {
    return await open.call(Ferry, withEarly);
  } catch (e) {
    // An open that failed before taking the lock over must not keep it from other tabs.
    early.then((found) => found.release && found.release());
    throw e;
  }
};
