/**
 * Uses secrets with known bytes the way the library does (createFrom, withBytes into node:crypto, sealing and
 * unsealing past a small locked budget, close), then writes a V8 heap snapshot for the test to search.
 * Usage: node --expose-gc heap-snapshot-child.ts <snapshot path> [--leak]
 * --leak keeps a hex copy of one key on the heap: the control that proves the search can find a copy.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { writeHeapSnapshot } from 'node:v8';
import { SecretFactory } from '../../layer/src/index';
import { SecretArena } from '../../layer/src/securememory/secret-arena';

export const knownKey = (i: number) => createHash('sha256').update(`heap-known-key-${i}`).digest();
export const KNOWN_KEYS = 20;

function main(): void {
  const [snapshotPath, flag] = process.argv.slice(2);
  const arena = new SecretArena({ maxLockedBytes: 4096, logger: { warn: () => undefined } });
  const factory = new SecretFactory({ arena });
  const known = Array.from({ length: KNOWN_KEYS }, (_, i) => factory.createFrom(knownKey(i)));
  // Enough other secrets that the known ones are sealed and unsealed as they are used.
  const fillers = Array.from({ length: 200 }, () => factory.createRandom(32));
  const payload = randomBytes(1024);
  let output = 0;
  for (let round = 0; round < 3; round++) {
    for (const secret of known) {
      output += secret.withBytes((key) => {
        const cipher = createCipheriv('aes-256-gcm', key, randomBytes(12));
        return Buffer.concat([cipher.update(payload), cipher.final(), cipher.getAuthTag()]).length;
      });
      fillers[round].withBytes((bytes) => bytes.length);
    }
  }
  if (flag === '--leak') {
    (globalThis as Record<string, unknown>).leaked = known[0].withBytes((key) => Buffer.from(key).toString('hex'));
  }
  for (const secret of known.slice(0, KNOWN_KEYS / 2)) secret.close();
  (globalThis as { gc?: () => void }).gc?.();
  writeHeapSnapshot(snapshotPath);
  process.stdout.write(JSON.stringify({ ok: true, output, sealed: arena.stats().seals }) + '\n');
}

if (require.main === module) main();
