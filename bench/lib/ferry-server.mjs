// Starting ferry-server on a free loopback port, minting tokens, seeding records through the
// push API.
import { spawn, execFileSync } from 'node:child_process';
import net from 'node:net';

const SECRET = 'ferry-bench-secret-0123456789';

export function serverTools(SERVER_BIN) {
  async function freePort() {
    return new Promise((resolve) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
    });
  }

  async function startServer(database, extra = []) {
    const port = await freePort();
    const args = ['--database', database, '--secret', SECRET, '--listen', `127.0.0.1:${port}`, '--rate-limit', '0', '--max-in-flight', '0', ...extra];
    const child = spawn(SERVER_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
      // Warnings and errors only (RUST_LOG=warn): a failing benchmark shows the server's side.
      for (const line of String(d).split('\n').filter(Boolean)) console.error(`ferry-server: ${line}`);
    });
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 200; i++) {
      if (child.exitCode !== null) throw new Error(`ferry-server exited: ${stderr}`);
      try {
        const r = await fetch(`${url}/v1/sync/changes`);
        if (r.status) break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return {
      url,
      host: '127.0.0.1',
      port,
      async stop() {
        if (child.exitCode === null) {
          child.kill('SIGTERM');
          await new Promise((r) => child.once('exit', r));
        }
      },
    };
  }

  function token(database, tenant, user = 'u') {
    return execFileSync(SERVER_BIN, ['--database', database, '--secret', SECRET, 'token', '--tenant', tenant, '--user', user], {
      encoding: 'utf8',
    }).trim();
  }

  /** Seeds `n` records into the server through its push API (batches of 500). */
  async function seedServer(url, tok, n, clientId = 'seeder') {
    for (let start = 0; start < n; start += 500) {
      const mutations = [];
      for (let i = start; i < Math.min(n, start + 500); i++) {
        mutations.push({
          op_id: `${clientId}.${i + 1}`,
          client_id: clientId,
          seq: i + 1,
          collection: 'notes',
          record_id: `s-${String(i).padStart(7, '0')}`,
          op: 'create',
          base_version: 0,
          patch: { title: `Note ${i}`, body: 'Site visit notes: check the north wall for damp, photograph the meter.', done: i % 2 === 0, n: i },
          hlc: `${String(Date.now()).padStart(15, '0')}-${String(i).padStart(10, '0')}-${clientId}`,
        });
      }
      const r = await fetch(`${url}/v1/sync/mutations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json', 'idempotency-key': `${clientId}-${start}` },
        body: JSON.stringify({ client_id: clientId, mutations }),
      });
      if (!r.ok) throw new Error(`seed push ${r.status}: ${await r.text()}`);
      const ans = await r.json();
      if (ans.accepted.length !== mutations.length) throw new Error(`seed: ${JSON.stringify(ans).slice(0, 300)}`);
    }
  }

  return { startServer, token, seedServer };
}
