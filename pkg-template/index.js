// ferry-sync entry point: the wasm-bindgen module, loaded on first use.
//
// `Ferry.open()` loads the WebAssembly module itself, so apps need no setup step; call
// `init()` yourself only to start loading earlier or to pass the .wasm location.
import initWasm, { Ferry } from './ferry.js';

export * from './ferry.js';

let loading;

/** Loads the WebAssembly module once; later calls return the same promise. */
export function init(input) {
  loading ??= initWasm(input === undefined ? undefined : { module_or_path: input }).then(() => undefined);
  return loading;
}

const open = Ferry.open;
Ferry.open = async function openFerry(options) {
  await init();
  return open.call(Ferry, options);
};
