/**
 * Scenarios of secure memory that can end a process (a touched PROT_NONE page is SIGSEGV) or that need a real
 * memlock limit, run in a child process by the secure-memory tests (usually unprivileged under a memlock limit).
 * Each prints one JSON line with what it saw. Usage: securememory-child <scenario>
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MessageChannel } from 'node:worker_threads';
import { SecretFactory, type Secret } from '../../layer/src/index';
import { readLockedBytes } from '../../layer/src/securememory/limits';
import { SecretArena } from '../../layer/src/securememory/secret-arena';
import { loadNative, type NativeMemory } from '../../layer/src/securememory/native';

const known = (seed: string) => createHash('sha256').update(seed).digest();
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const quiet = { warn: () => undefined };

/** The error's class name, or 'ok'. */
function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return (err as Error).name;
  }
}

/** Anonymous read-write-capable mappings excluded from dumps (dd): the library's, not the kernel's [vvar]. */
function secureMappings(): number {
  let count = 0;
  let anonymous = false;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(\S*)/.exec(line);
    if (header) anonymous = header[1] === '';
    else if (anonymous && line.startsWith('VmFlags:') && / dd( |$)/.test(line)) count++;
  }
  return count;
}

/** Whether `text` shows the key: raw, hex (plain or spaced as for a Buffer), base64, or as a run of numbers. */
function showsKey(text: string, key: Buffer): boolean {
  const hex = key.toString('hex');
  const forms = [key.toString('latin1'), hex, hex.match(/../g)!.join(' '), key.toString('base64')];
  if (forms.some((form) => text.includes(form))) return true;
  // util.inspect pads array elements into columns: compare the numbers, not the text.
  const numbers = (text.match(/\d+/g) ?? []).join(',');
  return numbers.includes([...key.subarray(0, 8)].join(','));
}

/** The text `print` makes, or the name of what it threw (a refusal is no leak). */
function attempt(print: () => string | undefined): string {
  try {
    return String(print());
  } catch (err) {
    return `threw ${(err as Error).name}`;
  }
}

type Move = (view: Uint8Array) => ArrayBuffer | Promise<ArrayBuffer> | undefined;

/** ArrayBuffer.prototype[name] (Node 22+), or on Node 20 the one a vm context has behind V8's flag. */
function arrayBufferMethod(name: 'transfer' | 'transferToFixedLength' | 'resize'): (this: ArrayBuffer, n?: number) => ArrayBuffer {
  const own = (ArrayBuffer.prototype as unknown as Record<string, unknown>)[name];
  if (typeof own === 'function') return own as never;
  setFlagsFromString('--harmony-rab-gsab-transfer');
  try {
    return runInNewContext(`ArrayBuffer.prototype.${name}`) as never;
  } finally {
    setFlagsFromString('--no-harmony-rab-gsab-transfer');
  }
}

/** Every way a callback can try to move its view's ArrayBuffer out of withBytes. */
const MOVES: Record<string, Move> = {
  transfer: (view) => arrayBufferMethod('transfer').call(view.buffer as ArrayBuffer),
  'transfer(same length)': (view) => arrayBufferMethod('transfer').call(view.buffer as ArrayBuffer, view.length),
  'transfer(longer)': (view) => arrayBufferMethod('transfer').call(view.buffer as ArrayBuffer, view.length * 2),
  transferToFixedLength: (view) => arrayBufferMethod('transferToFixedLength').call(view.buffer as ArrayBuffer),
  resize: (view) => arrayBufferMethod('resize').call(view.buffer as ArrayBuffer, view.length * 2),
  'structuredClone with a transfer list': (view) =>
    structuredClone(view.buffer as ArrayBuffer, { transfer: [view.buffer as ArrayBuffer] }),
  'postMessage with a transfer list': (view) => {
    const { port1, port2 } = new MessageChannel();
    const received = new Promise<ArrayBuffer>((resolve) => port2.once('message', resolve));
    try {
      port1.postMessage(view.buffer, [view.buffer as ArrayBuffer]);
    } catch (err) {
      port2.close();
      throw err;
    } finally {
      port1.close();
    }
    return received.finally(() => port2.close()) as Promise<ArrayBuffer>;
  },
};

/** What a buffer shows: zeros, one of the named secrets, or something else; 'none' if there is no buffer. */
function shows(buffer: ArrayBuffer | undefined, secrets: Record<string, Buffer>): string {
  if (buffer === undefined) return 'none';
  const bytes = Buffer.from(new Uint8Array(buffer).slice(0, 32));
  if (bytes.length === 0) return 'empty';
  if (bytes.every((b) => b === 0)) return 'zeros';
  for (const [name, key] of Object.entries(secrets)) if (bytes.equals(key)) return name;
  return 'other';
}

/**
 * A callback moves its view out with `move`; then its secret is closed, a new one takes its unit, the turn ends,
 * and the arena shuts down. What the moved buffer shows at each step, and whether every secret stayed intact.
 */
async function movedView(move: Move, native: NativeMemory) {
  const warnings: string[] = [];
  const arena = new SecretArena({ logger: { warn: (message) => warnings.push(message) } }, native);
  const factory = new SecretFactory({ arena });
  const keys = { victim: known('victim'), neighbour: known('neighbour'), next: known('next') };
  // createFrom zeroes what it is given: pass copies.
  const neighbour = factory.createFrom(Buffer.from(keys.neighbour));
  const victim = factory.createFrom(Buffer.from(keys.victim));
  let outerIntact = true;
  let pending: ArrayBuffer | Promise<ArrayBuffer> | undefined;
  let threw = 'nothing';
  const lockedBefore = readLockedBytes();
  // Nested in a neighbour's call: the callback outlives the inner call's relocation of the page they share.
  neighbour.withBytes((outer) => {
    victim.withBytes((view) => {
      try {
        pending = move(view);
      } catch (err) {
        threw = (err as Error).name;
      }
    });
    outerIntact = outer.length === 0 || Buffer.from(outer).equals(keys.neighbour);
  });
  const moved = await pending;
  // The move costs no locked memory: the old pages are unlocked as the new ones are locked.
  const lockedSame = readLockedBytes() === lockedBefore;
  const afterCall = shows(moved, keys);
  const victimIntact = victim.withBytes((b) => Buffer.from(b).equals(keys.victim));
  victim.close();
  const next = factory.createFrom(Buffer.from(keys.next));
  next.withBytes(() => undefined);
  const afterReuse = shows(moved, keys);
  // Writes through the moved buffer must land nowhere a secret lives.
  if (moved !== undefined) new Uint8Array(moved).fill(0xff);
  const othersIntact =
    neighbour.withBytes((b) => Buffer.from(b).equals(keys.neighbour)) &&
    next.withBytes((b) => Buffer.from(b).equals(keys.next));
  await nextTurn();
  const nextTurnRead = moved === undefined ? 'none' : String(new Uint8Array(moved)[0]);
  factory.close();
  arena.shutdown();
  const afterShutdown = moved === undefined ? 'none' : String(new Uint8Array(moved)[0]);
  return {
    threw, afterCall, afterReuse, nextTurnRead, afterShutdown, outerIntact, victimIntact, othersIntact, lockedSame,
    warned: warnings.some((w) => w.includes('moved out of its call')),
  };
}

/**
 * The callback moves its view out and then shuts the arena down (a factory closed inside withBytes): the page is
 * relocated before it is unmapped, so the moved buffer reads zeros, not whatever is mapped at that address next.
 */
async function movedThenShutDown(native: NativeMemory) {
  const arena = new SecretArena({ logger: quiet }, native);
  const factory = new SecretFactory({ arena });
  const victim = factory.createFrom(known('victim'));
  let moved: ArrayBuffer | undefined;
  victim.withBytes((view) => {
    moved = arrayBufferMethod('transfer').call(view.buffer as ArrayBuffer);
    factory.close();
    arena.shutdown();
  });
  // New secrets, in a new arena whose pages the kernel may place where the old ones were.
  const next = new SecretFactory({ logger: quiet });
  const made = Array.from({ length: 200 }, (_, i) => next.createFrom(known(`after-${i}`)));
  made.forEach((secret) => secret.withBytes(() => undefined));
  const secrets = Object.fromEntries(made.slice(0, 3).map((_, i) => [`after-${i}`, known(`after-${i}`)]));
  const afterShutdown = shows(moved, { victim: known('victim'), ...secrets });
  await nextTurn();
  const nextTurnRead = moved === undefined ? 'none' : String(new Uint8Array(moved)[0]);
  next.close();
  return { afterShutdown, nextTurnRead };
}

const scenarios: Record<string, () => unknown> = {
  /** Each way of moving a view out of withBytes. */
  async 'moved-views'() {
    const native = loadNative();
    const uncaught: string[] = [];
    process.on('uncaughtException', (err) => uncaught.push(`${err.name}: ${err.message}`));
    const results: Record<string, unknown> = {};
    for (const [name, move] of Object.entries(MOVES)) results[name] = await movedView(move, native);
    results['transfer, then the arena shut down inside the call'] = await movedThenShutDown(native);
    await nextTurn();
    return { results, uncaught, nodeMajor: Number(process.versions.node.split('.')[0]) };
  },


  /** Limit 0: a strict failure, then best-effort and strict again, from new factories and the same one. */
  'strict-failure'() {
    const strict = new SecretFactory();
    const lenient = new SecretFactory({ mlock: 'best-effort', logger: quiet });
    return {
      strict: outcome(() => strict.createRandom(32)),
      strictFrom: outcome(() => strict.createFrom(Buffer.alloc(32, 1))),
      lenient: outcome(() => lenient.createRandom(32).withBytes((b) => b.length)),
      lenientFrom: outcome(() => lenient.createFrom(known('l')).withBytes((b) => b.length)),
      newLenient: outcome(() => new SecretFactory({ mlock: 'best-effort', logger: quiet }).createRandom(32)),
      strictAgain: outcome(() => strict.createRandom(32)),
    };
  },

  /** 64 KiB held by other code in the process when the first secret is made, then given back. */
  'budget-freed'() {
    const native = loadNative();
    const hog = native.map(65536);
    const hogLocked = native.lock(hog, 65536) === 0;
    const strict = new SecretFactory();
    const whileHeld = outcome(() => strict.createRandom(32));
    native.unlock(hog, 65536);
    native.unmap(hog, 65536);
    const afterRelease = outcome(() => strict.createRandom(32).withBytes((b) => b.length));
    const fresh = outcome(() => new SecretFactory().createRandom(32));
    return { hogLocked, whileHeld, afterRelease, fresh, stats: strict.stats() };
  },

  /** 60 KiB held by other code: one page locked, the rest sealed; the 60 KiB given back, the arena grows again. */
  async 'budget-grows-back'() {
    const native = loadNative();
    const hog = native.map(61440);
    const hogLocked = native.lock(hog, 61440) === 0;
    const factory = new SecretFactory({ logger: quiet });
    const first = Array.from({ length: 200 }, (_, i) => factory.createFrom(known(`g${i}`)));
    const whileHeld = factory.stats();
    native.unlock(hog, 61440);
    native.unmap(hog, 61440);
    await sleep(1100);
    const second = Array.from({ length: 200 }, (_, i) => factory.createFrom(known(`h${i}`)));
    const correct =
      first.every((s, i) => s.withBytes((b) => Buffer.from(b).equals(known(`g${i}`)))) &&
      second.every((s, i) => s.withBytes((b) => Buffer.from(b).equals(known(`h${i}`))));
    return { hogLocked, whileHeld, after: factory.stats(), correct };
  },

  /** Closing the last factory gives every page back; factories made before or after keep working. */
  async 'factory-close'() {
    const lockedAtStart = readLockedBytes() ?? 0;
    const early = new SecretFactory();
    const factory = new SecretFactory();
    const secrets: Secret[] = Array.from({ length: 2000 }, (_, i) => factory.createFrom(known(`f${i}`)));
    const correct = secrets.every((s, i) => s.withBytes((b) => Buffer.from(b).equals(known(`f${i}`))));
    const lockedInUse = readLockedBytes() ?? 0;
    for (const secret of secrets.slice(0, 1000)) secret.close();
    factory.close();
    const lockedAfterClose = readLockedBytes() ?? 0;
    const mappingsAfterClose = secureMappings();
    await nextTurn();

    const late = new SecretFactory();
    const lateWorks = late.createRandom(32).withBytes((b) => b.length) === 32;
    const lockedWithLate = readLockedBytes() ?? 0;
    const earlyWorks = early.createFrom(known('e')).withBytes((b) => Buffer.from(b).equals(known('e')));
    late.close();
    const lockedWithEarlyOnly = readLockedBytes() ?? 0;
    early.close();
    const lockedAtEnd = readLockedBytes() ?? 0;

    // Closed from inside a read: the pages go back when that read returns.
    const inside = new SecretFactory();
    const secret = inside.createRandom(32);
    secret.withBytes(() => inside.close());
    const lockedAfterInsideClose = readLockedBytes() ?? 0;
    await nextTurn();
    return {
      correct,
      lockedAtStart,
      lockedInUse,
      lockedAfterClose,
      mappingsAfterClose,
      lateWorks,
      lockedWithLate,
      earlyWorks,
      lockedWithEarlyOnly,
      lockedAtEnd,
      lockedAfterInsideClose,
      mappingsAtEnd: secureMappings(),
    };
  },

  /** Views kept past their call, read and written later: harmless (no crash, no bytes, no write lands). */
  async 'kept-views'() {
    const factory = new SecretFactory({ logger: quiet });
    const secret = factory.createFrom(known('k'));
    let kept: Uint8Array | undefined;
    secret.withBytes((b) => {
      kept = b;
    });
    let keptByAsync: Uint8Array | undefined;
    const asyncRefused = outcome(() =>
      secret.withBytes(async (b) => {
        keptByAsync = b;
      }),
    );
    // A promise returned by a plain function: refused, but its timer still reads the view later.
    let readByTimer: unknown = 'not yet';
    const promiseRefused = outcome(() =>
      secret.withBytes((b) => new Promise((resolve) => setTimeout(() => resolve((readByTimer = b[0])), 5))),
    );
    // protect 'per-access' closes the page as soon as the call returns: a microtask reads after that.
    const perAccess = new SecretFactory({ protect: 'per-access' }).createFrom(known('pa'));
    let readByMicrotask: unknown = 'not yet';
    perAccess.withBytes((b) => queueMicrotask(() => (readByMicrotask = b[0])));
    await sleep(20);
    const keptLength = kept!.length;
    const keptRead = kept![0];
    kept![0] ^= 0xff;
    const intact = secret.withBytes((b) => Buffer.from(b).equals(known('k')));

    // A view kept from a secret that is then sealed: its unit is reused by another secret in the same turn.
    const arena = new SecretArena({ maxLockedBytes: 4096, logger: quiet });
    const tight = new SecretFactory({ arena });
    const victim = tight.createFrom(known('v'));
    let keptFromSealed: Uint8Array | undefined;
    victim.withBytes((b) => {
      keptFromSealed = b;
    });
    for (let i = 0; i < 200; i++) tight.createFrom(known(`n${i}`));
    const sealedViewLength = keptFromSealed!.length;
    tight.close();
    arena.shutdown();
    return {
      asyncRefused,
      asyncBodyRan: keptByAsync !== undefined,
      promiseRefused,
      readByTimer: readByTimer ?? null,
      readByMicrotask: readByMicrotask ?? null,
      keptLength,
      keptRead: keptRead ?? null,
      intact,
      sealedViewLength,
    };
  },

  /** util.inspect, JSON.stringify and structuredClone of every object: no key bytes now, no crash later. */
  async 'inspect'() {
    const key = known('inspect');
    const factory = new SecretFactory();
    const secret = factory.createFrom(Buffer.from(key));
    const arena = new SecretArena({ logger: quiet });
    const own = new SecretFactory({ arena }).createFrom(Buffer.from(key));
    const objects = { secret, factory, arena, own };
    const print = () =>
      Object.values(objects).flatMap((object) => [
        attempt(() => inspect(object, { depth: Infinity, showHidden: true, getters: true })),
        attempt(() => inspect(object, { depth: Infinity, showHidden: true, getters: true, customInspect: false })),
        attempt(() => JSON.stringify(object)),
        attempt(() => inspect(structuredClone(object), { depth: Infinity, showHidden: true })),
      ]);
    secret.withBytes(() => undefined);
    own.withBytes(() => undefined);
    const sameTurn = print();
    await nextTurn();
    const laterTurn = print();
    const leaks = [...sameTurn, ...laterTurn].filter((text) => showsKey(text, key));
    return { leaks, secret: sameTurn[0], json: sameTurn[2], factory: sameTurn[4], arena: sameTurn[8] };
  },
};

async function main() {
  const scenario = scenarios[process.argv[2]];
  if (!scenario) throw new Error(`unknown scenario ${process.argv[2]}`);
  return { ok: true, ...((await scenario()) as object) };
}

main().then(
  (report) => process.stdout.write(JSON.stringify(report) + '\n'),
  (err: Error) => process.stdout.write(JSON.stringify({ ok: false, name: err.name, message: err.message }) + '\n'),
);
