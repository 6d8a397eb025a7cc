// Where do the wasm bytes go? Reads a wasm module that still has its `name` section (the
// cargo output before wasm-bindgen/wasm-opt, e.g. target/wasm32-unknown-unknown/release/ferry.wasm)
// and prints code bytes per crate and the largest functions.
//
//   node bench/wasm-size.mjs [path/to/ferry.wasm] [--top 25]
import fs from 'node:fs';
import path from 'node:path';

const argv = process.argv.slice(2);
const top = argv.includes('--top') ? Number(argv[argv.indexOf('--top') + 1]) : 25;
const file =
  argv.find((a) => a.endsWith('.wasm')) ||
  path.join(process.env.CARGO_TARGET_DIR || 'target', 'wasm32-unknown-unknown', 'release', 'ferry.wasm');
const buf = fs.readFileSync(file);

let pos = 8;
const u32 = () => {
  let result = 0;
  let shift = 0;
  for (;;) {
    const b = buf[pos++];
    result += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(b & 0x80)) return result;
  }
};
const str = () => {
  const len = u32();
  const s = buf.toString('utf8', pos, pos + len);
  pos += len;
  return s;
};

let imports = 0;
const bodies = [];
const names = new Map();
const sections = {};
while (pos < buf.length) {
  const id = buf[pos++];
  const size = u32();
  const end = pos + size;
  if (id === 2) {
    const n = u32();
    for (let i = 0; i < n; i++) {
      str();
      str();
      const kind = buf[pos++];
      if (kind === 0) {
        u32();
        imports++;
      } else if (kind === 1) {
        pos++;
        const flags = u32();
        u32();
        if (flags & 1) u32();
      } else if (kind === 2) {
        const flags = u32();
        u32();
        if (flags & 1) u32();
      } else if (kind === 3) {
        pos += 2;
      } else {
        u32();
      }
    }
  } else if (id === 10) {
    const n = u32();
    for (let i = 0; i < n; i++) {
      const len = u32();
      bodies.push(len);
      pos += len;
    }
  } else if (id === 0) {
    const name = str();
    sections[`custom:${name}`] = size;
    if (name === 'name') {
      while (pos < end) {
        const sub = buf[pos++];
        const subSize = u32();
        const subEnd = pos + subSize;
        if (sub === 1) {
          const n = u32();
          for (let i = 0; i < n; i++) {
            const idx = u32();
            names.set(idx, str());
          }
        }
        pos = subEnd;
      }
    }
  }
  sections[id] = (sections[id] || 0) + size;
  pos = end;
}

// Crate of a mangled or plain Rust symbol: the first path segment.
function crateOf(name) {
  let m = name.match(/^_ZN(?:\d+)(\w+?)(?=\d)/);
  if (name.startsWith('_ZN')) {
    const seg = name.slice(3).match(/^(\d+)/);
    if (seg) {
      const n = Number(seg[1]);
      m = name.substr(3 + seg[1].length, n);
      if (m.startsWith('_$LT$')) {
        const inner = name.match(/_\$LT\$([a-z_0-9]+)\.\.|_\$LT\$([a-z_0-9]+)/);
        return inner ? inner[1] || inner[2] : '<impl>';
      }
      return m.replace(/17h[0-9a-f]{16}E$/, '');
    }
  }
  const plain = name.match(/^<?([a-z_][a-z0-9_]*)::/);
  if (plain) return plain[1];
  return name.startsWith('__wbg') || name.startsWith('__wbindgen') ? 'wasm-bindgen glue' : '(other)';
}

const byCrate = new Map();
const fns = bodies.map((len, i) => ({ len, name: names.get(imports + i) || `func[${imports + i}]` }));
for (const f of fns) byCrate.set(crateOf(f.name), (byCrate.get(crateOf(f.name)) || 0) + f.len);
const code = bodies.reduce((a, b) => a + b, 0);
console.log(`${file}: ${buf.length} bytes; code ${code} bytes in ${bodies.length} functions; data ${sections[11] || 0} bytes`);
console.log('\ncode bytes by crate:');
for (const [c, b] of [...byCrate.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${String(b).padStart(9)}  ${((100 * b) / code).toFixed(1).padStart(5)}%  ${c}`);
}
console.log('\nlargest functions:');
for (const f of fns.sort((a, b) => b.len - a.len).slice(0, top)) {
  console.log(`${String(f.len).padStart(9)}  ${f.name.slice(0, 140)}`);
}
