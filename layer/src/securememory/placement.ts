/**
 * Where a secret's bytes live: the arena's regions (locked-region.ts) and the runs of 64-byte units in them. It
 * finds free units, maps a new region while this arena's cap, the process's RLIMIT_MEMLOCK budget (shared by all
 * threads, see lock-budget.ts) and the kernel allow, and in best-effort mode falls back to unlocked pages, within
 * the same cap, when nothing can be locked or nothing else makes room. It does not seal: when it finds no room, the
 * arena asks sealing.ts to make some and then comes back here.
 *
 * Every secret is followed by the region's canary, checked when its units are given back; its units are zeroed
 * then, and an emptied region is unmapped unless it is the only spare one.
 */
import type { Allocation } from './allocation.js';
import { MemlockLimitError, SecureMemoryError } from './errors.js';
import { lockableBytes, type MemlockFacts } from './limits.js';
import { processLockBudget, type LockBudget } from './lock-budget.js';
import { CANARY_BYTES as CANARY, LockedRegion, UNIT_BYTES as UNIT } from './locked-region.js';
import { reclaimStopped } from './mapping-registry.js';
import type { NativeMemory } from './native.js';
import type { PageWindows } from './page-windows.js';
import type { SecureMemoryLogger } from './types.js';

// Local copies: imported bindings compile to property reads through getters, and these sit on the hot path.
const UNIT_BYTES = UNIT;
const CANARY_BYTES = CANARY;

export const DEFAULT_UNCAPPED_LOCKED_BYTES = 8 * 1024 * 1024;
/** After mlock is refused, how long the arena seals instead of asking the kernel again (unless an error follows). */
const LOCK_RETRY_MS = 1000;

type UnlockedReason = 'nothing-lockable' | 'all-in-use' | 'oversized';

export interface PlacementOptions {
  native: NativeMemory;
  facts: MemlockFacts;
  /** ArenaOptions.maxLockedBytes. */
  maxLockedBytes: number | undefined;
  logger: SecureMemoryLogger;
  windows: PageWindows;
  /** The arena's regions: placement adds and removes them, page windows read them. */
  regions: Set<LockedRegion>;
}

export class Placement {
  /** Most bytes of locked pages this arena uses (see ArenaOptions.maxLockedBytes). */
  readonly maxLockedBytes: number;
  readonly pageSize: number;
  readonly unitsPerPage: number;
  readonly facts: MemlockFacts;

  readonly #native: NativeMemory;
  readonly #budget: LockBudget;
  /** The cap for the whole process: the soft limit, or where none binds, the larger of 8 MiB and this arena's. */
  readonly #processCap: number;
  readonly #logger: SecureMemoryLogger;
  readonly #windows: PageWindows;
  readonly #regions: Set<LockedRegion>;
  readonly #withSpace = new Set<LockedRegion>();
  #lastRegion: LockedRegion | undefined;
  #lockedBytes = 0;
  #lockFailureErrno = 0;
  /** Date.now() of the last refused mlock, 0 once one succeeds. */
  #lockRefusedAt = 0;
  /** Date.now() of the last search for pages left by stopped threads. */
  #reclaimedAt = 0;
  readonly #warnedUnlocked = new Set<UnlockedReason>();

  constructor(options: PlacementOptions) {
    const { native, facts } = options;
    this.#native = native;
    this.#budget = processLockBudget();
    this.#logger = options.logger;
    this.#windows = options.windows;
    this.#regions = options.regions;
    this.facts = facts;
    this.pageSize = native.pageSize;
    this.unitsPerPage = native.pageSize / UNIT_BYTES;
    // What others hold locked is not subtracted: it changes, and the kernel's refusals tell it as it happens.
    const unbound = lockableBytes(facts) === 'unlimited';
    const soft = facts.memlockSoft === 'unlimited' ? Infinity : facts.memlockSoft;
    const wanted = unbound
      ? (options.maxLockedBytes ?? DEFAULT_UNCAPPED_LOCKED_BYTES)
      : Math.min(options.maxLockedBytes ?? Infinity, soft);
    this.maxLockedBytes = this.#wholePages(wanted);
    this.#processCap = unbound ? Math.max(DEFAULT_UNCAPPED_LOCKED_BYTES, this.maxLockedBytes) : this.#wholePages(soft);
  }

  get lockedBytes(): number {
    return this.#lockedBytes;
  }

  /** errno of the last mlock if the kernel refused it, else 0. */
  get lockFailureErrno(): number {
    return this.#lockFailureErrno;
  }

  unlockedBytes(): number {
    let total = 0;
    for (const region of this.#regions) if (!region.locked) total += region.dataBytes;
    return total;
  }

  /** Bytes that can really be locked: the budget, or what the kernel allowed once mlock refused. */
  lockBudgetBytes(): number {
    return this.#lockFailureErrno !== 0 ? this.#lockedBytes : this.maxLockedBytes;
  }

  /** A free run of `units` in a region already mapped (locked ones only if strict), or undefined. */
  findFree(units: number, strict: boolean): [LockedRegion, number] | undefined {
    // Most allocations fit where the last one went: skip the Set iteration then.
    const last = this.#lastRegion;
    if (last !== undefined && (last.locked || !strict)) {
      const first = last.findRun(units);
      if (first !== -1) return [last, first];
    }
    for (const region of this.#withSpace) {
      if (strict && !region.locked) continue;
      const first = region.findRun(units);
      if (first !== -1) return [region, first];
    }
    return undefined;
  }

  /** Gives the allocation the run at `first` in `region`, opens the page and writes the canary after its bytes. */
  take(a: Allocation, region: LockedRegion, first: number): void {
    region.take(first, a.units);
    this.#lastRegion = region;
    if (region.freeUnits === 0) this.#withSpace.delete(region);
    this.#windows.ensureOpen(region);
    a.region = region;
    a.first = first;
    writeCanary(region, first * UNIT_BYTES + a.length);
  }

  /**
   * Zeroes the allocation's units and gives them back. An emptied region is unmapped if
   * `mayDropRegion` and another empty one is kept. Throws SecureMemoryError if the canary was overwritten.
   */
  release(a: Allocation, mayDropRegion: boolean): void {
    const region = a.region!;
    this.#windows.ensureOpen(region);
    const start = a.first * UNIT_BYTES;
    const canaryIntact = equalBytes(region.bytes, start + a.length, region.canary);
    // A TypedArray fill is a real store into native memory that no compiler can elide.
    region.bytes.fill(0, start, start + a.units * UNIT_BYTES);
    region.give(a.first, a.units);
    this.#withSpace.add(region);
    a.region = null;
    if (mayDropRegion && region.isEmpty) this.#releaseIfSpare(region);
    if (!canaryIntact) {
      throw new SecureMemoryError(
        'canary check failed: memory right after a secret was overwritten (buffer overrun); treat this process ' +
          'as compromised and restart it',
      );
    }
  }

  /**
   * Maps a region: locked if this arena's cap, the process's budget and the kernel allow; else, in best-effort
   * mode, unlocked when nothing can be locked at all or as a `lastResort` (sealing could not make room).
   */
  grow(units: number, strict: boolean, lastResort: boolean): LockedRegion | undefined {
    const pages = Math.ceil((units * UNIT_BYTES) / this.pageSize);
    const nothingLocked = this.#lockedBytes === 0;
    // A strict allocation with no other way left fails unless the kernel says yes now, so ask it again.
    const locked = this.#growLocked(pages, strict && (nothingLocked || lastResort));
    if (locked) return locked;
    if (nothingLocked) {
      if (strict) throw this.#nothingLockable(pages * this.pageSize);
      return this.#adoptUnlocked(pages, 'nothing-lockable');
    }
    if (strict || !lastResort) return undefined;
    return this.#adoptUnlocked(pages, units > this.unitsPerPage ? 'oversized' : 'all-in-use');
  }

  /** The error when every way of finding `units` has failed. */
  noRoom(units: number, strict: boolean): MemlockLimitError {
    const pages = Math.ceil((units * UNIT_BYTES) / this.pageSize);
    const locked = this.#lockedBytes;
    const detail =
      units > this.unitsPerPage
        ? `a secret of ${units * UNIT_BYTES - CANARY_BYTES} bytes needs ${pages} locked pages of its own and the ` +
          `locked budget (${this.lockBudgetBytes()} bytes, ${locked} in use) has no room for them; keep secrets ` +
          'under a page'
        : `all ${locked} locked bytes hold secrets that are in use right now`;
    const unlocked = strict ? '' : `, and best effort's ${this.#unlockedCap()} bytes of unlocked pages are full`;
    return new MemlockLimitError(this.#limitBytes(), pages * this.pageSize, detail + unlocked);
  }

  /** A relocated region could not be locked again (another thread took the room): count it as unlocked. */
  lostLock(region: LockedRegion): void {
    this.#lockedBytes -= region.dataBytes;
    this.#budget.release(region.dataBytes);
  }

  /** Zeroes, unlocks and unmaps every region and gives the locked bytes back to the process budget. */
  shutdown(): void {
    for (const region of this.#regions) region.release();
    this.#budget.release(this.#lockedBytes);
    this.#lockedBytes = 0;
    this.#regions.clear();
    this.#withSpace.clear();
    this.#lastRegion = undefined;
  }

  #growLocked(pages: number, force: boolean): LockedRegion | undefined {
    const bytes = pages * this.pageSize;
    const own = this.#lockedBytes;
    if (own !== 0 && own + bytes > this.maxLockedBytes) return undefined;
    // After a refusal, other code may unlock memory at any time: ask again now and then, or when an error would
    // follow, but not on every allocation (that would put system calls on the per-record path).
    if (!force && this.#lockRefusedAt !== 0 && Date.now() - this.#lockRefusedAt < LOCK_RETRY_MS) return undefined;
    if (!this.#budget.reserve(bytes, this.#processCap)) {
      // The budget may be held by pages of threads that stopped without a word (a worker's own workers, when it
      // was terminated): give those back, then try once more.
      if (!this.#reclaimStopped(force) || !this.#budget.reserve(bytes, this.#processCap)) return undefined;
    }
    let region: LockedRegion;
    try {
      region = LockedRegion.create(this.#native, pages, true);
    } catch (err) {
      this.#budget.release(bytes);
      throw err;
    }
    if (region.locked) {
      this.#lockFailureErrno = 0;
      this.#lockRefusedAt = 0;
      return this.#adopt(region);
    }
    this.#budget.release(bytes);
    region.release();
    this.#lockFailureErrno = region.lockErrno;
    this.#lockRefusedAt = Date.now();
    return undefined;
  }

  /** reclaimStopped(), at most once per LOCK_RETRY_MS unless `force`: it scans the whole mapping table. */
  #reclaimStopped(force: boolean): boolean {
    const now = Date.now();
    if (!force && now - this.#reclaimedAt < LOCK_RETRY_MS) return false;
    this.#reclaimedAt = now;
    return reclaimStopped() > 0;
  }

  #nothingLockable(bytes: number): MemlockLimitError {
    const errno = this.#lockFailureErrno;
    const detail =
      errno === 1
        ? 'this process may lock no memory (mlock: EPERM)'
        : errno !== 0
          ? `mlock refused (${this.#native.errnoNames[errno] ?? `errno ${errno}`})`
          : `the process's locked budget (${this.#processCap} bytes) is all held by other arenas (other threads)`;
    return new MemlockLimitError(this.#limitBytes(), bytes, detail);
  }

  #limitBytes(): number | 'unlimited' {
    return this.facts.capIpcLock ? 'unlimited' : this.facts.memlockSoft;
  }

  /** Best effort only: a page that is not locked, within the same cap as locked ones. */
  #adoptUnlocked(pages: number, reason: UnlockedReason): LockedRegion | undefined {
    const bytes = pages * this.pageSize;
    if (this.unlockedBytes() + bytes > this.#unlockedCap()) return undefined;
    this.#warnUnlocked(reason);
    return this.#adopt(LockedRegion.create(this.#native, pages, false));
  }

  #unlockedCap(): number {
    return Math.max(this.maxLockedBytes, DEFAULT_UNCAPPED_LOCKED_BYTES);
  }

  #adopt(region: LockedRegion): LockedRegion {
    this.#regions.add(region);
    this.#withSpace.add(region);
    if (region.locked) this.#lockedBytes += region.dataBytes;
    this.#windows.trackOpen(region);
    return region;
  }

  /** Keeps one empty region for the next allocation and gives the rest back to the budget. */
  #releaseIfSpare(region: LockedRegion): void {
    for (const other of this.#withSpace) {
      if (other !== region && other.isEmpty && other.locked === region.locked) {
        this.#dropRegion(region);
        return;
      }
    }
  }

  #dropRegion(region: LockedRegion): void {
    if (this.#lastRegion === region) this.#lastRegion = undefined;
    this.#regions.delete(region);
    this.#withSpace.delete(region);
    region.release();
    if (region.locked) {
      this.#lockedBytes -= region.dataBytes;
      this.#budget.release(region.dataBytes);
      // A page given back makes room for one again, in the kernel's eyes too.
      this.#lockRefusedAt = 0;
    }
  }

  #warnUnlocked(reason: UnlockedReason): void {
    if (this.#warnedUnlocked.has(reason)) return;
    this.#warnedUnlocked.add(reason);
    const why = {
      'nothing-lockable': 'NO MEMORY CAN BE LOCKED; running best-effort with UNLOCKED pages',
      'all-in-use': 'every locked unit holds a secret in use right now; this secret goes to an UNLOCKED page',
      oversized: 'a secret larger than the free locked budget goes to UNLOCKED pages',
    }[reason];
    this.#logger.warn(
      `secure memory: ${why} (still excluded from core dumps, PROT_NONE while idle, zeroed on release), which the ` +
        'kernel may swap to disk; see docs/memlock.md',
      { memlockSoft: this.facts.memlockSoft, memlockHard: this.facts.memlockHard, lockErrno: this.#lockFailureErrno },
    );
  }

  #wholePages(bytes: number): number {
    return Math.floor(bytes / this.pageSize) * this.pageSize;
  }
}

function writeCanary(region: LockedRegion, at: number): void {
  const bytes = region.bytes;
  const canary = region.canary;
  for (let i = 0; i < CANARY_BYTES; i++) bytes[at + i] = canary[i];
}

function equalBytes(haystack: Uint8Array, at: number, expected: Uint8Array): boolean {
  for (let i = 0; i < expected.length; i++) if (haystack[at + i] !== expected[i]) return false;
  return true;
}
