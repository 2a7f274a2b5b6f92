// Eval loop behind the Node.js Jupyter kernel: one JSON command per line on stdin (read
// synchronously, so the user's own synchronous stdin reads work), prompt "<token>> " after
// each command, marker lines "<token>:<kind>:<name>:<text>" for results, errors, completions.
'use strict';
const fs = require('fs');
const vm = require('vm');
const util = require('util');
const { createRequire } = require('module');
const path = require('path');

const T = process.argv[2];
globalThis.require = createRequire(path.join(process.cwd(), '__cell__.js'));
globalThis.module = { exports: {} };
globalThis.exports = globalThis.module.exports;

let interrupted = false;
process.on('SIGINT', () => { interrupted = true; });

const out = (s) => fs.writeSync(1, s);
const report = (kind, name, text) => out(`${T}:${kind}:${name}:${String(text).replace(/\n/g, '\x01')}\n`);

let pending = Buffer.alloc(0);
function readLine() {
  const buf = Buffer.alloc(65536);
  for (;;) {
    const nl = pending.indexOf(10);
    if (nl >= 0) {
      const line = pending.subarray(0, nl).toString();
      pending = pending.subarray(nl + 1);
      return line;
    }
    let n;
    try { n = fs.readSync(0, buf, 0, buf.length, null); } catch (e) {
      if (e.code === 'EAGAIN') { continue; }
      if (e.code === 'EOF') { return null; }
      throw e;
    }
    if (n === 0) { return null; }
    pending = Buffer.concat([pending, buf.subarray(0, n)]);
  }
}

// a cell is done when no timer, socket, child process or fs request it started is alive
// (stdio and signal handles don't count: they live as long as the driver)
// and no more of them than were alive when the cell started (an interrupted setInterval lives on)
const IGNORED = new Set(['TTYWrap', 'PipeWrap', 'SignalWrap', 'FSReqCallback']);
function resources() {
  const counts = {};
  for (const r of process.getActiveResourcesInfo()) {
    if (!IGNORED.has(r)) { counts[r] = (counts[r] || 0) + 1; }
  }
  return counts;
}
let baseline = {};
function busy() {
  const now = resources();
  return Object.keys(now).some((r) => now[r] > (baseline[r] || 0));
}
const tick = () => new Promise((resolve) => setImmediate(resolve));

function compile(code) {
  try {
    return new vm.Script(code, { filename: 'cell' });
  } catch (e) {
    if (e instanceof SyntaxError && /await/.test(e.message)) {
      // top-level await: run the cell as an async function (its declarations stay local);
      // a single expression keeps its value
      try {
        return new vm.Script(`(async () => (\n${code}\n))()`, { filename: 'cell', lineOffset: -1 });
      } catch (e2) {
        return new vm.Script(`(async () => {\n${code}\n})()`, { filename: 'cell', lineOffset: -1 });
      }
    }
    throw e;
  }
}

async function run(file) {
  const code = fs.readFileSync(file, 'utf8');
  interrupted = false;
  baseline = resources();
  try {
    let value = compile(code).runInThisContext({ breakOnSigint: true, displayErrors: false });
    if (value && typeof value.then === 'function') { value = await value; }
    // let timers and I/O the cell started finish, as `node script.js` would
    while (busy() && !interrupted) { await new Promise((r) => setTimeout(r, 2)); }
    if (interrupted) { report('error', 'KeyboardInterrupt', 'KeyboardInterrupt: interrupted'); return; }
    if (value !== undefined) { report('result', '', util.inspect(value)); }
  } catch (e) {
    const interrupt = e && e.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED';
    const name = interrupt ? 'KeyboardInterrupt' : (e && e.name) || 'Error';
    let text = String(e);
    if (e instanceof Error) {
      // "Name: message" and the frames of the user's code, not ours or node's internals
      const frames = String(e.stack || '').split('\n').filter((l) => /^\s+at /.test(l)
        && !l.includes(__filename) && !l.includes('node:') && !l.includes('sigintHandlersWrap'));
      text = [`${e.name}: ${e.message}`, ...frames].join('\n');
    }
    report('error', name, text);
  }
}

function complete(prefix) {
  const m = /^(.*?)\.?([\w$]*)$/.exec(prefix);
  const base = prefix.includes('.') ? m[1] : '';
  const name = m[2];
  let names = [];
  try {
    let obj = globalThis;
    if (base) {
      if (!/^[\w$.]+$/.test(base)) { return; }
      obj = vm.runInThisContext(base);
    }
    for (let o = obj; o !== null && o !== undefined; o = Object.getPrototypeOf(o)) {
      names = names.concat(Object.getOwnPropertyNames(o));
    }
  } catch (e) { return; }
  for (const n of new Set(names)) {
    if (n.startsWith(name)) { out((base ? `${base}.` : '') + n + '\n'); }
  }
}

function check(file) {
  const code = fs.readFileSync(file, 'utf8');
  try { new vm.Script(code); return 'complete'; } catch (e) {
    if (!(e instanceof SyntaxError)) { return 'complete'; }
    return /Unexpected end of input|Unterminated|missing \) after/.test(e.message) ? 'incomplete' : 'invalid';
  }
}

async function main() {
  out(`${T}> `);
  for (;;) {
    const line = readLine();
    if (line === null) { break; }
    let cmd;
    try { cmd = JSON.parse(line); } catch (e) { out(`${T}> `); continue; }
    if (cmd.op === 'run') { await run(cmd.path); } else if (cmd.op === 'complete') { complete(cmd.prefix); } else if (cmd.op === 'check') { out(check(cmd.path) + '\n'); }
    await tick();
    out(`${T}> `);
  }
  process.exit(0);
}
main();
