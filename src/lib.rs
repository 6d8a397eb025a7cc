//! Ferry browser engine (wasm-bindgen): IndexedDB store, fetch transport, multi-tab and the JS API.
