/**
 * Secure memory in worker threads, run in a child process (unprivileged, under a memlock limit) by the tests:
 * `generations` times, 4 workers at once each make and check `secrets` secrets, and once all four have, end in one
 * of four ways (close the factory and return; return without closing; process.exit(); terminated by this thread
 * while idle). Prints one JSON line: VmLck at the start and after each generation, and what each worker saw.
 * Usage: worker-threads-child <generations> <secrets>
 */
import { createHash } from 'node:crypto';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { SecretFactory } from '../../layer/src/index';
import { readLockedBytes } from '../../layer/src/securememory/limits';

type Ending = 'close' | 'return' | 'process.exit' | 'terminate';
const ENDINGS: Ending[] = ['close', 'return', 'process.exit', 'terminate'];

interface WorkerReport {
  ending: Ending;
  ok: boolean;
  error?: string;
  lockedBytes?: number;
  lockFailureErrno?: number;
}

const known = (seed: string) => createHash('sha256').update(seed).digest();

function inWorker(): void {
  const { ending, secrets } = workerData as { ending: Ending; secrets: number };
  let report: WorkerReport;
  let factory: SecretFactory | undefined;
  try {
    factory = new SecretFactory({ logger: { warn: () => undefined } });
    const made = Array.from({ length: secrets }, (_, i) => factory!.createFrom(known(`w${i}`)));
    const ok = made.every((s, i) => s.withBytes((b) => Buffer.from(b).equals(known(`w${i}`))));
    const { lockedBytes, lockFailureErrno } = factory.stats();
    report = { ending, ok, lockedBytes, lockFailureErrno };
  } catch (err) {
    report = { ending, ok: false, error: `${(err as Error).name}: ${(err as Error).message}` };
  }
  parentPort!.postMessage(report);
  // Every worker holds its secrets until all four have made theirs: their arenas meet in one budget.
  parentPort!.once('message', () => {
    if (ending === 'close') factory?.close();
    else if (ending === 'process.exit') process.exit(0);
    // 'return': the event loop empties and the thread ends; 'terminate': kept alive until terminated.
    else if (ending === 'terminate') setInterval(() => undefined, 1000);
    if (ending !== 'terminate') parentPort!.close();
  });
}

interface Running {
  report: Promise<WorkerReport>;
  exited: Promise<void>;
  finish(): void;
}

function startWorker(ending: Ending, secrets: number): Running {
  // tsx's --import does not reach worker threads: register its CommonJS hook in the worker first.
  const source = `require('tsx/cjs'); require(${JSON.stringify(__filename)});`;
  const worker = new Worker(source, { eval: true, workerData: { ending, secrets } });
  const exited = new Promise<void>((resolve, reject) => {
    worker.on('error', reject);
    worker.on('exit', () => resolve());
  });
  const report = new Promise<WorkerReport>((resolve, reject) => {
    worker.once('message', resolve);
    void exited.then(() => reject(new Error(`worker (${ending}) exited without a report`)), reject);
  });
  const finish = () => (ending === 'terminate' ? void worker.terminate() : worker.postMessage('finish'));
  return { report, exited, finish };
}

async function main() {
  const [generations, secrets] = process.argv.slice(2).map(Number);
  const lockedAtStart = readLockedBytes() ?? 0;
  const lockedAfter: number[] = [];
  const failures: WorkerReport[] = [];
  let lockRefusals = 0;
  let lockedTogether = 0;
  for (let g = 0; g < generations; g++) {
    const workers = ENDINGS.map((ending) => startWorker(ending, secrets));
    const reports = await Promise.all(workers.map((w) => w.report));
    lockedTogether = Math.max(lockedTogether, readLockedBytes() ?? 0);
    for (const w of workers) w.finish();
    await Promise.all(workers.map((w) => w.exited));
    // The library releases a terminated worker's pages in its 'exit' listener, which ran before ours.
    lockedAfter.push(readLockedBytes() ?? 0);
    failures.push(...reports.filter((r) => !r.ok));
    lockRefusals += reports.filter((r) => (r.lockFailureErrno ?? 0) !== 0).length;
  }
  return {
    ok: true,
    lockedAtStart,
    lockedTogether,
    lockedAfter,
    failures: failures.slice(0, 3),
    failed: failures.length,
    lockRefusals,
  };
}

if (isMainThread) {
  main().then(
    (report) => process.stdout.write(JSON.stringify(report) + '\n'),
    (err: Error) => process.stdout.write(JSON.stringify({ ok: false, message: err.message }) + '\n'),
  );
} else {
  inWorker();
}
