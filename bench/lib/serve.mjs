// A tiny static server on 127.0.0.1 for the benchmark pages. Paths under /v1/ are proxied to
// the ferry-server currently set with `setUpstream`, so pages and API share one origin.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.map': 'application/json',
};

export async function serve(root) {
  let upstream = null;
  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/v1/')) {
      if (!upstream) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end('{"error":{"code":"unavailable","message":"no server"}}');
        return;
      }
      const up = http.request(
        { host: upstream.host, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (ur) => {
          res.writeHead(ur.statusCode, ur.headers);
          ur.pipe(res);
        },
      );
      up.on('error', (e) => {
        // Said aloud: a proxied request that fails would otherwise show only as a 502 in a page.
        console.error(`bench proxy: ${req.method} ${req.url.slice(0, 80)} failed upstream: ${e.code || e.message}`);
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      req.pipe(up);
      return;
    }
    const url = new URL(req.url, 'http://x');
    const file = path.join(root, path.normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, ''));
    fs.readFile(file, (err, data) => {
      if (err) {
        res.writeHead(404);
        res.end('not found');
        return;
      }
      // no-store: every page load fetches and compiles its code afresh (no warm code cache).
      const headers = { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' };
      // The scale pages are cross-origin isolated, so performance.measureUserAgentSpecificMemory
      // (the browser's own memory measure, wasm memory included) is available to them.
      if (url.pathname.startsWith('/scale-')) {
        headers['cross-origin-opener-policy'] = 'same-origin';
        headers['cross-origin-embedder-policy'] = 'require-corp';
      }
      res.writeHead(200, headers);
      res.end(data);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    setUpstream(u) {
      upstream = u;
    },
    close: () => new Promise((r) => server.close(r)),
  };
}
