'use strict';
/**
 * Runs the real Rust Asherah (npm `asherah-linux-x64-gnu`, raw napi addon) for one batch of operations, in its own
 * process: building a factory hardens the host process (RLIMIT_CORE=0, PR_SET_DUMPABLE=0, PR_SET_NO_NEW_PRIVS=1),
 * so it must never load inside jest. Plain CommonJS so that bare `node` runs it without a loader.
 *
 * stdin: ONE JSON request (see OracleRequest in oracle.ts)
 *   { config?: {...camelCase raw addon config...}, mode?: 'setup' | 'env', env?: {NAME: value | null},
 *     ops: [ {op:'encrypt'|'encryptAsync', partition, dataB64} | {op:'decrypt'|'decryptAsync', partition, drr}
 *          | {op:'encryptString', partition, text} | {op:'decryptString', partition, drr} ] }
 * stdout: ONE JSON line
 *   { ok: true, results: [ {drr} | {dataB64} | {text} | {error: {message, code?}} ], logs, timings }
 *   { ok: false, error: {message, stack, code?}, logs, timings, results? }   (setup or shutdown failed)
 * Everything else (console output, the addon's log events) goes to stderr. Exit status is 0 whenever a response was
 * written, so a non-zero status means the child itself crashed.
 *
 * mode 'setup' (default): the global setup(config) / encrypt / decrypt / shutdown API, as the asherah npm wrapper uses.
 * mode 'env': SessionFactory.fromEnv() with one session per op, configured only by environment variables
 *   (SQLITE_PATH, KMS, STATIC_MASTER_KEY_HEX, SERVICE_NAME, PRODUCT_ID, REGION_SUFFIX, SESSION_CACHE, ...). It is
 *   the only way to get region-suffixed key ids from this addon with SQLite: setup() ignores enableRegionSuffix for
 *   every metastore except DynamoDB. Async ops are not available in this mode (the session class has none).
 *
 * `env` entries are applied to process.env before the addon loads (null deletes a variable); the Rust side reads
 * the real environment, which Node updates on assignment.
 */
const { Buffer } = require('node:buffer');
const { readFileSync } = require('node:fs');
const { performance } = require('node:perf_hooks');
const { setImmediate } = require('node:timers');

const ADDON = 'asherah-linux-x64-gnu/index.linux-x64-gnu.node';

// Only the final response may reach stdout.
console.log = console.error;
console.info = console.error;
console.warn = console.error;
console.debug = console.error;

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

function errorOf(err, withStack) {
  const e = err instanceof Error ? err : new Error(String(err));
  const out = { message: e.message };
  if (e.code !== undefined) out.code = String(e.code);
  if (withStack) out.stack = e.stack;
  return out;
}

function respond(response) {
  process.stdout.write(JSON.stringify(response) + '\n');
}

function requireString(op, field) {
  if (typeof op[field] !== 'string') throw new Error(`op ${JSON.stringify(op.op)}: ${field} must be a string`);
  return op[field];
}

async function runOp(addon, factory, op) {
  const partition = requireString(op, 'partition');
  if (factory) {
    const session = factory.getSession(partition);
    try {
      switch (op.op) {
        case 'encrypt':
          return { drr: session.encrypt(Buffer.from(requireString(op, 'dataB64'), 'base64')) };
        case 'decrypt':
          return { dataB64: session.decrypt(requireString(op, 'drr')).toString('base64') };
        case 'encryptString':
          return { drr: session.encryptString(requireString(op, 'text')) };
        case 'decryptString':
          return { text: session.decryptString(requireString(op, 'drr')) };
        default:
          throw new Error(`op ${JSON.stringify(op.op)} is not supported in env mode`);
      }
    } finally {
      session.close();
    }
  }
  switch (op.op) {
    case 'encrypt':
      return { drr: addon.encrypt(partition, Buffer.from(requireString(op, 'dataB64'), 'base64')) };
    case 'decrypt':
      return { dataB64: addon.decrypt(partition, Buffer.from(requireString(op, 'drr'), 'utf8')).toString('base64') };
    case 'encryptAsync':
      return { drr: await addon.encryptAsync(partition, Buffer.from(requireString(op, 'dataB64'), 'base64')) };
    case 'decryptAsync':
      return {
        dataB64: (await addon.decryptAsync(partition, Buffer.from(requireString(op, 'drr'), 'utf8'))).toString('base64'),
      };
    case 'encryptString':
      return { drr: addon.encryptString(partition, requireString(op, 'text')) };
    case 'decryptString':
      return { text: addon.decryptString(partition, requireString(op, 'drr')) };
    default:
      throw new Error(`unknown op ${JSON.stringify(op.op)}`);
  }
}

async function main() {
  const t0 = performance.now();
  const timings = {};
  let request;
  try {
    request = JSON.parse(readFileSync(0, 'utf8'));
    if (!request || typeof request !== 'object') throw new Error('request must be a JSON object');
    if (request.ops !== undefined && !Array.isArray(request.ops)) throw new Error('ops must be an array');
  } catch (err) {
    respond({ ok: false, error: errorOf(new Error(`bad oracle request: ${err.message}`), true), logs: [], timings });
    return;
  }
  for (const [name, value] of Object.entries(request.env || {})) {
    if (value === null || value === undefined) delete process.env[name];
    else process.env[name] = String(value);
  }

  let addon;
  try {
    addon = require(ADDON);
  } catch (err) {
    respond({ ok: false, error: errorOf(err, true), logs: [], timings });
    return;
  }
  timings.loadMs = performance.now() - t0;

  // The addon logs (warn and above) through a thread-safe function, delivered on a later event-loop turn: drain
  // after each step so every op gets its own log lines. They carry the inner error chain that the thrown message
  // leaves out (e.g. "decrypt: failed to load IK id=… created=…").
  const pending = [];
  addon.setLogHook((event) => {
    const line = `${event.level} ${event.target}: ${event.message}`;
    pending.push(line);
    process.stderr.write(`[asherah] ${line}\n`);
  });
  const drain = async () => {
    await nextTurn();
    await nextTurn();
    return pending.splice(0);
  };
  const logs = [];

  let factory;
  const tSetup = performance.now();
  try {
    if (request.mode === 'env') factory = addon.SessionFactory.fromEnv();
    else if (request.mode === undefined || request.mode === 'setup') addon.setup(request.config);
    else throw new Error(`unknown mode ${JSON.stringify(request.mode)}`);
  } catch (err) {
    timings.setupMs = performance.now() - tSetup;
    logs.push(...(await drain()));
    addon.setLogHook(null);
    respond({ ok: false, error: errorOf(err, true), logs, timings });
    return;
  }
  timings.setupMs = performance.now() - tSetup;
  logs.push(...(await drain()));

  const results = [];
  timings.opsMs = [];
  for (const op of request.ops || []) {
    const tOp = performance.now();
    let result;
    try {
      if (!op || typeof op !== 'object') throw new Error('op must be an object');
      result = await runOp(addon, factory, op);
    } catch (err) {
      result = { error: errorOf(err, false) };
    }
    timings.opsMs.push(performance.now() - tOp);
    const opLogs = await drain();
    if (opLogs.length > 0) result.logs = opLogs;
    results.push(result);
  }

  const tShutdown = performance.now();
  let shutdownError;
  try {
    if (factory) factory.close();
    else addon.shutdown();
  } catch (err) {
    shutdownError = errorOf(err, true);
  }
  timings.shutdownMs = performance.now() - tShutdown;
  logs.push(...(await drain()));
  addon.setLogHook(null);
  timings.totalMs = performance.now() - t0;
  if (shutdownError) respond({ ok: false, error: shutdownError, results, logs, timings });
  else respond({ ok: true, results, logs, timings });
}

main().catch((err) => {
  process.stderr.write(`oracle-child: ${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 1;
});
