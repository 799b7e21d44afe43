/**
 * Run in a child process (unprivileged, under Lambda's 64 KiB memlock limit) by the lifecycle tests: setup(),
 * 1,000 cold encrypts in flight when shutdownAsync() is called, setup() again on the same SQLite file, decrypt
 * every record, shutdownAsync(). Prints one JSON line: outcomes and VmLck at each step.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decryptStringAsync, encryptStringAsync, setup, shutdownAsync } from '../../layer/src/index';
import { readLockedBytes } from '../../layer/src/securememory/limits';

async function main() {
  const dir = mkdtempSync(path.join(tmpdir(), 'lifecycle-'));
  const config = {
    ServiceName: 'svc',
    ProductID: 'prod',
    Metastore: 'sqlite' as const,
    ConnectionString: path.join(dir, 'keys.db'),
    KMS: 'test-debug-static' as const,
  };
  const lockedAtStart = readLockedBytes() ?? 0;
  try {
    setup(config);
    const inFlight = Array.from({ length: 1000 }, (_, i) => encryptStringAsync(`partition-${i}`, `record ${i}`));
    const closed = shutdownAsync();
    const outcomes = await Promise.allSettled(inFlight);
    await closed;
    const lockedAfterShutdown = readLockedBytes() ?? 0;
    const failures = outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason));

    setup(config);
    let roundTrips = 0;
    for (let i = 0; i < outcomes.length; i++) {
      const o = outcomes[i];
      if (o.status === 'fulfilled' && (await decryptStringAsync(`partition-${i}`, o.value)) === `record ${i}`) roundTrips++;
    }
    await shutdownAsync();
    const lockedAtEnd = readLockedBytes() ?? 0;
    console.log(JSON.stringify({ lockedAtStart, lockedAfterShutdown, lockedAtEnd, failures: failures.slice(0, 3), failed: failures.length, roundTrips }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
