/**
 * The allocator behind every Secret of a thread. It packs many secrets into each locked page (64-byte units), takes
 * its locked pages from the process's RLIMIT_MEMLOCK budget (shared by all threads, see lock-budget.ts), and when
 * its locked units are all taken it seals the least recently used secrets: AES-256-GCM under a wrapping key that
 * itself lives in locked memory, unsealed into a locked unit only while in use. So any number of secrets fit in
 * Lambda's 64 KiB, and reaching the limit never crashes.
 *
 * Pages are PROT_NONE except during the turn of the event loop in which a secret in them is read or written:
 * the first access opens the page and schedules a setImmediate that closes every open page. That keeps
 * mprotect off the per-record path (one pair per page per turn, not per access) while an idle process has no
 * readable key page. The view a secret hands out covers its own bytes only, is made on its first read in a turn,
 * and is detached (zero-length) when the turn's pages close or the secret's bytes move, so a kept view never
 * reaches a closed page or another secret.
 */
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import { inspect } from 'node:util';
import { MemlockLimitError, SecureMemoryError } from './errors.js';
import { lockableBytes, readMemlockFacts, type MemlockFacts } from './limits.js';
import { processLockBudget, type LockBudget } from './lock-budget.js';
import { CANARY_BYTES as CANARY, LockedRegion, UNIT_BYTES as UNIT } from './locked-region.js';
import { loadNative, type NativeMemory } from './native.js';

export type MlockMode = 'strict' | 'best-effort';
type UnlockedReason = 'nothing-lockable' | 'all-in-use' | 'oversized';

export interface SecureMemoryLogger {
  warn(message: string, details?: Record<string, unknown>): void;
}

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

// Local copies: imported bindings compile to property reads through getters, and these sit on the hot path.
const UNIT_BYTES = UNIT;
const CANARY_BYTES = CANARY;

export const DEFAULT_UNCAPPED_LOCKED_BYTES = 8 * 1024 * 1024;
const WRAP_KEY_BYTES = 32;
/** Random bytes drawn per refill: 16 units, 31 keys of 32 bytes per randomFillSync call. */
const RANDOM_POOL_BYTES = 16 * UNIT_BYTES - CANARY_BYTES;
const GCM_NONCE_BYTES = 12;
const GCM_TAG_BYTES = 16;
/** After mlock is refused, how long the arena seals instead of asking the kernel again (unless an error follows). */
const LOCK_RETRY_MS = 1000;

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

/** What the arena knows of one secret. The Secret class is the public face. */
export interface Allocation {
  readonly length: number;
  readonly id: number;
  /** Where the bytes are while resident; null while sealed (or once freed). */
  region: LockedRegion | null;
  first: number;
  readonly units: number;
  /** The view handed to withBytes in this turn: made on first use, detached when the pages close. */
  view: Uint8Array | null;
  /** Index in the arena's list of views handed out this turn, or -1. */
  viewSlot: number;
  /** ciphertext‖tag‖nonce while sealed. */
  sealed: Buffer | null;
  pins: number;
  /** CLOCK reference bit: set on use, cleared as the eviction hand passes. */
  referenced: boolean;
  /** Index in the resident list, or -1. */
  slot: number;
  /** Strict allocations may live in locked regions only. */
  readonly strict: boolean;
}

export class SecretArena {
  /** Most bytes of locked pages this arena uses (see ArenaOptions.maxLockedBytes). */
  readonly maxLockedBytes: number;
  /** withBytes calls in progress, of any factory: pages are never closed under one. */
  reads = 0;

  readonly #native: NativeMemory;
  readonly #facts: MemlockFacts;
  readonly #budget: LockBudget;
  /** The cap for the whole process: the soft limit, or where none binds, the larger of 8 MiB and this arena's. */
  readonly #processCap: number;
  readonly #logger: SecureMemoryLogger;
  readonly #pageSize: number;
  readonly #unitsPerPage: number;
  readonly #regions = new Set<LockedRegion>();
  readonly #withSpace = new Set<LockedRegion>();
  readonly #openRegions: LockedRegion[] = [];
  #closeScheduled = false;
  /** Allocations given a view in this turn. */
  readonly #viewed: Allocation[] = [];
  readonly #resident: Allocation[] = [];
  #hand = 0;
  #lastRegion: LockedRegion | undefined;
  #lockedBytes = 0;
  #lockFailureErrno = 0;
  /** Date.now() of the last refused mlock, 0 once one succeeds. */
  #lockRefusedAt = 0;
  readonly #warnedUnlocked = new Set<UnlockedReason>();
  #warnedSealing = false;
  #nextId = 1;
  readonly #nonce = Buffer.alloc(GCM_NONCE_BYTES);
  readonly #aad = Buffer.alloc(8);
  readonly #counters = { allocated: 0, inUse: 0, sealed: 0, seals: 0, unseals: 0 };
  #pool: Allocation | undefined;
  #poolUsed = RANDOM_POOL_BYTES;
  #wrapKey: Allocation | undefined;
  readonly #coreDumpsDisabled: boolean;
  #closed = false;

  constructor(options: ArenaOptions = {}, native: NativeMemory = loadNative()) {
    this.#native = native;
    this.#budget = processLockBudget();
    this.#logger = options.logger ?? consoleLogger;
    this.#pageSize = native.pageSize;
    this.#unitsPerPage = native.pageSize / UNIT_BYTES;
    if (options.disableCoreDumps ?? true) native.disableCoreDumps();
    this.#facts = readMemlockFacts(native);
    this.#coreDumpsDisabled = this.#facts.coreSoft === 0;
    // What others hold locked is not subtracted: it changes, and the kernel's refusals tell it as it happens.
    const unbound = lockableBytes(this.#facts) === 'unlimited';
    const soft = this.#facts.memlockSoft === 'unlimited' ? Infinity : this.#facts.memlockSoft;
    const wanted = unbound
      ? (options.maxLockedBytes ?? DEFAULT_UNCAPPED_LOCKED_BYTES)
      : Math.min(options.maxLockedBytes ?? Infinity, soft);
    this.maxLockedBytes = this.#wholePages(wanted);
    this.#processCap = unbound ? Math.max(DEFAULT_UNCAPPED_LOCKED_BYTES, this.maxLockedBytes) : this.#wholePages(soft);
  }

  get pageSize(): number {
    return this.#pageSize;
  }

  // ---- allocation -------------------------------------------------------------------------------------------

  /** Reserves units for `length` bytes. Strict allocations never land in an unlocked page. */
  allocate(length: number, strict: boolean): Allocation {
    if (this.#closed) throw new SecureMemoryError('secure memory was shut down; create a new SecretFactory');
    const pool = this.#pool;
    if (pool === undefined || (strict && !pool.region!.locked)) this.#placeSystemAllocations(strict);
    const allocation = newAllocation(length, this.#nextId++, strict);
    this.#place(allocation);
    this.#counters.allocated++;
    this.#counters.inUse++;
    return allocation;
  }

  /** Fills a resident allocation with random bytes from the locked pool (one randomFillSync per 31 keys). */
  fillRandom(a: Allocation): void {
    const region = a.region!;
    this.ensureOpen(region);
    const bytes = region.bytes;
    const start = a.first * UNIT_BYTES;
    if (a.length > RANDOM_POOL_BYTES) {
      randomFillSync(bytes, start, a.length);
      return;
    }
    const pool = this.#pool!;
    const poolRegion = pool.region!;
    this.ensureOpen(poolRegion);
    const poolBytes = poolRegion.bytes;
    const poolStart = pool.first * UNIT_BYTES;
    if (this.#poolUsed + a.length > RANDOM_POOL_BYTES) {
      randomFillSync(poolBytes, poolStart, RANDOM_POOL_BYTES);
      this.#poolUsed = 0;
    }
    // A plain loop: cheaper than subarray()+set() for key-sized copies, and it allocates nothing.
    const from = poolStart + this.#poolUsed;
    for (let i = 0; i < a.length; i++) {
      bytes[start + i] = poolBytes[from + i];
      poolBytes[from + i] = 0;
    }
    this.#poolUsed += a.length;
  }

  /** Copies `source` (of the allocation's length) into a resident allocation. */
  write(a: Allocation, source: Uint8Array): void {
    const region = a.region!;
    this.ensureOpen(region);
    region.bytes.set(source, a.first * UNIT_BYTES);
  }

  /**
   * Makes the allocation resident and its page readable for the rest of this turn; returns a view of its bytes
   * alone, valid until the turn's pages close (or the bytes move: seal, free, shutdown).
   */
  access(a: Allocation): Uint8Array {
    if (a.region === null) {
      if (this.#closed) throw new SecureMemoryError('secure memory was shut down; this secret can no longer be read');
      this.#unseal(a);
    }
    const region = a.region!;
    if (!region.isOpen) this.ensureOpen(region);
    a.referenced = true;
    if (a.view === null) {
      a.view = region.viewOf(a.first * UNIT_BYTES, a.length);
      a.viewSlot = this.#viewed.length;
      this.#viewed.push(a);
    }
    return a.view;
  }

  /** Zeroes the allocation and returns its units. Throws SecureMemoryError if its canary was overwritten. */
  free(a: Allocation): void {
    if (this.#closed) return;
    this.#counters.inUse--;
    if (a.sealed !== null) {
      a.sealed.fill(0);
      a.sealed = null;
      this.#counters.sealed--;
      return;
    }
    this.#evictFromResident(a);
    this.#releaseUnits(a, true);
  }

  // ---- windows: PROT_NONE except during the turn that uses a page -------------------------------------------

  /**
   * For protect: 'per-access': closes every open page now, unless a withBytes is still running (its page must
   * stay readable until it returns).
   */
  settle(): void {
    if (this.reads === 0 && this.#openRegions.length > 0) this.closeOpenRegions();
  }

  ensureOpen(region: LockedRegion): void {
    if (region.isOpen) return;
    region.open();
    this.#trackOpen(region);
  }

  /** Ends the turn's window: detaches the views handed out and closes every page opened since the last call. */
  closeOpenRegions(): void {
    this.#closeScheduled = false;
    while (this.#viewed.length > 0) this.#dropView(this.#viewed[this.#viewed.length - 1]);
    const open = this.#openRegions.splice(0);
    for (const region of open) if (region.isOpen && this.#regions.has(region)) region.close();
  }

  #trackOpen(region: LockedRegion): void {
    this.#openRegions.push(region);
    if (!this.#closeScheduled) {
      this.#closeScheduled = true;
      // Its own macrotask, so no withBytes is mid-flight when it runs.
      realSetImmediate(this.#endTurn).unref();
    }
  }

  readonly #endTurn = (): void => this.closeOpenRegions();

  #dropView(a: Allocation): void {
    const view = a.view;
    if (view === null) return;
    a.view = null;
    // Out of the turn's list at once (swap-remove): a turn that never yields (a loop of warm encrypts awaiting
    // only resolved promises) frees as many secrets as it views, and the list must not grow with them.
    const viewed = this.#viewed;
    const last = viewed.pop()!;
    if (last !== a) {
      viewed[a.viewSlot] = last;
      last.viewSlot = a.viewSlot;
    }
    a.viewSlot = -1;
    this.#native.detach(view.buffer as ArrayBuffer);
  }

  // ---- placement, eviction, sealing ---------------------------------------------------------------------------

  #place(a: Allocation): void {
    const [region, first] = this.#findSpace(a.units, a.strict);
    this.#take(a, region, first);
    if (a.slot === -1) {
      a.slot = this.#resident.length;
      this.#resident.push(a);
    }
  }

  #take(a: Allocation, region: LockedRegion, first: number): void {
    region.take(first, a.units);
    this.#lastRegion = region;
    if (region.freeUnits === 0) this.#withSpace.delete(region);
    this.ensureOpen(region);
    a.region = region;
    a.first = first;
    writeCanary(region, first * UNIT_BYTES + a.length);
  }

  #findSpace(units: number, strict: boolean): [LockedRegion, number] {
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
    const grown = this.#grow(units, strict, false);
    if (grown) return [grown, 0];
    // Sealing frees units, not whole pages: a secret larger than a page skips it.
    if (units <= this.#unitsPerPage) {
      this.#warnSealing();
      for (let attempts = this.#resident.length; attempts > 0; attempts--) {
        const victim = this.#pickVictim(strict);
        if (victim === undefined) break;
        const region = victim.region!;
        this.#seal(victim);
        const first = region.findRun(units);
        // seal() keeps the region mapped (no spare release), so the freed run is usable here.
        if (first !== -1) return [region, first];
      }
    }
    const fallback = this.#grow(units, strict, true);
    if (fallback) return [fallback, 0];
    throw this.#noRoom(units, strict);
  }

  /**
   * Maps a region: locked if this arena's cap, the process's budget and the kernel allow; else, in best-effort
   * mode, unlocked when nothing can be locked at all or as a `lastResort` (sealing could not make room).
   */
  #grow(units: number, strict: boolean, lastResort: boolean): LockedRegion | undefined {
    const pages = Math.ceil((units * UNIT_BYTES) / this.#pageSize);
    const nothingLocked = this.#lockedBytes === 0;
    // A strict allocation with no other way left fails unless the kernel says yes now, so ask it again.
    const locked = this.#growLocked(pages, strict && (nothingLocked || lastResort));
    if (locked) return locked;
    if (nothingLocked) {
      if (strict) throw this.#nothingLockable(pages * this.#pageSize);
      return this.#adoptUnlocked(pages, 'nothing-lockable');
    }
    if (strict || !lastResort) return undefined;
    return this.#adoptUnlocked(pages, units > this.#unitsPerPage ? 'oversized' : 'all-in-use');
  }

  #growLocked(pages: number, force: boolean): LockedRegion | undefined {
    const bytes = pages * this.#pageSize;
    const own = this.#lockedBytes;
    if (own !== 0 && own + bytes > this.maxLockedBytes) return undefined;
    // After a refusal, other code may unlock memory at any time: ask again now and then, or when an error would
    // follow, but not on every allocation (that would put system calls on the per-record path).
    if (!force && this.#lockRefusedAt !== 0 && Date.now() - this.#lockRefusedAt < LOCK_RETRY_MS) return undefined;
    if (!this.#budget.reserve(bytes, this.#processCap)) return undefined;
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

  #noRoom(units: number, strict: boolean): MemlockLimitError {
    const pages = Math.ceil((units * UNIT_BYTES) / this.#pageSize);
    const locked = this.#lockedBytes;
    const detail =
      units > this.#unitsPerPage
        ? `a secret of ${units * UNIT_BYTES - CANARY_BYTES} bytes needs ${pages} locked pages of its own and the ` +
          `locked budget (${this.lockBudgetBytes()} bytes, ${locked} in use) has no room for them; keep secrets ` +
          'under a page'
        : `all ${locked} locked bytes hold secrets that are in use right now`;
    const unlocked = strict ? '' : `, and best effort's ${this.#unlockedCap()} bytes of unlocked pages are full`;
    return new MemlockLimitError(this.#limitBytes(), pages * this.#pageSize, detail + unlocked);
  }

  #limitBytes(): number | 'unlimited' {
    return this.#facts.capIpcLock ? 'unlimited' : this.#facts.memlockSoft;
  }

  /** Best effort only: a page that is not locked, within the same cap as locked ones. */
  #adoptUnlocked(pages: number, reason: UnlockedReason): LockedRegion | undefined {
    const bytes = pages * this.#pageSize;
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
    this.#trackOpen(region);
    return region;
  }

  #pickVictim(strict: boolean): Allocation | undefined {
    const list = this.#resident;
    const pageUnits = this.#unitsPerPage;
    for (let step = 0; step < 2 * list.length; step++) {
      if (this.#hand >= list.length) this.#hand = 0;
      const candidate = list[this.#hand++];
      if (candidate.pins > 0 || (strict && !candidate.region!.locked)) continue;
      // Once sealed, a secret larger than a page could come back only into whole free pages, which may never be
      // there again: it stays resident, so that an open secret always stays readable.
      if (candidate.units > pageUnits) continue;
      if (candidate.referenced) {
        candidate.referenced = false;
        continue;
      }
      return candidate;
    }
    return undefined;
  }

  #seal(a: Allocation): void {
    const wrap = this.#wrapKey!;
    this.ensureOpen(a.region!);
    this.ensureOpen(wrap.region!);
    const nonce = this.#nextNonce();
    const cipher = createCipheriv('aes-256-gcm', bytesOf(wrap), nonce);
    cipher.setAAD(this.#aadFor(a));
    const body = cipher.update(bytesOf(a));
    cipher.final();
    // A blob of its own, not a slice of Node's shared 8 KiB pool: a long-lived sealed secret would otherwise keep a
    // whole pool slab alive for as long as it stays sealed.
    const tag = cipher.getAuthTag();
    const sealed = Buffer.allocUnsafeSlow(body.length + tag.length + nonce.length);
    body.copy(sealed, 0);
    tag.copy(sealed, body.length);
    nonce.copy(sealed, body.length + tag.length);
    a.sealed = sealed;
    this.#evictFromResident(a);
    this.#releaseUnits(a, false);
    this.#counters.seals++;
    this.#counters.sealed++;
  }

  #unseal(a: Allocation): void {
    const sealed = a.sealed!;
    const bodyLength = sealed.length - GCM_TAG_BYTES - GCM_NONCE_BYTES;
    this.#place(a);
    const wrap = this.#wrapKey!;
    this.ensureOpen(wrap.region!);
    const decipher = createDecipheriv('aes-256-gcm', bytesOf(wrap), sealed.subarray(sealed.length - GCM_NONCE_BYTES));
    decipher.setAAD(this.#aadFor(a));
    decipher.setAuthTag(sealed.subarray(bodyLength, bodyLength + GCM_TAG_BYTES));
    // node:crypto can only return plaintext in a buffer of its own: copy it into the locked unit, then zero it.
    const plain = decipher.update(sealed.subarray(0, bodyLength));
    try {
      this.write(a, plain);
      decipher.final();
    } catch (err) {
      // Undo the placement (zeroing the unit) and stay sealed: every later read fails the same way.
      this.#evictFromResident(a);
      this.#releaseUnits(a, true);
      throw new SecureMemoryError(
        'a sealed secret failed authentication: process memory was corrupted; restart the process',
        { cause: err },
      );
    } finally {
      plain.fill(0);
    }
    sealed.fill(0);
    a.sealed = null;
    this.#counters.unseals++;
    this.#counters.sealed--;
  }

  #releaseUnits(a: Allocation, mayDropRegion: boolean): void {
    const region = a.region!;
    // Its bytes are zeroed and the units reused by another secret: a kept view must not reach them.
    this.#dropView(a);
    this.ensureOpen(region);
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

  #evictFromResident(a: Allocation): void {
    const list = this.#resident;
    const last = list.pop()!;
    if (last !== a) {
      list[a.slot] = last;
      last.slot = a.slot;
    }
    a.slot = -1;
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
      this.#releaseUnits(pool, true);
      throw err;
    }
    const oldPool = this.#pool;
    const oldWrap = this.#wrapKey;
    if (oldWrap === undefined) {
      randomFillSync(wrap.region!.bytes, wrap.first * UNIT_BYTES, WRAP_KEY_BYTES);
    } else {
      this.ensureOpen(oldWrap.region!);
      this.write(wrap, bytesOf(oldWrap));
      this.#releaseUnits(oldWrap, true);
      this.#releaseUnits(oldPool!, true);
    }
    this.#pool = pool;
    this.#poolUsed = RANDOM_POOL_BYTES;
    this.#wrapKey = wrap;
  }

  #placePinned(length: number, strict: boolean): Allocation {
    const a = newAllocation(length, 0, strict);
    a.pins = 1;
    const [region, first] = this.#findSpace(a.units, strict);
    this.#take(a, region, first);
    return a;
  }

  #nextNonce(): Buffer {
    // A counter nonce: the wrapping key is fresh for each process, so (key, nonce) never repeats.
    const nonce = this.#nonce;
    const low = nonce.readUInt32LE(0) + 1;
    nonce.writeUInt32LE(low >>> 0, 0);
    if (low > 0xffffffff) nonce.writeUInt32LE(nonce.readUInt32LE(4) + 1, 4);
    return Buffer.from(nonce);
  }

  /** Binds a sealed blob to its secret, so blobs cannot be swapped between secrets. */
  #aadFor(a: Allocation): Buffer {
    this.#aad.writeDoubleLE(a.id, 0);
    return this.#aad;
  }

  #warnSealing(): void {
    if (this.#warnedSealing) return;
    this.#warnedSealing = true;
    this.#logger.warn('secure memory: locked-memory budget reached; least recently used secrets are now sealed', {
      lockedBytes: this.#lockedBytes,
      maxLockedBytes: this.maxLockedBytes,
      memlockSoft: this.#facts.memlockSoft,
    });
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
      { memlockSoft: this.#facts.memlockSoft, memlockHard: this.#facts.memlockHard, lockErrno: this.#lockFailureErrno },
    );
  }

  #wholePages(bytes: number): number {
    return Math.floor(bytes / this.#pageSize) * this.#pageSize;
  }

  // ---- reporting and shutdown ---------------------------------------------------------------------------------

  lockedBytes(): number {
    return this.#lockedBytes;
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

  stats(): ArenaStats {
    const locked = this.#lockedBytes;
    const unlocked = this.unlockedBytes();
    return {
      lockState: locked > 0 ? (unlocked > 0 ? 'mixed' : 'locked') : unlocked > 0 ? 'unlocked' : 'none',
      lockedBytes: locked,
      unlockedBytes: unlocked,
      maxLockedBytes: this.maxLockedBytes,
      keysThatFit: locked > 0 ? keysThatFitIn(this.lockBudgetBytes()) : 0,
      secretsAllocated: this.#counters.allocated,
      secretsInUse: this.#counters.inUse,
      residentSecrets: this.#resident.length,
      sealedSecrets: this.#counters.sealed,
      seals: this.#counters.seals,
      unseals: this.#counters.unseals,
      lockFailureErrno: this.#lockFailureErrno,
      coreDumpsDisabled: this.#coreDumpsDisabled,
    };
  }

  /**
   * Zeroes, unlocks and unmaps every page and gives them back to the process budget. Secrets still open become
   * unusable (their use is a typed error), and every view handed out is detached first.
   */
  shutdown(): void {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#viewed.length > 0) this.#dropView(this.#viewed[this.#viewed.length - 1]);
    for (const a of this.#resident) {
      this.#dropView(a);
      a.region = null;
    }
    this.#resident.length = 0;
    for (const region of this.#regions) region.release();
    this.#budget.release(this.#lockedBytes);
    this.#lockedBytes = 0;
    this.#regions.clear();
    this.#withSpace.clear();
    this.#lastRegion = undefined;
    this.#openRegions.length = 0;
    this.#pool = undefined;
    this.#wrapKey = undefined;
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

function newAllocation(length: number, id: number, strict: boolean): Allocation {
  return {
    length,
    id,
    region: null,
    first: 0,
    units: unitsFor(length),
    view: null,
    viewSlot: -1,
    sealed: null,
    pins: 0,
    referenced: true,
    slot: -1,
    strict,
  };
}

/** The arena's own short-lived view of a resident allocation (for node:crypto); never handed out. */
function bytesOf(a: Allocation): Uint8Array {
  const start = a.first * UNIT_BYTES;
  return a.region!.bytes.subarray(start, start + a.length);
}

/** 32-byte keys that stay resident at once in `budgetBytes` of locked pages, after the arena's own needs. */
export function keysThatFitIn(budgetBytes: number): number {
  const systemUnits = unitsFor(RANDOM_POOL_BYTES) + unitsFor(WRAP_KEY_BYTES);
  return Math.max(0, Math.floor((Math.floor(budgetBytes / UNIT_BYTES) - systemUnits) / unitsFor(32)));
}

export function unitsFor(length: number): number {
  return Math.ceil((length + CANARY_BYTES) / UNIT_BYTES) || 1;
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

// Captured at load so that a test's fake timers can never keep key pages readable.
const realSetImmediate = setImmediate;

const consoleLogger: SecureMemoryLogger = {
  warn: (message, details) => console.warn(JSON.stringify({ level: 'WARN', message, ...details })),
};
