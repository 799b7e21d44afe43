/**
 * Run in a child process (usually without CAP_IPC_LOCK, under a memlock limit) by the secure-memory tests:
 * creates `count` secrets with known bytes, reads every one back, and prints one JSON line with what it saw.
 * Usage: memlock-child <count> <strict|best-effort>
 */
import { createHash } from 'node:crypto';
import { SecretFactory, type Secret } from '../../layer/src/index';
import { readLockedBytes } from '../../layer/src/securememory/limits';

const count = Number(process.argv[2]);
const mode = process.argv[3] as 'strict' | 'best-effort';
const warnings: string[] = [];
const expected = (i: number) => createHash('sha256').update(`secret-${i}`).digest();

function main() {
  const factory = new SecretFactory({ mlock: mode, logger: { warn: (message) => warnings.push(message) } });
  let peakLocked = readLockedBytes() ?? 0;
  const sample = () => {
    peakLocked = Math.max(peakLocked, readLockedBytes() ?? 0);
  };
  const secrets: Secret[] = [];
  for (let i = 0; i < count; i++) {
    secrets.push(factory.createFrom(expected(i)));
    if (i % 1000 === 0) sample();
  }
  let wrong = 0;
  for (let i = 0; i < count; i++) {
    const want = expected(i);
    if (!secrets[i].withBytes((bytes) => Buffer.compare(bytes, want) === 0)) wrong++;
    if (i % 1000 === 0) sample();
  }
  sample();
  const stats = factory.stats();
  factory.close();
  return { ok: true, count, wrong, peakLocked, stats, warnings };
}

try {
  process.stdout.write(JSON.stringify(main()) + '\n');
} catch (err) {
  const e = err as Error;
  process.stdout.write(JSON.stringify({ ok: false, name: e.name, message: e.message, warnings }) + '\n');
}
