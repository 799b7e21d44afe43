/**
 * The allocator behind every Secret in the process. It owns the process's RLIMIT_MEMLOCK budget, packs many
 * secrets into each locked page (64-byte units), and when every locked unit is taken it seals the least recently
 * used secrets: AES-256-GCM under a wrapping key that itself lives in locked memory, unsealed into a locked unit
 * only while in use. So any number of secrets fit in Lambda's 64 KiB, and reaching the limit never crashes.
 *
 * Pages are PROT_NONE except during the turn of the event loop in which a secret in them is read or written:
 * the first access opens the page and schedules a setImmediate that closes every open page. That keeps
 * mprotect off the per-record path (one pair per page per turn, not per access) while an idle process has no
 * readable key page.
 */
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import { MemlockLimitError, SecureMemoryError } from './errors.js';
import { lockableBytes, readMemlockFacts, type MemlockFacts } from './limits.js';
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
   * Most bytes of locked pages to use. Default: what RLIMIT_MEMLOCK leaves (less what is already locked), and
   * 8 MiB where the limit does not bind (CAP_IPC_LOCK or unlimited): locked memory cannot be swapped, so it is
   * capped even where the kernel would allow more. A value here lowers the cap under a limit, and sets it where
   * no limit binds. Beyond it, secrets are sealed, not refused.
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
  /** errno of the mlock that first failed (ENOMEM/EAGAIN: limit reached; EPERM: none allowed); 0 if none. */
  lockFailureErrno: number;
  coreDumpsDisabled: boolean;
}

/** What the arena knows of one secret. The Secret class is the public face. */
export interface Allocation {
  readonly length: number;
  readonly id: number;
  region: LockedRegion | null;
  first: number;
  units: number;
  /** View of the secret's bytes while resident. */
  view: Uint8Array | null;
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
  readonly native: NativeMemory;
  readonly facts: MemlockFacts;
  readonly maxLockedBytes: number;
  private readonly logger: SecureMemoryLogger;
  private readonly unitsPerPage: number;
  private readonly regions = new Set<LockedRegion>();
  private readonly withSpace = new Set<LockedRegion>();
  private readonly openRegions: LockedRegion[] = [];
  private closeScheduled = false;
  private readonly resident: Allocation[] = [];
  private hand = 0;
  private lastRegion: LockedRegion | undefined;
  private lockedBudgetReached = false;
  private lockFailureErrno = 0;
  private readonly warnedUnlocked = new Set<UnlockedReason>();
  private warnedSealing = false;
  private nextId = 1;
  private readonly nonce = Buffer.alloc(GCM_NONCE_BYTES);
  private readonly aad = Buffer.alloc(8);
  private counters = { allocated: 0, inUse: 0, sealed: 0, seals: 0, unseals: 0 };
  private pool!: Allocation;
  private poolUsed = RANDOM_POOL_BYTES;
  private wrapKey: Allocation | undefined;
  private readonly coreDumpsDisabled: boolean;
  private closed = false;

  constructor(options: ArenaOptions = {}, native: NativeMemory = loadNative()) {
    this.native = native;
    this.logger = options.logger ?? consoleLogger;
    this.unitsPerPage = native.pageSize / UNIT_BYTES;
    if (options.disableCoreDumps ?? true) native.disableCoreDumps();
    this.facts = readMemlockFacts(native);
    this.coreDumpsDisabled = this.facts.coreSoft === 0;
    const lockable = lockableBytes(this.facts);
    const wanted =
      lockable === 'unlimited'
        ? (options.maxLockedBytes ?? DEFAULT_UNCAPPED_LOCKED_BYTES)
        : Math.min(options.maxLockedBytes ?? Infinity, lockable);
    this.maxLockedBytes = Math.floor(wanted / native.pageSize) * native.pageSize;
  }

  // ---- allocation -------------------------------------------------------------------------------------------

  /** Reserves locked units for `length` bytes. Strict allocations never land in an unlocked page. */
  allocate(length: number, strict: boolean): Allocation {
    if (this.closed) throw new SecureMemoryError('secure memory was shut down; create a new SecretFactory');
    if (this.pool === undefined) this.initSystemAllocations(strict);
    const allocation: Allocation = {
      length,
      id: this.nextId++,
      region: null,
      first: 0,
      units: unitsFor(length),
      view: null,
      sealed: null,
      pins: 0,
      referenced: true,
      slot: -1,
      strict,
    };
    this.place(allocation);
    this.counters.allocated++;
    this.counters.inUse++;
    return allocation;
  }

  /** Fills a resident allocation with random bytes from the locked pool (one randomFillSync per 31 keys). */
  fillRandom(a: Allocation): void {
    const view = a.view!;
    if (a.length > RANDOM_POOL_BYTES) {
      randomFillSync(view);
      return;
    }
    if (this.poolUsed + a.length > RANDOM_POOL_BYTES) {
      this.ensureOpen(this.pool.region!);
      randomFillSync(this.pool.view!);
      this.poolUsed = 0;
    }
    this.ensureOpen(this.pool.region!);
    // A plain loop: cheaper than subarray()+set() for key-sized copies, and it allocates nothing.
    const pool = this.pool.view!;
    const offset = this.poolUsed;
    for (let i = 0; i < a.length; i++) {
      view[i] = pool[offset + i];
      pool[offset + i] = 0;
    }
    this.poolUsed += a.length;
  }

  /** Makes the allocation resident and its page readable for the rest of this turn; returns its bytes. */
  access(a: Allocation): Uint8Array {
    if (a.view === null) {
      if (this.closed) throw new SecureMemoryError('secure memory was shut down; this secret can no longer be read');
      this.unseal(a);
    }
    const region = a.region!;
    if (!region.isOpen) this.ensureOpen(region);
    a.referenced = true;
    return a.view!;
  }

  /** Zeroes the allocation and returns its units. Throws SecureMemoryError if its canary was overwritten. */
  free(a: Allocation): void {
    if (this.closed) return;
    this.counters.inUse--;
    if (a.sealed !== null) {
      a.sealed.fill(0);
      a.sealed = null;
      this.counters.sealed--;
      return;
    }
    this.evictFromResident(a);
    this.releaseUnits(a, true);
  }

  // ---- windows: PROT_NONE except during the turn that uses a page -------------------------------------------

  /** withBytes calls in progress, of any factory: pages are never closed under one. */
  reads = 0;

  /**
   * For protect: 'per-access': closes every open page now, unless a withBytes is still running (its page must
   * stay readable until it returns).
   */
  settle(): void {
    if (this.reads === 0 && this.openRegions.length > 0) this.closeOpenRegions();
  }

  ensureOpen(region: LockedRegion): void {
    if (region.isOpen) return;
    region.open();
    this.trackOpen(region);
  }

  private trackOpen(region: LockedRegion): void {
    this.openRegions.push(region);
    if (!this.closeScheduled) {
      this.closeScheduled = true;
      realSetImmediate(this.closeOpenRegions).unref();
    }
  }

  /** Closes every page opened in this turn. Runs in its own macrotask, so no withBytes is mid-flight. */
  readonly closeOpenRegions = (): void => {
    this.closeScheduled = false;
    const open = this.openRegions.splice(0);
    for (const region of open) if (region.isOpen && this.regions.has(region)) region.close();
  };

  // ---- placement, eviction, sealing ---------------------------------------------------------------------------

  private place(a: Allocation): void {
    const [region, first] = this.findSpace(a.units, a.strict);
    region.take(first, a.units);
    this.lastRegion = region;
    if (region.freeUnits === 0) this.withSpace.delete(region);
    this.ensureOpen(region);
    a.region = region;
    a.first = first;
    const start = first * UNIT_BYTES;
    a.view = region.bytes.subarray(start, start + a.length);
    writeCanary(region, start + a.length);
    if (a.slot === -1) {
      a.slot = this.resident.length;
      this.resident.push(a);
    }
  }

  private findSpace(units: number, strict: boolean): [LockedRegion, number] {
    // Most allocations fit where the last one went: skip the Set iteration then.
    const last = this.lastRegion;
    if (last !== undefined && (last.locked || !strict)) {
      const first = last.findRun(units);
      if (first !== -1) return [last, first];
    }
    for (const region of this.withSpace) {
      if (strict && !region.locked) continue;
      const first = region.findRun(units);
      if (first !== -1) return [region, first];
    }
    const grown = this.grow(units, strict, false);
    if (grown) return [grown, 0];
    if (units > this.unitsPerPage) return this.placeOversized(units, strict);
    // The locked budget is full: seal least recently used secrets until a run frees up.
    for (let attempts = this.resident.length; attempts > 0; attempts--) {
      const victim = this.pickVictim(strict);
      if (victim === undefined) break;
      const region = victim.region!;
      this.seal(victim);
      const first = region.findRun(units);
      // seal() keeps the region mapped (no spare release), so the freed run is usable here.
      if (first !== -1) return [region, first];
    }
    const fallback = this.grow(units, strict, true);
    if (fallback) return [fallback, 0];
    throw new MemlockLimitError(
      this.facts.capIpcLock ? 'unlimited' : this.facts.memlockSoft,
      units * UNIT_BYTES,
      `all ${this.lockedBytes()} locked bytes hold secrets that are in use right now`,
    );
  }

  /**
   * A secret larger than a page needs whole pages of its own, which sealing small secrets cannot free. With the
   * budget full it goes to an unlocked region (best effort) or is refused (strict).
   */
  private placeOversized(units: number, strict: boolean): [LockedRegion, number] {
    const pages = Math.ceil((units * UNIT_BYTES) / this.native.pageSize);
    const bytes = pages * this.native.pageSize;
    const region = strict ? undefined : this.adoptUnlocked(pages, 'oversized');
    if (region) return [region, 0];
    throw new MemlockLimitError(
      this.facts.capIpcLock ? 'unlimited' : this.facts.memlockSoft,
      bytes,
      `a secret of ${units * UNIT_BYTES - CANARY_BYTES} bytes needs ${pages} locked pages of its own and the ` +
        `locked budget (${this.lockBudgetBytes()} bytes, ${this.lockedBytes()} in use) has no room for them; ` +
        'keep secrets under a page',
    );
  }

  /** Maps a new region if the budget allows; `lastResort` permits an unlocked one in best-effort mode. */
  private grow(units: number, strict: boolean, lastResort: boolean): LockedRegion | undefined {
    const page = this.native.pageSize;
    const pages = Math.ceil((units * UNIT_BYTES) / page);
    const bytes = pages * page;
    const lockedNow = this.lockedBytes();
    if (!this.lockedBudgetReached) {
      // With nothing locked yet, always ask the kernel: its answer (EPERM, ENOMEM) is the truth, not our reading
      // of the limits.
      if (lockedNow === 0 || lockedNow + bytes <= this.maxLockedBytes) {
        const region = LockedRegion.create(this.native, pages, true);
        if (region.locked) return this.adopt(region);
        region.release();
        this.lockFailureErrno = region.lockErrno;
        this.lockedBudgetReached = true;
      } else if (pages === 1) {
        this.lockedBudgetReached = true;
      }
    }
    if (lockedNow === 0) {
      if (strict) throw this.nothingLockable(bytes);
      return this.adoptUnlocked(pages, 'nothing-lockable');
    }
    if (this.lockedBudgetReached) this.warnSealing();
    return strict || !lastResort ? undefined : this.adoptUnlocked(pages, 'all-in-use');
  }

  private nothingLockable(bytes: number): MemlockLimitError {
    const errno = this.lockFailureErrno;
    const detail =
      errno === 1
        ? 'this process may lock no memory (mlock: EPERM)'
        : `mlock refused (${this.native.errnoNames[errno] ?? `errno ${errno}`})`;
    return new MemlockLimitError(this.facts.capIpcLock ? 'unlimited' : this.facts.memlockSoft, bytes, detail);
  }

  /** Best effort only: a page that is not locked, within the same cap as locked ones. */
  private adoptUnlocked(pages: number, reason: UnlockedReason): LockedRegion | undefined {
    const bytes = pages * this.native.pageSize;
    if (this.unlockedBytes() + bytes > Math.max(this.maxLockedBytes, DEFAULT_UNCAPPED_LOCKED_BYTES)) return undefined;
    this.warnUnlocked(reason);
    return this.adopt(LockedRegion.create(this.native, pages, false));
  }

  private adopt(region: LockedRegion): LockedRegion {
    this.regions.add(region);
    this.withSpace.add(region);
    this.trackOpen(region);
    return region;
  }

  private pickVictim(strict: boolean): Allocation | undefined {
    const list = this.resident;
    for (let step = 0; step < 2 * list.length; step++) {
      if (this.hand >= list.length) this.hand = 0;
      const candidate = list[this.hand++];
      if (candidate.pins > 0 || (strict && !candidate.region!.locked)) continue;
      if (candidate.referenced) {
        candidate.referenced = false;
        continue;
      }
      return candidate;
    }
    return undefined;
  }

  private seal(a: Allocation): void {
    const wrap = this.wrapKey!;
    this.ensureOpen(a.region!);
    this.ensureOpen(wrap.region!);
    const nonce = this.nextNonce();
    const cipher = createCipheriv('aes-256-gcm', wrap.view!, nonce);
    cipher.setAAD(this.aadFor(a));
    const body = cipher.update(a.view!);
    cipher.final();
    a.sealed = Buffer.concat([body, cipher.getAuthTag(), nonce]);
    this.evictFromResident(a);
    this.releaseUnits(a, false);
    this.counters.seals++;
    this.counters.sealed++;
  }

  private unseal(a: Allocation): void {
    const sealed = a.sealed!;
    const bodyLength = sealed.length - GCM_TAG_BYTES - GCM_NONCE_BYTES;
    this.place(a);
    const wrap = this.wrapKey!;
    this.ensureOpen(wrap.region!);
    const decipher = createDecipheriv('aes-256-gcm', wrap.view!, sealed.subarray(sealed.length - GCM_NONCE_BYTES));
    decipher.setAAD(this.aadFor(a));
    decipher.setAuthTag(sealed.subarray(bodyLength, bodyLength + GCM_TAG_BYTES));
    // node:crypto can only return plaintext in a buffer of its own: copy it into the locked unit, then zero it.
    const plain = decipher.update(sealed.subarray(0, bodyLength));
    try {
      a.view!.set(plain);
      decipher.final();
    } catch (err) {
      // Undo the placement (zeroing the unit) and stay sealed: every later read fails the same way.
      this.evictFromResident(a);
      this.releaseUnits(a, true);
      throw new SecureMemoryError(
        'a sealed secret failed authentication: process memory was corrupted; restart the process',
        { cause: err },
      );
    } finally {
      plain.fill(0);
    }
    sealed.fill(0);
    a.sealed = null;
    this.counters.unseals++;
    this.counters.sealed--;
  }

  private releaseUnits(a: Allocation, mayDropRegion: boolean): void {
    const region = a.region!;
    this.ensureOpen(region);
    const start = a.first * UNIT_BYTES;
    const canaryIntact = equalBytes(region.bytes, start + a.length, region.canary);
    // A TypedArray fill is a real store into native memory that no compiler can elide.
    region.bytes.fill(0, start, start + a.units * UNIT_BYTES);
    region.give(a.first, a.units);
    this.withSpace.add(region);
    a.region = null;
    a.view = null;
    if (mayDropRegion && region.freeUnits === region.used.length) this.releaseIfSpare(region);
    if (!canaryIntact) {
      throw new SecureMemoryError(
        'canary check failed: memory right after a secret was overwritten (buffer overrun); treat this process ' +
          'as compromised and restart it',
      );
    }
  }

  /** Keeps one empty region for the next allocation and gives the rest back to the budget. */
  private releaseIfSpare(region: LockedRegion): void {
    for (const other of this.withSpace) {
      if (other !== region && other.isEmpty && other.locked === region.locked) {
        this.dropRegion(region);
        return;
      }
    }
  }

  private dropRegion(region: LockedRegion): void {
    if (this.lastRegion === region) this.lastRegion = undefined;
    this.regions.delete(region);
    this.withSpace.delete(region);
    region.release();
    // A page given back makes room in the budget again.
    if (region.locked) this.lockedBudgetReached = false;
  }

  private evictFromResident(a: Allocation): void {
    const list = this.resident;
    const last = list.pop()!;
    if (last !== a) {
      list[a.slot] = last;
      last.slot = a.slot;
    }
    a.slot = -1;
  }

  private initSystemAllocations(strict: boolean): void {
    this.pool = {
      length: RANDOM_POOL_BYTES,
      id: 0,
      region: null,
      first: 0,
      units: unitsFor(RANDOM_POOL_BYTES),
      view: null,
      sealed: null,
      pins: 1,
      referenced: true,
      slot: -1,
      strict,
    };
    this.placePinned(this.pool);
    const wrap: Allocation = { ...this.pool, length: WRAP_KEY_BYTES, units: unitsFor(WRAP_KEY_BYTES) };
    this.placePinned(wrap);
    randomFillSync(wrap.view!);
    this.wrapKey = wrap;
  }

  /** System allocations never enter the resident list, so they are never sealed. */
  private placePinned(a: Allocation): void {
    const [region, first] = this.findSpace(a.units, a.strict);
    region.take(first, a.units);
    if (region.freeUnits === 0) this.withSpace.delete(region);
    this.ensureOpen(region);
    a.region = region;
    a.first = first;
    a.view = region.bytes.subarray(first * UNIT_BYTES, first * UNIT_BYTES + a.length);
    writeCanary(region, first * UNIT_BYTES + a.length);
  }

  private nextNonce(): Buffer {
    // A counter nonce: the wrapping key is fresh for each process, so (key, nonce) never repeats.
    const low = this.nonce.readUInt32LE(0) + 1;
    this.nonce.writeUInt32LE(low >>> 0, 0);
    if (low > 0xffffffff) this.nonce.writeUInt32LE(this.nonce.readUInt32LE(4) + 1, 4);
    return Buffer.from(this.nonce);
  }

  /** Binds a sealed blob to its secret, so blobs cannot be swapped between secrets. */
  private aadFor(a: Allocation): Buffer {
    this.aad.writeDoubleLE(a.id, 0);
    return this.aad;
  }

  private warnSealing(): void {
    if (this.warnedSealing) return;
    this.warnedSealing = true;
    this.logger.warn('secure memory: locked-memory budget reached; least recently used secrets are now sealed', {
      lockedBytes: this.lockedBytes(),
      maxLockedBytes: this.maxLockedBytes,
      memlockSoft: this.facts.memlockSoft,
    });
  }

  private warnUnlocked(reason: UnlockedReason): void {
    if (this.warnedUnlocked.has(reason)) return;
    this.warnedUnlocked.add(reason);
    const why = {
      'nothing-lockable': 'NO MEMORY CAN BE LOCKED; running best-effort with UNLOCKED pages',
      'all-in-use': 'every locked unit holds a secret in use right now; this secret goes to an UNLOCKED page',
      oversized: 'a secret larger than the free locked budget goes to UNLOCKED pages',
    }[reason];
    this.logger.warn(
      `secure memory: ${why} (still excluded from core dumps, PROT_NONE while idle, zeroed on release), which the ` +
        'kernel may swap to disk; see docs/memlock.md',
      { memlockSoft: this.facts.memlockSoft, memlockHard: this.facts.memlockHard, lockErrno: this.lockFailureErrno },
    );
  }

  // ---- reporting and shutdown ---------------------------------------------------------------------------------

  lockedBytes(): number {
    let total = 0;
    for (const region of this.regions) if (region.locked) total += region.dataBytes;
    return total;
  }

  unlockedBytes(): number {
    let total = 0;
    for (const region of this.regions) if (!region.locked) total += region.dataBytes;
    return total;
  }

  /** Bytes that can really be locked: the budget, or what the kernel allowed once mlock refused. */
  lockBudgetBytes(): number {
    return this.lockFailureErrno !== 0 ? this.lockedBytes() : this.maxLockedBytes;
  }

  stats(): ArenaStats {
    const locked = this.lockedBytes();
    const unlocked = this.unlockedBytes();
    return {
      lockState: locked > 0 ? (unlocked > 0 ? 'mixed' : 'locked') : unlocked > 0 ? 'unlocked' : 'none',
      lockedBytes: locked,
      unlockedBytes: unlocked,
      maxLockedBytes: this.maxLockedBytes,
      keysThatFit: this.lockedBytes() > 0 ? keysThatFitIn(this.lockBudgetBytes()) : 0,
      secretsAllocated: this.counters.allocated,
      secretsInUse: this.counters.inUse,
      residentSecrets: this.resident.length,
      sealedSecrets: this.counters.sealed,
      seals: this.counters.seals,
      unseals: this.counters.unseals,
      lockFailureErrno: this.lockFailureErrno,
      coreDumpsDisabled: this.coreDumpsDisabled,
    };
  }

  /** Zeroes and unmaps everything. Secrets still open become unusable (their use is a typed error). */
  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    for (const a of this.resident) {
      a.view = null;
      a.region = null;
    }
    this.resident.length = 0;
    for (const region of this.regions) region.release();
    this.regions.clear();
    this.withSpace.clear();
    this.lastRegion = undefined;
    this.openRegions.length = 0;
  }

  get isShutDown(): boolean {
    return this.closed;
  }
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
