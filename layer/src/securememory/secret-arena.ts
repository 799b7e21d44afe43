/**
 * The allocator behind every Secret of a thread, and the one object the rest of the library talks to. It packs
 * many secrets into each locked page (64-byte units), takes its locked pages from the process's RLIMIT_MEMLOCK
 * budget, and when its locked units are all taken it seals the least recently used secrets, so any number of
 * secrets fit in Lambda's 64 KiB and reaching the limit never crashes. Each job has a file of its own:
 *
 *   placement.ts     regions and their units: finding space, growing within the budget, the unlocked fallback
 *   page-windows.ts  pages readable only in the event-loop turn that uses them; views of a secret's own bytes
 *   sealing.ts       sealing least recently used secrets under a locked wrapping key, and unsealing them
 *   random-pool.ts   random bytes drawn into locked memory, 31 keys per randomFillSync
 *   allocation.ts    the record of one secret that they share
 *
 * This file wires them together and holds the policy for placing a secret: free units, else a new region, else
 * seal others, else (best effort) unlocked pages. The parts are in private fields, so nothing enumerable on an
 * arena reaches a page or a key byte.
 */
import { inspect } from 'node:util';
import { bytesOf, newAllocation, unitsFor, type Allocation } from './allocation.js';
import { SecureMemoryError } from './errors.js';
import { readMemlockFacts } from './limits.js';
import { UNIT_BYTES as UNIT, type LockedRegion } from './locked-region.js';
import { loadNative, type NativeMemory } from './native.js';
import { PageWindows } from './page-windows.js';
import { Placement } from './placement.js';
import { RANDOM_POOL_BYTES, RandomPool } from './random-pool.js';
import { Sealer, WRAP_KEY_BYTES } from './sealing.js';
import type { SecureMemoryLogger } from './types.js';

export type { Allocation } from './allocation.js';
export { DEFAULT_UNCAPPED_LOCKED_BYTES } from './placement.js';

// A local copy: imported bindings compile to property reads through getters, and this sits on the hot path.
const UNIT_BYTES = UNIT;

export type { MlockMode, SecureMemoryLogger } from './types.js';

export interface ArenaOptions {
  /** Disable core dumps for the whole process (setrlimit RLIMIT_CORE 0) on first use. Default true. */
  disableCoreDumps?: boolean;
  /**
   * Most bytes of locked pages this arena uses. Default: the RLIMIT_MEMLOCK soft limit, and 8 MiB where the limit
   * does not bind (CAP_IPC_LOCK or unlimited): locked memory cannot be swapped, so it is capped even where the
   * kernel would allow more. A value here lowers the cap under a limit, and sets it where no limit binds. All
   * arenas of the process (one per thread) share the limit; beyond it, secrets are sealed, not refused.
   */
  maxLockedBytes?: number;
  logger?: SecureMemoryLogger;
}

export interface ArenaStats {
  /** 'locked': every page mlocked; 'unlocked': best-effort pages in use that the kernel may swap. */
  lockState: 'locked' | 'unlocked' | 'mixed' | 'none';
  lockedBytes: number;
  unlockedBytes: number;
  maxLockedBytes: number;
  /** Resident 32-byte secrets the locked budget holds at once. */
  keysThatFit: number;
  secretsAllocated: number;
  secretsInUse: number;
  residentSecrets: number;
  sealedSecrets: number;
  seals: number;
  unseals: number;
  /** errno of the last mlock if the kernel refused it (ENOMEM/EAGAIN: limit reached; EPERM: none allowed), else 0. */
  lockFailureErrno: number;
  coreDumpsDisabled: boolean;
}

export class SecretArena {
  /** Most bytes of locked pages this arena uses (see ArenaOptions.maxLockedBytes). */
  readonly maxLockedBytes: number;
  /** withBytes calls in progress, of any factory: pages are never closed under one. */
  reads = 0;

  readonly #windows: PageWindows;
  readonly #placement: Placement;
  readonly #sealer: Sealer;
  readonly #random: RandomPool;
  #nextId = 1;
  readonly #counters = { allocated: 0, inUse: 0 };
  readonly #coreDumpsDisabled: boolean;
  readonly #logger: SecureMemoryLogger;
  #closed = false;

  constructor(options: ArenaOptions = {}, native: NativeMemory = loadNative()) {
    const logger = options.logger ?? consoleLogger;
    this.#logger = logger;
    if (options.disableCoreDumps ?? true) native.disableCoreDumps();
    const facts = readMemlockFacts(native);
    this.#coreDumpsDisabled = facts.coreSoft === 0;
    const regions = new Set<LockedRegion>();
    const windows = new PageWindows(native, regions);
    const placement = new Placement({ native, facts, maxLockedBytes: options.maxLockedBytes, logger, windows, regions });
    this.#windows = windows;
    this.#placement = placement;
    this.#sealer = new Sealer(windows, placement, logger);
    this.#random = new RandomPool(windows, placement);
    this.maxLockedBytes = placement.maxLockedBytes;
  }

  get pageSize(): number {
    return this.#placement.pageSize;
  }

  // ---- the secret's life: allocate, fill, read, free -----------------------------------------------------------

  /** Reserves units for `length` bytes. Strict allocations never land in an unlocked page. */
  allocate(length: number, strict: boolean): Allocation {
    if (this.#closed) throw new SecureMemoryError('secure memory was shut down; create a new SecretFactory');
    if (this.#random.needsPlacing(strict)) this.#placeSystemAllocations(strict);
    const allocation = newAllocation(length, this.#nextId++, strict);
    this.#place(allocation);
    this.#counters.allocated++;
    this.#counters.inUse++;
    return allocation;
  }

  /** Fills a resident allocation with random bytes from the locked pool (one randomFillSync per 31 keys). */
  fillRandom(a: Allocation): void {
    this.#random.fill(a);
  }

  /** Copies `source` (of the allocation's length) into a resident allocation. */
  write(a: Allocation, source: Uint8Array): void {
    const region = a.region!;
    this.#windows.ensureOpen(region);
    region.bytes.set(source, a.first * UNIT_BYTES);
  }

  /**
   * Makes the allocation resident and its page readable for the rest of this turn; returns a view of its bytes
   * alone for one withBytes call, to be given back (giveBack) as the call returns.
   */
  access(a: Allocation): Uint8Array {
    this.#makeReadable(a);
    return this.#windows.lend(a);
  }

  /**
   * Detaches the view of a withBytes call that has returned. If the callback moved the view out (transferred its
   * ArrayBuffer), the page is relocated first, leaving zeros where the moved buffer points.
   */
  giveBack(a: Allocation, view: Uint8Array): void {
    const windows = this.#windows;
    const region = windows.takeBack(a, view);
    if (region === undefined || this.#closed) return;
    windows.detachLentOver(region);
    this.#relocate(region);
    this.#logger.warn(
      'secure memory: a withBytes view was moved out of its call (its ArrayBuffer transferred); the page was ' +
        'relocated and the moved buffer reads zeros. Copy the bytes you need inside the callback instead',
      { relocatedBytes: region.dataBytes, stillLocked: region.locked },
    );
  }

  /**
   * As access, for the library's own node:crypto calls (Secret's withKeyBytes): a subarray of the region's view,
   * no native call. Its buffer spans the region, so it must never outlive the call it is passed to.
   */
  accessForCrypto(a: Allocation): Uint8Array {
    this.#makeReadable(a);
    return bytesOf(a);
  }

  #makeReadable(a: Allocation): void {
    if (a.region === null) {
      if (this.#closed) throw new SecureMemoryError('secure memory was shut down; this secret can no longer be read');
      this.#place(a);
      this.#sealer.unsealInto(a);
    }
    const region = a.region!;
    if (!region.isOpen) this.#windows.ensureOpen(region);
    a.referenced = true;
  }

  /** Zeroes the allocation and returns its units. Throws SecureMemoryError if its canary was overwritten. */
  free(a: Allocation): void {
    if (this.#closed) return;
    this.#counters.inUse--;
    if (a.sealed !== null) {
      this.#sealer.discard(a);
      return;
    }
    this.#sealer.evict(a);
    this.#placement.release(a, true);
  }

  /** Moves a region that a view escaped from (LockedRegion.relocate), keeping the count of locked bytes right. */
  #relocate(region: LockedRegion): void {
    this.#windows.ensureOpen(region);
    const wasLocked = region.locked;
    region.relocate();
    if (wasLocked && !region.locked) this.#placement.lostLock(region);
  }

  // ---- page windows (page-windows.ts) ---------------------------------------------------------------------------

  /**
   * For protect: 'per-access': closes every open page now, unless a withBytes is still running (its page must
   * stay readable until it returns).
   */
  settle(): void {
    if (this.reads === 0 && this.#windows.anyOpen) this.#windows.closeOpenRegions();
  }

  ensureOpen(region: LockedRegion): void {
    this.#windows.ensureOpen(region);
  }

  /** Ends the turn's window: closes every page opened since the last call. */
  closeOpenRegions(): void {
    this.#windows.closeOpenRegions();
  }

  // ---- where a secret goes --------------------------------------------------------------------------------------

  #place(a: Allocation): void {
    const [region, first] = this.#findSpace(a.units, a.strict);
    this.#placement.take(a, region, first);
    this.#sealer.admit(a);
  }

  #findSpace(units: number, strict: boolean): [LockedRegion, number] {
    const placement = this.#placement;
    const free = placement.findFree(units, strict);
    if (free !== undefined) return free;
    const grown = placement.grow(units, strict, false);
    if (grown) return [grown, 0];
    // Sealing frees units, not whole pages: a secret larger than a page skips it.
    if (units <= placement.unitsPerPage) {
      const freed = this.#sealer.makeRoom(units, strict);
      if (freed !== undefined) return freed;
    }
    const fallback = placement.grow(units, strict, true);
    if (fallback) return [fallback, 0];
    throw placement.noRoom(units, strict);
  }

  /**
   * The random pool and the wrapping key, in pinned units that are never sealed (nor in the resident list). Made
   * with the first secret; moved into locked pages for the first strict secret if best effort had to start them on
   * unlocked ones (the wrapping key keeps its bytes: sealed secrets need it). Both are placed before either is
   * kept, so a failure (MemlockLimitError) leaves the arena as it was and the next allocation tries again.
   */
  #placeSystemAllocations(strict: boolean): void {
    const pool = this.#placePinned(RANDOM_POOL_BYTES, strict);
    let wrap: Allocation;
    try {
      wrap = this.#placePinned(WRAP_KEY_BYTES, strict);
    } catch (err) {
      this.#placement.release(pool, true);
      throw err;
    }
    this.#sealer.useWrapKey(wrap);
    this.#random.use(pool);
  }

  #placePinned(length: number, strict: boolean): Allocation {
    const a = newAllocation(length, 0, strict);
    a.pins = 1;
    const [region, first] = this.#findSpace(a.units, strict);
    this.#placement.take(a, region, first);
    return a;
  }

  // ---- reporting and shutdown -----------------------------------------------------------------------------------

  stats(): ArenaStats {
    const placement = this.#placement;
    const sealer = this.#sealer;
    const locked = placement.lockedBytes;
    const unlocked = placement.unlockedBytes();
    return {
      lockState: locked > 0 ? (unlocked > 0 ? 'mixed' : 'locked') : unlocked > 0 ? 'unlocked' : 'none',
      lockedBytes: locked,
      unlockedBytes: unlocked,
      maxLockedBytes: this.maxLockedBytes,
      keysThatFit: locked > 0 ? keysThatFitIn(placement.lockBudgetBytes()) : 0,
      secretsAllocated: this.#counters.allocated,
      secretsInUse: this.#counters.inUse,
      residentSecrets: sealer.residentSecrets,
      sealedSecrets: sealer.sealedSecrets,
      seals: sealer.seals,
      unseals: sealer.unseals,
      lockFailureErrno: placement.lockFailureErrno,
      coreDumpsDisabled: this.#coreDumpsDisabled,
    };
  }

  /**
   * Zeroes, unlocks and unmaps every page and gives them back to the process budget. Secrets still open become
   * unusable (their use is a typed error), and every view still lent is detached first.
   */
  shutdown(): void {
    if (this.#closed) return;
    this.#closed = true;
    // A view moved out of a call still running: its page moves first, so the moved buffer keeps reading zeros.
    for (const region of this.#windows.shutdown()) this.#relocate(region);
    this.#sealer.shutdown();
    this.#placement.shutdown();
    this.#random.shutdown();
  }

  get isShutDown(): boolean {
    return this.#closed;
  }

  /** A summary with no address or byte of any secret, for logs. */
  toJSON(): Record<string, unknown> {
    const { lockState, lockedBytes, unlockedBytes, secretsInUse, sealedSecrets } = this.stats();
    return { lockState, lockedBytes, unlockedBytes, secretsInUse, sealedSecrets, shutDown: this.#closed };
  }

  [inspect.custom](): string {
    return `SecretArena ${inspect(this.toJSON())}`;
  }
}

/** 32-byte keys that stay resident at once in `budgetBytes` of locked pages, after the arena's own needs. */
export function keysThatFitIn(budgetBytes: number): number {
  const systemUnits = unitsFor(RANDOM_POOL_BYTES) + unitsFor(WRAP_KEY_BYTES);
  return Math.max(0, Math.floor((Math.floor(budgetBytes / UNIT_BYTES) - systemUnits) / unitsFor(32)));
}

const consoleLogger: SecureMemoryLogger = {
  warn: (message, details) => console.warn(JSON.stringify({ level: 'WARN', message, ...details })),
};
