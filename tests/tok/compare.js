#!/usr/bin/env node
// Compares adsmith's tokenizer with js-tiktoken on the real cl100k_base and
// o200k_base vocabularies. Not part of the default test run: it needs the npm
// package js-tiktoken (which ships both rank tables, ~3 MB) installed somewhere:
//
//   npm install --prefix /tmp/tok-npm js-tiktoken
//   node tests/tok/compare.js BUILD/adsmith-bench-tok /tmp/tok-npm/node_modules
//
// It writes each table as a standard .tiktoken rank file into a temporary
// folder (never into the repository), encodes a corpus with both tokenizers
// (adsmith's through `adsmith-bench-tok -i`) and prints how many items get
// exactly the same ids and how the total counts compare. Exits 1 on any
// difference.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const [bench, modules] = process.argv.slice(2);
if (!bench || !modules) {
  console.error('usage: compare.js ADSMITH_BENCH_TOK NODE_MODULES_DIR');
  process.exit(2);
}
const jt = require(require.resolve('js-tiktoken', { paths: [modules] }));
const root = path.resolve(__dirname, '..', '..');

// The corpus: the repository's prose and JSON cut into paragraphs, the
// fixture's ad copy line by line, and synthetic strings aimed at the pre-split.
function corpus() {
  const items = [];
  const files = ['README.md', 'models/README.md', 'tests/tok/fixtures/corpus.txt'];
  for (const dir of ['schemas', 'schemas/examples']) {
    const d = path.join(root, dir);
    if (fs.existsSync(d)) {
      for (const f of fs.readdirSync(d).sort()) if (f.endsWith('.json')) files.push(path.join(dir, f));
    }
  }
  for (const f of files) {
    const p = path.join(root, f);
    if (!fs.existsSync(p)) continue;
    const text = fs.readFileSync(p, 'utf8');
    items.push(text);
    for (const para of text.split(/\n\n/)) if (para) items.push(para);
    for (const line of text.split('\n')) if (line) items.push(line);
  }
  const synthetic = [
    "I'm sure you'll like it; we've got what they'd want. IT'S DONE'LL 'S 's",
    '1234567890 3.14159 1,000,000 2026-11-23T06:57:09Z 0x7fffffff',
    '   leading and trailing spaces   ', '\n\n\n', 'a\r\nb\r\n\r\nc', '\t\ttabs\tand  \u00a0nbsp',
    'emoji 🎉🚀👩‍👩‍👧 👍🏽 flags 🇩🇪🇯🇵', '中文文本，带有标点符号。日本語のテキスト、カタカナ。한국어 텍스트',
    'Ελληνικά, русский текст, العربية, हिन्दी, ไทย', 'ÜBER àccénts Æsir ǅ ǈ ſ K', '((( ))) --- ... !!! ??? /// \\\\\\',
    'function f(x) { return x * 2; }\n    if (a && b) { c++; }\n', '<|endoftext|> <|fim_prefix|>',
    'x'.repeat(3000), ' '.repeat(500) + 'x', '\n'.repeat(200) + 'y', '9'.repeat(1000),
    // Characters whose "white space" status differs between regex engines.
    'a \u0085 b \u2028 c \u00a0 d \u3000 e  \u2003f', 'a \u180e b', 'a \ufeff b \ufeff',
    "it'\u017f OK 'K", // long s and Kelvin sign under (?i:'s|'k...)
    'https://example.com/path?query=1&b=2#frag', 'ad_id=42&cb={CACHEBUSTER}&price=${AUCTION_PRICE}',
  ];
  items.push(...synthetic);
  // Random strings over a mixed alphabet, reproducible.
  let s = 12345;
  const rnd = () => { s = (s * 1103515245 + 12345) & 0x7fffffff; return s; };
  const alphabet = [...'abcdefghij ABC  \n\t.,;:\'"!?0123456789-_/()[]{}éüßñ你好世界日本語🎉😀👍\u00a0\u3000'];
  for (let i = 0; i < 2000; i++) {
    let t = '';
    const n = rnd() % 80;
    for (let k = 0; k < n; k++) t += alphabet[rnd() % alphabet.length];
    items.push(t);
  }
  return items.filter((t) => !t.includes('\0'));
}

function rankFile(name, dir) {
  const r = require(require.resolve('js-tiktoken/ranks/' + name, { paths: [modules] }));
  const ranks = r.default || r;
  const lines = [];
  for (const line of ranks.bpe_ranks.split('\n').filter(Boolean)) {
    const [, off, ...toks] = line.split(' ');
    const o = parseInt(off, 10);
    toks.forEach((t, i) => lines.push(t + ' ' + (o + i)));
  }
  const p = path.join(dir, name + '.tiktoken');
  fs.writeFileSync(p, lines.join('\n') + '\n');
  return { path: p, ranks };
}

const items = corpus();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-compare-'));
let bad = 0;
try {
  for (const [name, pat] of [['cl100k_base', 'cl100k'], ['o200k_base', 'o200k']]) {
    const { path: file, ranks } = rankFile(name, dir);
    const enc = new jt.Tiktoken(ranks);
    const out = execFileSync(bench, ['-i', '-p', pat, file], {
      input: Buffer.from(items.join('\0'), 'utf8'), maxBuffer: 1 << 28,
    }).toString().split('\n');
    let same = 0, ours = 0, theirs = 0, bytes = 0;
    const diffs = [];
    items.forEach((t, i) => {
      const want = enc.encode(t, [], []);
      const got = out[i] === '' ? [] : out[i].split(' ').map(Number);
      ours += got.length;
      theirs += want.length;
      bytes += Buffer.byteLength(t, 'utf8');
      if (got.length === want.length && got.every((v, k) => v === want[k])) same++;
      else if (diffs.length < 5) diffs.push({ text: t.slice(0, 80), ours: got.length, theirs: want.length });
    });
    console.log(`${name}: ${items.length} items, ${same} identical ids (${(100 * same / items.length).toFixed(2)}%); ` +
      `tokens ours ${ours}, js-tiktoken ${theirs}; ${bytes} bytes (${(bytes / theirs).toFixed(2)} bytes/token)`);
    for (const d of diffs) console.log('  differs:', JSON.stringify(d));
    bad += items.length - same;
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(bad === 0 ? 0 : 1);
