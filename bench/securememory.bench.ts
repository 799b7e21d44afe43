/**
 * Secure memory against plain Buffers, in one run: createRandom, withBytes, and an AES-256-GCM encrypt of 1 KiB
 * with the key read from a Secret. The bar: the secure path within 1.3x of the plain one.
 */
import { createCipheriv, randomBytes, randomFillSync } from 'node:crypto';
import { SecretFactory } from '../layer/src/index';
import { SecretArena } from '../layer/src/securememory/secret-arena';
import { measurePair, printTable, type PairResult } from './harness';

/** The plain counterpart of Secret: same API and checks, bytes in an ordinary heap Buffer. */
class PlainSecret {
  private closed = false;
  constructor(private readonly bytes: Buffer) {}
  withBytes<T>(fn: (bytes: Uint8Array) => T): T {
    if (this.closed) throw new Error('closed');
    return fn(this.bytes);
  }
  close(): void {
    this.bytes.fill(0);
    this.closed = true;
  }
}

/** Plain random bytes drawn from a pool the way the arena draws them (one randomFillSync per 31 keys). */
const pool = Buffer.alloc(1008);
let poolUsed = pool.length;
function pooledRandom(length: number): Buffer {
  if (poolUsed + length > pool.length) {
    randomFillSync(pool);
    poolUsed = 0;
  }
  const out = Buffer.from(pool.subarray(poolUsed, poolUsed + length));
  pool.fill(0, poolUsed, poolUsed + length);
  poolUsed += length;
  return out;
}

function gcmEncrypt(key: Uint8Array, iv: Buffer, data: Buffer): number {
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  return cipher.update(data).length + cipher.final().length + cipher.getAuthTag().length;
}

export function runSecureMemoryBench(): PairResult[] {
  const factory = new SecretFactory();
  const secret = factory.createRandom(32);
  const plain = new PlainSecret(randomBytes(32));
  const iv = randomBytes(12);
  const data = randomBytes(1024);
  let sink = 0;

  const results = [
    measurePair({
      name: 'createRandom(32) + close',
      subject: () => factory.createRandom(32).close(),
      baselineName: 'randomBytes(32) + fill(0)',
      baseline: () => {
        randomBytes(32).fill(0);
      },
    }),
    measurePair({
      name: 'createRandom(32) + close',
      subject: () => factory.createRandom(32).close(),
      baselineName: 'pooled random Buffer + fill(0)',
      baseline: () => new PlainSecret(pooledRandom(32)).close(),
    }),
    measurePair({
      name: 'withBytes (read one byte)',
      subject: () => {
        sink += secret.withBytes((b) => b[7]);
      },
      baselineName: 'same API over a Buffer',
      baseline: () => {
        sink += plain.withBytes((b) => b[7]);
      },
      opsPerRound: 200_000,
    }),
    measurePair({
      name: 'AES-256-GCM encrypt 1 KiB, key from a Secret',
      subject: () => {
        sink += secret.withBytes((key) => gcmEncrypt(key, iv, data));
      },
      baselineName: 'key in a Buffer',
      baseline: () => {
        sink += gcmEncrypt(plain.withBytes((key) => key), iv, data);
      },
    }),
  ];

  // The price of the protections the turn window amortises: protect 'per-access' (an mprotect pair around every
  // read), and a secret that must be unsealed (and another sealed) on each access.
  const arena = new SecretArena({ maxLockedBytes: 65536, logger: { warn: () => undefined } });
  const tight = new SecretFactory({ arena });
  const strictFactory = new SecretFactory({ protect: 'per-access' });
  const strictSecret = strictFactory.createRandom(32);
  const many = Array.from({ length: 5000 }, () => tight.createRandom(32));
  let next = 0;
  // The first use of a secret in a turn: its page is reopened (mprotect) and, where views are per turn, a view
  // is made. Ending the turn by hand (closeOpenRegions) stands in for the setImmediate between turns.
  const turnArena = new SecretArena({ logger: { warn: () => undefined } });
  const turnSecret = new SecretFactory({ arena: turnArena }).createRandom(32);
  results.push(
    measurePair({
      name: 'first withBytes in a turn (page reopened)',
      subject: () => {
        turnArena.closeOpenRegions();
        sink += turnSecret.withBytes((b) => b[0]);
      },
      baselineName: 'same API over a Buffer',
      baseline: () => {
        sink += plain.withBytes((b) => b[0]);
      },
      opsPerRound: 20_000,
    }),
    measurePair({
      name: "withBytes, protect: 'per-access'",
      subject: () => {
        sink += strictSecret.withBytes((b) => b[0]);
      },
      baselineName: 'same API over a Buffer',
      baseline: () => {
        sink += plain.withBytes((b) => b[0]);
      },
      opsPerRound: 20_000,
    }),
    measurePair({
      name: "AES-256-GCM encrypt 1 KiB, protect: 'per-access'",
      subject: () => {
        sink += strictSecret.withBytes((key) => gcmEncrypt(key, iv, data));
      },
      baselineName: 'key in a Buffer',
      baseline: () => {
        sink += gcmEncrypt(plain.withBytes((key) => key), iv, data);
      },
    }),
    measurePair({
      name: 'withBytes of a sealed secret (5,000 live, 64 KiB budget)',
      subject: () => {
        sink += many[next++ % many.length].withBytes((b) => b[0]);
      },
      baselineName: 'same API over a Buffer',
      baseline: () => {
        sink += plain.withBytes((b) => b[0]);
      },
      opsPerRound: 5_000,
    }),
  );
  if (sink === 0.5) console.log(sink);
  tight.close();
  strictFactory.close();
  arena.shutdown();
  turnArena.shutdown();
  factory.close();
  return results;
}

if (require.main === module) printTable('secure memory vs plain Buffers', runSecureMemoryBench());
