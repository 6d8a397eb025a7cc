export * from './ferry.js';

/**
 * Loads the WebAssembly module once (Ferry.open does it for you). `input` is where the
 * `.wasm` file is, when a bundler does not resolve it from `import.meta.url`.
 */
export function init(input?: string | URL | Request | Response | BufferSource | WebAssembly.Module): Promise<void>;
