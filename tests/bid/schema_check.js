#!/usr/bin/env node
/*
 * Every BidResponse adsmith writes must validate against IAB Tech Lab's
 * OpenRTB 2.6 JSON Schema (tests/bid/schema/, draft 2020-12), and every bid
 * in it must answer its request by OpenRTB's rules, checked here again in
 * JavaScript, independently of the C validator (ortb_check_bid).
 *
 * The responses come from the adsmith-test-ortb-resp program
 * (tests/bid/resp_gen.c), which answers each request in tests/bid/fixtures/
 * and prints one JSON line per response. ajv is the one pinned by
 * tests/schema/package.json (scripts/test.sh installs it with npm ci); a
 * missing ajv is a failure, never a skip.
 *
 * Usage: node schema_check.js RESP_GEN_BIN [SOURCE_ROOT]
 */
'use strict';

const childProcess = require('child_process');
const fs = require('fs');
const path = require('path');

const root = process.argv[3] || process.env.ADSMITH_SOURCE_ROOT || path.join(__dirname, '..', '..');
const gen = process.argv[2];
if (!gen) {
  console.error('usage: node schema_check.js RESP_GEN_BIN [SOURCE_ROOT]');
  process.exit(2);
}

let Ajv2020;
try {
  Ajv2020 = require(path.join(root, 'tests', 'schema', 'node_modules', 'ajv', 'dist', '2020')).default;
} catch (e) {
  console.error('schema_check: ajv is not installed in tests/schema/node_modules; run scripts/test.sh ' +
                '(or npm ci --prefix tests/schema)');
  process.exit(1);
}

const schemaDir = path.join(__dirname, 'schema');
const ajv = new Ajv2020({strict: true, allErrors: true});
for (const f of fs.readdirSync(schemaDir).filter((f) => f.endsWith('.json')).sort()) {
  ajv.addSchema(JSON.parse(fs.readFileSync(path.join(schemaDir, f), 'utf8')));
}
const validate = ajv.getSchema('https://iabtechlab.com/openrtb/2.6/BidResponse.json');
if (!validate) {
  console.error('schema_check: BidResponse.json not found in ' + schemaDir);
  process.exit(1);
}

const fixtureDir = path.join(root, 'tests', 'bid', 'fixtures');
const out = childProcess.execFileSync(gen, [fixtureDir], {encoding: 'utf8', maxBuffer: 64 << 20});
const lines = out.split('\n').filter((l) => l.length > 0);

const failures = [];
let bids = 0;
let answered = new Set();

/* Floors in micro-units, rounded up, as OpenRTB floors compare with prices. */
const micros = (x) => Math.ceil(x * 1e6 - 1e-6);
const usdPer = {USD: 1.0, EUR: 1.08, GBP: 1.27, JPY: 0.0067}; /* BIDFIX_FX (tests/bid/bidfix.h) */

function checkBid(req, resp, seat, bid, where) {
  const problems = [];
  const imp = (req.imp || []).find((i) => i && i.id === bid.impid);
  if (!imp) return [`${where}: impid ${JSON.stringify(bid.impid)} is not an imp of the request`];
  const cur = resp.cur || 'USD';
  const allowed = Array.isArray(req.cur) && req.cur.length > 0 ? req.cur : ['USD'];
  if (!allowed.includes(cur)) problems.push(`${where}: cur ${cur} not in ${JSON.stringify(allowed)}`);
  let floor = typeof imp.bidfloor === 'number' ? imp.bidfloor : 0;
  let floorCur = typeof imp.bidfloorcur === 'string' ? imp.bidfloorcur : 'USD';
  const deals = (imp.pmp && Array.isArray(imp.pmp.deals)) ? imp.pmp.deals : [];
  if (bid.dealid !== undefined) {
    const deal = deals.find((d) => d && d.id === bid.dealid);
    if (!deal) problems.push(`${where}: dealid ${bid.dealid} is not a deal of imp ${imp.id}`);
    else {
      floor = typeof deal.bidfloor === 'number' ? deal.bidfloor : 0;
      floorCur = typeof deal.bidfloorcur === 'string' ? deal.bidfloorcur : 'USD';
      if (Array.isArray(deal.wseat) && deal.wseat.length > 0 && !deal.wseat.includes(seat))
        problems.push(`${where}: deal ${deal.id} does not allow seat ${seat}`);
    }
  } else if (imp.pmp && imp.pmp.private_auction === 1) {
    problems.push(`${where}: imp ${imp.id} is a private auction; the bid has no dealid`);
  }
  if (floor > 0) {
    const rate = usdPer[floorCur] / usdPer[cur];
    if (!(rate > 0)) problems.push(`${where}: no rate ${floorCur} -> ${cur}`);
    else if (Math.round(bid.price * 1e6) < micros(micros(floor) / 1e6 * rate))
      problems.push(`${where}: price ${bid.price} ${cur} below floor ${floor} ${floorCur}`);
  }
  if (!(bid.price > 0)) problems.push(`${where}: price ${bid.price} not above 0`);
  const kinds = {1: 'banner', 2: 'video', 3: 'audio', 4: 'native'};
  if (bid.mtype !== undefined && !imp[kinds[bid.mtype]])
    problems.push(`${where}: mtype ${bid.mtype} not offered by imp ${imp.id}`);
  if (bid.mtype === 1 && imp.banner) {
    const formats = Array.isArray(imp.banner.format) && imp.banner.format.length > 0 ? imp.banner.format
      : (imp.banner.w && imp.banner.h ? [{w: imp.banner.w, h: imp.banner.h}] : []);
    if (formats.length > 0 && !formats.some((f) => f && f.w === bid.w && f.h === bid.h))
      problems.push(`${where}: size ${bid.w}x${bid.h} not among imp ${imp.id}'s formats`);
  }
  for (const d of bid.adomain || []) {
    for (const b of req.badv || []) {
      const dl = d.toLowerCase();
      const bl = String(b).toLowerCase();
      if (dl === bl || dl.endsWith('.' + bl)) problems.push(`${where}: adomain ${d} blocked by badv ${b}`);
    }
  }
  for (const c of bid.cat || []) {
    if ((req.bcat || []).includes(c)) problems.push(`${where}: cat ${c} in bcat`);
  }
  if (bid.bundle && (req.bapp || []).includes(bid.bundle)) problems.push(`${where}: bundle in bapp`);
  if (Array.isArray(req.wseat) && req.wseat.length > 0 && !req.wseat.includes(seat))
    problems.push(`${where}: seat ${seat} not in wseat`);
  if (Array.isArray(req.bseat) && req.bseat.includes(seat)) problems.push(`${where}: seat ${seat} in bseat`);
  for (const u of ['nurl', 'burl', 'lurl']) {
    if (bid[u] !== undefined && !/^https:\/\/[^\s"]+$/.test(bid[u])) problems.push(`${where}: ${u} is not a URL`);
  }
  return problems;
}

for (const line of lines) {
  let rec;
  try {
    rec = JSON.parse(line);
  } catch (e) {
    failures.push(`not JSON: ${line.slice(0, 200)}`);
    continue;
  }
  const where = `${rec.fixture} (${rec.kind})`;
  if (!validate(rec.response)) {
    failures.push(`${where}: schema: ${ajv.errorsText(validate.errors)}`);
    continue;
  }
  if (rec.check !== 'ok') failures.push(`${where}: ortb_check_bid says ${rec.check}`);
  if (rec.fixture === '-') continue;
  const req = JSON.parse(fs.readFileSync(path.join(fixtureDir, rec.fixture), 'utf8'));
  if (rec.response.id !== req.id) failures.push(`${where}: id ${rec.response.id} is not the request's ${req.id}`);
  if (rec.kind === 'nobid') {
    if (rec.response.seatbid !== undefined || typeof rec.response.nbr !== 'number')
      failures.push(`${where}: a no-bid must carry nbr and no seatbid`);
    continue;
  }
  answered.add(rec.fixture);
  for (const sb of rec.response.seatbid) {
    for (const bid of sb.bid) {
      bids++;
      failures.push(...checkBid(req, rec.response, sb.seat, bid, `${where} bid ${bid.id}`));
    }
  }
}

const fixtures = fs.readdirSync(fixtureDir).filter((f) => f.endsWith('.json'));
const nobids = lines.filter((l) => l.includes('"kind":"nobid"')).length;
if (nobids < fixtures.length + 1) failures.push(`expected a no-bid line per fixture, got ${nobids}`);
if (answered.size < fixtures.length / 2) failures.push(`only ${answered.size} of ${fixtures.length} fixtures got bids`);

console.log(`schema_check: ${lines.length} responses (${bids} bids, ${answered.size} of ${fixtures.length} ` +
            `fixtures answered with bids), ${failures.length} failures`);
if (failures.length > 0) {
  for (const f of failures.slice(0, 50)) console.error('  ' + f);
  process.exit(1);
}
