// Builds what the end-to-end tests need: the sample app (engine → pkg/, webpack → www/dist/)
// and the reference server's release binary. Run by `npm run test:e2e` before the tests.
//
//   FERRY_E2E_SKIP_BUILD=1   use the existing www/dist and server binary as they are
//   FERRY_SERVER_BIN=<path>  use this server binary (no cargo build)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ROOT, serverBinary } from './harness.mjs';

function run(cmd, args) {
  console.log(`e2e: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`e2e: \`${cmd} ${args.join(' ')}\` failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

if (process.env.FERRY_E2E_SKIP_BUILD === '1') {
  console.log('e2e: FERRY_E2E_SKIP_BUILD=1: using the existing build');
} else {
  run('npm', ['run', 'build:app']);
  if (!process.env.FERRY_SERVER_BIN) run('cargo', ['build', '--release', '-p', 'ferry-server']);
}
for (const f of ['www/dist/index.html', 'www/dist/sw.js', 'www/dist/ferry/sw.js', 'www/dist/manifest.webmanifest']) {
  if (!existsSync(`${ROOT}/${f}`)) {
    console.error(`e2e: ${f} is missing (run npm run build:app)`);
    process.exit(1);
  }
}
if (!existsSync(serverBinary())) {
  console.error(`e2e: no server binary at ${serverBinary()}`);
  process.exit(1);
}
