/**
 * A turn of the event loop that never ends soon: a batch loop of warm operations awaits only resolved promises,
 * so the arena's end-of-turn work waits. What it keeps for that moment must not grow with the secrets it sees.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SecretFactory } from '../../../layer/src/index';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('200,000 secrets made, read and closed in one turn leave no trace on the heap', () => {
  const factory = new SecretFactory();
  const cycle = () => {
    const secret = factory.createRandom(32);
    secret.withBytes((bytes) => bytes[0]);
    secret.close();
  };
  for (let i = 0; i < 1000; i++) cycle(); // warm up: pages, pool, JIT
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 200_000; i++) cycle();
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  // Kept per secret until the turn ended, 200,000 allocation records would take well over 10 MB.
  expect(grown).toBeLessThan(4 * 1024 * 1024);
  factory.close();
});
