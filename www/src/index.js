// Placeholder for the Ferry sample app (to be replaced): loads the engine's WebAssembly
// from pkg/ (built by `npm run build:wasm`) and says whether that worked.
import init from 'ferry/ferry.js';

const status = document.getElementById('engine-status');

try {
  await init();
  status.textContent = 'Ferry engine (WebAssembly) loaded. The sample app is coming soon.';
} catch (err) {
  status.textContent = `Could not load the Ferry engine: ${err}`;
  console.error(err);
}
