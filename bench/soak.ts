/**
 * npm run soak: 1,000,000 encrypt+decrypt round trips over 10,000 partitions on SQLite and a static key, in a
 * process without CAP_IPC_LOCK under Lambda's 64 KiB RLIMIT_MEMLOCK (as root it re-runs itself that way). Every
 * 100,000 operations it prints RSS, heap (after a GC), VmLck, the arena's resident and sealed secrets and the
 * cache hit rate; it fails if VmLck ever passes the limit, a round trip is wrong, or memory grows after the warm-up.
 *
 *   npm run soak -- [--ops 1000000] [--partitions 10000] [--ik-cache <size>] [--sk-cache <size>]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  SecretFactory,
  SessionFactory,
  SqliteMetastore,
  StaticKms,
  type CryptoPolicyOptions,
} from '../layer/src/index';
import { readLockedBytes } from '../layer/src/securememory/limits';

const LIMIT_BYTES = 64 * 1024;
const REPORT_EVERY = 100_000;
const YIELD_EVERY = 100;
/** Heap and RSS may grow this much after the first report (the warm-up fills caches) before the run fails. */
const GROWTH_ALLOWANCE = 1.25;
const GROWTH_SLACK_BYTES = 8 * 1024 * 1024;

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${name} takes a positive integer`);
  return value;
}

/** Root with CAP_IPC_LOCK ignores the limit: run again without it, as Lambda runs us. */
function reExecUnprivileged(): never {
  const args = [
    '--inh-caps=-ipc_lock', '--bounding-set=-ipc_lock',
    'prlimit', `--memlock=${LIMIT_BYTES}:${LIMIT_BYTES}`,
    process.execPath, '--expose-gc', '--import', 'tsx', __filename, ...process.argv.slice(2),
  ];
  const result = spawnSync('setpriv', args, { stdio: 'inherit', env: { ...process.env, SOAK_CHILD: '1' } });
  process.exit(result.status ?? 1);
}

interface Sample {
  ops: number;
  seconds: number;
  rssMiB: number;
  heapMiB: number;
  vmLck: number;
  resident: number;
  sealed: number;
  /** Cache hits among lookups in this interval (not since the start: the warm-up would hide the steady state). */
  hitRate: number;
  metastoreCalls: number;
}

async function soak(): Promise<void> {
  const ops = option('ops', 1_000_000);
  const partitions = option('partitions', 10_000);
  const policy: CryptoPolicyOptions = {};
  if (process.argv.includes('--ik-cache')) policy.intermediateKeyCacheMaxSize = option('ik-cache', 0);
  if (process.argv.includes('--sk-cache')) policy.systemKeyCacheMaxSize = option('sk-cache', 0);
  const dir = mkdtempSync(path.join(tmpdir(), 'soak-'));
  const secrets = new SecretFactory();
  const kms = new StaticKms('3c'.repeat(32), secrets);
  const metastore = new SqliteMetastore(path.join(dir, 'keys.db'));
  const factory = SessionFactory.create({ serviceName: 'soak', productId: 'bench', metastore, kms, secrets, policy });
  const gc = (globalThis as { gc?: () => void }).gc;
  const samples: Sample[] = [];
  let wrong = 0;
  let peakLocked = 0;
  const started = process.hrtime.bigint();
  console.log(`soak: ${ops} round trips over ${partitions} partitions, RLIMIT_MEMLOCK ${LIMIT_BYTES}, IK cache ${policy.intermediateKeyCacheMaxSize ?? 'default'}`);
  console.log('| ops | s | RSS MiB | heap MiB | VmLck | resident | sealed | interval hit rate | interval metastore calls |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  let before = { hits: 0, misses: 0, metastoreCalls: 0 };
  try {
    // A fixed pseudo-random walk over the partitions (no Math.random: runs are comparable).
    const next = mulberry32(12345);
    for (let i = 1; i <= ops; i++) {
      const partition = `tenant-${Math.floor(next() * partitions)}`;
      const session = factory.getSession(partition);
      const text = `record ${i} of ${partition}`;
      const drr = await session.encrypt(text);
      if ((await session.decrypt(drr)).toString() !== text) wrong++;
      if (i % 1000 === 0) peakLocked = Math.max(peakLocked, readLockedBytes() ?? 0);
      // Warm operations await only resolved promises, so without this the loop would be one long event-loop turn:
      // key pages would stay open and the per-secret views' native finalizers would wait for it to end. A real
      // workload yields on its own I/O; a batch job should do as this loop does.
      if (i % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
      if (i % REPORT_EVERY === 0) {
        gc?.();
        const m = factory.metrics();
        const sample: Sample = {
          ops: i,
          seconds: Number(process.hrtime.bigint() - started) / 1e9,
          rssMiB: process.memoryUsage().rss / 2 ** 20,
          heapMiB: process.memoryUsage().heapUsed / 2 ** 20,
          vmLck: readLockedBytes() ?? 0,
          resident: m.secureMemory.residentSecrets,
          sealed: m.secureMemory.sealedSecrets,
          hitRate: (m.cacheHits - before.hits) / Math.max(1, m.cacheHits - before.hits + m.cacheMisses - before.misses),
          metastoreCalls: m.metastoreCalls - before.metastoreCalls,
        };
        before = { hits: m.cacheHits, misses: m.cacheMisses, metastoreCalls: m.metastoreCalls };
        samples.push(sample);
        console.log(
          `| ${sample.ops} | ${sample.seconds.toFixed(1)} | ${sample.rssMiB.toFixed(1)} | ${sample.heapMiB.toFixed(1)} | ` +
            `${sample.vmLck} | ${sample.resident} | ${sample.sealed} | ${(sample.hitRate * 100).toFixed(1)} % | ${sample.metastoreCalls} |`,
        );
      }
    }
  } finally {
    await factory.close();
    kms.close();
    metastore.close();
    secrets.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const failures: string[] = [];
  if (wrong > 0) failures.push(`${wrong} round trips returned other data`);
  if (peakLocked > LIMIT_BYTES) failures.push(`VmLck reached ${peakLocked} bytes, over the ${LIMIT_BYTES}-byte limit`);
  const base = samples[Math.min(1, samples.length - 1)]; // after the warm-up
  const last = samples[samples.length - 1];
  if (base !== undefined && last !== undefined) {
    for (const [what, from, to] of [
      ['heap', base.heapMiB, last.heapMiB],
      ['RSS', base.rssMiB, last.rssMiB],
    ] as const) {
      if (to * 2 ** 20 > from * 2 ** 20 * GROWTH_ALLOWANCE + GROWTH_SLACK_BYTES) {
        failures.push(`${what} grew from ${from.toFixed(1)} MiB to ${to.toFixed(1)} MiB after the warm-up`);
      }
    }
  }
  console.log(`peak VmLck ${peakLocked} bytes; ${failures.length === 0 ? 'ok' : `FAILED: ${failures.join('; ')}`}`);
  if (failures.length > 0) process.exit(1);
}

/** A small seeded PRNG with good low bits (a plain LCG modulo 10,000 visits only a fraction of the partitions). */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

if (process.platform === 'linux' && process.getuid?.() === 0 && process.env.SOAK_CHILD !== '1') reExecUnprivileged();
void soak();
