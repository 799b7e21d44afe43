/**
 * Trees of worker threads that hold secrets, run in a child process (unprivileged, under a memlock limit) by the
 * tests. Workers load the library from an esbuild bundle (plain CommonJS: a worker starts in milliseconds, where
 * tsx in every worker would take a quarter of a second) and talk to this thread over a BroadcastChannel, which
 * reaches every thread of the process at any depth.
 *
 *   worker-tree-child grandchildren <rounds> <secrets>   each round: a worker starts a worker holding <secrets>
 *                                                       secrets, and this thread terminates the first one
 *   worker-tree-child property <trees> <seed>            random trees (fast-check), one subtree ended by
 *                                                       terminate of an ancestor, process.exit or a throw
 *
 * Prints one JSON line.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { BroadcastChannel, Worker } from 'node:worker_threads';
import { buildSync } from 'esbuild';
import fc from 'fast-check';
import { SecretFactory } from '../../layer/src/index';
import { readLockedBytes } from '../../layer/src/securememory/limits';
import { processLockBudget } from '../../layer/src/securememory/lock-budget';
import { repoRoot } from './unprivileged';

interface TreeNode {
  secrets: number;
  children: TreeNode[];
}

type Ending = 'terminate' | 'process.exit' | 'throw';

type Message =
  | { type: 'ready'; path: string; ok: boolean; error?: string }
  | { type: 'ended'; path: string }
  | { type: 'allocated'; path: string; ok: boolean; error?: string }
  | { cmd: 'end'; path: string; how: Ending }
  | { cmd: 'allocate' };

/** The library as one CommonJS file next to node_modules (koffi resolves from there). */
function bundleLayer(): string {
  const dir = path.join(repoRoot, 'node_modules', '.cache', 'asherah-tests');
  mkdirSync(dir, { recursive: true });
  const outfile = path.join(dir, `worker-tree-layer-${process.pid}.cjs`);
  buildSync({
    stdin: {
      contents: "export { SecretFactory } from './layer/src/index';",
      resolveDir: repoRoot,
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['koffi', 'better-sqlite3', '@aws-sdk/*'],
    outfile,
    logLevel: 'silent',
  });
  return outfile;
}

/**
 * One node of a tree: makes and checks its secrets, starts its children, then answers commands: end (itself, or
 * for 'terminate' the parent ends the child), allocate (one more strict secret). Plain JavaScript, evaluated;
 * it reports the exits of its children, which this thread cannot see.
 */
const WORKER_SOURCE = `
const { workerData, Worker, BroadcastChannel } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { SecretFactory } = require(workerData.bundle);
const { node, path } = workerData;
const channel = new BroadcastChannel('worker-tree');
const key = (i) => createHash('sha256').update(path + ':' + i).digest();
const post = (message) => channel.postMessage(message);
let factory;
let ready;
try {
  factory = new SecretFactory({ logger: { warn: () => undefined } });
  const held = Array.from({ length: node.secrets }, (_, i) => factory.createFrom(key(i)));
  const ok = held.every((secret, i) => secret.withBytes((b) => Buffer.from(b).equals(key(i))));
  ready = { type: 'ready', path, ok };
} catch (err) {
  ready = { type: 'ready', path, ok: false, error: err.name + ': ' + err.message };
}
const children = node.children.map((child, i) => {
  const worker = new Worker(workerData.source, {
    eval: true,
    workerData: { ...workerData, node: child, path: path + '.' + i },
  });
  // A child that throws must not take this thread down with it.
  worker.on('error', () => undefined);
  worker.on('exit', () => post({ type: 'ended', path: path + '.' + i }));
  return worker;
});
channel.onmessage = ({ data }) => {
  if (data.cmd === 'end') {
    if (data.path === path && data.how === 'process.exit') process.exit(3);
    if (data.path === path && data.how === 'throw') setImmediate(() => { throw new Error('worker-tree: thrown on purpose'); });
    const parent = data.path.slice(0, data.path.lastIndexOf('.'));
    if (data.how === 'terminate' && parent === path) void children[Number(data.path.slice(parent.length + 1))].terminate();
  } else if (data.cmd === 'allocate') {
    try {
      const secret = factory.createFrom(key('more'));
      const ok = secret.withBytes((b) => Buffer.from(b).equals(key('more')));
      secret.close();
      post({ type: 'allocated', path, ok });
    } catch (err) {
      post({ type: 'allocated', path, ok: false, error: err.name + ': ' + err.message });
    }
  }
};
post(ready);
`;
const lockedNow = () => readLockedBytes() ?? 0;

class Tree {
  readonly #channel = new BroadcastChannel('worker-tree');
  readonly #waiters: ((message: Message) => boolean)[] = [];
  readonly #seen: Message[] = [];

  constructor() {
    this.#channel.onmessage = ({ data }: { data: Message }) => {
      this.#seen.push(data);
      for (let i = this.#waiters.length - 1; i >= 0; i--) if (this.#waiters[i](data)) this.#waiters.splice(i, 1);
    };
  }

  /** Resolves with the messages that `match` picks once there are `count` of them (seen before the call too). */
  collect(match: (message: Message) => boolean, count: number, timeoutMs = 20_000): Promise<Message[]> {
    const found = this.#seen.filter(match);
    if (found.length >= count) return Promise.resolve(found.slice(0, count));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${count} messages, have ${found.length}`)), timeoutMs);
      this.#waiters.push((message) => {
        if (!match(message)) return false;
        found.push(message);
        if (found.length < count) return false;
        clearTimeout(timer);
        resolve(found);
        return true;
      });
    });
  }

  post(message: Message): void {
    this.#channel.postMessage(message);
  }

  reset(): void {
    this.#seen.length = 0;
  }

  close(): void {
    this.#channel.close();
  }
}

function startRoot(bundle: string, node: TreeNode): { worker: Worker; exited: Promise<void> } {
  // Each node starts its children with the same source, which it finds in its workerData.
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bundle, node, path: 'r', source: WORKER_SOURCE } });
  worker.on('error', () => undefined);
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return { worker, exited };
}

function paths(node: TreeNode, at = 'r'): string[] {
  return [at, ...node.children.flatMap((child, i) => paths(child, `${at}.${i}`))];
}

/** Lets the exit handlers of this thread (which give back what stopped threads left) run. */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 20));

async function grandchildren(rounds: number, secrets: number) {
  const bundle = bundleLayer();
  const tree = new Tree();
  const lockedAtStart = lockedNow();
  const lockedAfter: number[] = [];
  const failures: string[] = [];
  for (let round = 0; round < rounds; round++) {
    tree.reset();
    const { worker, exited } = startRoot(bundle, { secrets: 0, children: [{ secrets, children: [] }] });
    const ready = (await tree.collect((m) => 'type' in m && m.type === 'ready', 2)) as { ok: boolean; error?: string }[];
    for (const report of ready) if (!report.ok) failures.push(report.error ?? 'secrets read back wrong');
    await worker.terminate();
    await exited;
    await settle();
    lockedAfter.push(lockedNow());
  }
  tree.close();
  // The main thread's strict factory must still find room.
  let mainThread = 'ok';
  try {
    const factory = new SecretFactory({ logger: { warn: () => undefined } });
    factory.createRandom(32).close();
    factory.close();
  } catch (err) {
    mainThread = `${(err as Error).name}: ${(err as Error).message}`;
  }
  return { lockedAtStart, lockedAfter, budgetHeld: processLockBudget().heldBytes, failures, mainThread };
}

const treeArbitrary = fc.letrec<{ node: TreeNode }>((tie) => ({
  node: fc.record({
    // Up to 40 one-unit secrets and the arena's own units fit one page: trees stay inside 64 KiB.
    secrets: fc.integer({ min: 0, max: 40 }),
    children: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant<TreeNode[]>([]),
      fc.array(tie('node'), { maxLength: 2 }),
    ),
  }),
})).node;

function depth(node: TreeNode): number {
  return 1 + Math.max(0, ...node.children.map(depth));
}

async function property(trees: number, seed: number) {
  const bundle = bundleLayer();
  const tree = new Tree();
  const lockedAtStart = lockedNow();
  const limit = 65536;
  let maxLocked = 0;
  let run = 0;
  const endings = { terminate: 0, 'process.exit': 0, throw: 0 };
  /** Trees by how many levels of workers lie below the root worker. */
  const depths: Record<number, number> = {};
  await fc.assert(
    fc.asyncProperty(
      treeArbitrary.filter((t) => depth(t) <= 4 && paths(t).length <= 6),
      fc.nat(),
      fc.constantFrom<Ending>('terminate', 'process.exit', 'throw'),
      async (spec, pick, how) => {
        run++;
        tree.reset();
        const all = paths(spec);
        depths[depth(spec) - 1] = (depths[depth(spec) - 1] ?? 0) + 1;
        const { worker, exited } = startRoot(bundle, spec);
        const ready = (await tree.collect((m) => 'type' in m && m.type === 'ready', all.length)) as {
          ok: boolean;
          error?: string;
        }[];
        if (!ready.every((r) => r.ok)) throw new Error(`a worker could not make its secrets: ${JSON.stringify(ready)}`);
        maxLocked = Math.max(maxLocked, lockedNow());
        if (processLockBudget().heldBytes > limit || lockedNow() > limit) throw new Error('over the budget');
        // End one subtree.
        const target = all[pick % all.length];
        endings[how]++;
        const ended = all.filter((p) => p === target || p.startsWith(`${target}.`));
        if (target === 'r') {
          if (how === 'terminate') await worker.terminate();
          else tree.post({ cmd: 'end', path: target, how });
          await exited;
        } else {
          tree.post({ cmd: 'end', path: target, how });
          await tree.collect((m) => 'type' in m && m.type === 'ended' && m.path === target, 1);
        }
        await settle();
        // Every thread still alive can still allocate a strict secret.
        const alive = all.filter((p) => !ended.includes(p));
        if (alive.length > 0) {
          tree.post({ cmd: 'allocate' });
          const answers = (await tree.collect((m) => 'type' in m && m.type === 'allocated', alive.length)) as {
            path: string;
            ok: boolean;
            error?: string;
          }[];
          const failed = answers.filter((a) => !a.ok);
          if (failed.length > 0) throw new Error(`live threads could not allocate: ${JSON.stringify(failed)}`);
          await worker.terminate();
          await exited;
          await settle();
        }
        const after = lockedNow();
        if (after !== lockedAtStart) {
          throw new Error(`tree ${JSON.stringify(spec)} ended at ${target} by ${how}: VmLck ${after}, at start ${lockedAtStart}`);
        }
        if (processLockBudget().heldBytes !== 0) throw new Error(`budget still holds ${processLockBudget().heldBytes} bytes`);
      },
    ),
    { seed, numRuns: trees, endOnFailure: true },
  );
  tree.close();
  return { trees: run, lockedAtStart, lockedAtEnd: lockedNow(), maxLocked, endings, depths };
}

async function main() {
  const [mode, a, b] = process.argv.slice(2);
  if (mode === 'grandchildren') return grandchildren(Number(a), Number(b));
  if (mode === 'property') return property(Number(a), Number(b));
  throw new Error(`unknown mode ${mode}`);
}

main().then(
  (report) => process.stdout.write(JSON.stringify({ ok: true, ...report }) + '\n'),
  (err: Error) => process.stdout.write(JSON.stringify({ ok: false, name: err.name, message: err.message }) + '\n'),
);
