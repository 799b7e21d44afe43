/**
 * One mapping of secure memory: a PROT_NONE guard page, `pages` data pages, a PROT_NONE guard page. The data
 * pages are mlocked (when the budget allows), excluded from core dumps, PROT_NONE while closed, and divided into
 * 64-byte units that the arena hands out. Zeroed before munlock and munmap.
 */
import { randomFillSync } from 'node:crypto';
import { forgetMapping, moveMapping, recordMapping } from './mapping-registry.js';
import type { NativeMemory } from './native.js';

/** Allocation granularity inside a region: a 32-byte key plus its 16-byte canary fits in one unit. */
export const UNIT_BYTES = 64;
/** Random bytes written after every allocation; a change means something wrote past the secret's end. */
export const CANARY_BYTES = 16;

export class LockedRegion {
  /** Whether the data pages are readable and writable right now (between an open() and the next close()). */
  isOpen = true;
  /** 1 for each unit in use. */
  readonly used: Uint8Array;
  freeUnits: number;
  /** Where the search for a free unit starts: most allocations are one unit and land here. */
  private nextFree = 0;
  /** The data pages, for the arena's own use only: never handed out (withBytes gets a view of one secret). */
  bytes: Uint8Array;
  /** Not secret: its only job is to be unpredictable to code that overruns a buffer. */
  readonly canary = randomFillSync(Buffer.alloc(CANARY_BYTES));
  /** Its entry in the process's mapping registry, for release by another thread if this one is terminated. */
  private readonly registrySlot: number;

  private constructor(
    private readonly native: NativeMemory,
    private base: bigint,
    private readonly mappedBytes: number,
    public address: bigint,
    readonly dataBytes: number,
    public locked: boolean,
    readonly lockErrno: number,
    readonly dumpExcluded: boolean,
  ) {
    this.used = new Uint8Array(dataBytes / UNIT_BYTES);
    this.freeUnits = this.used.length;
    this.bytes = new Uint8Array(native.view(address, dataBytes));
    this.registrySlot = recordMapping(base, mappedBytes, dataBytes, locked);
  }

  /**
   * Maps a region and tries to lock it. The region comes back open (read-write), locked or not: the caller
   * decides whether an unlocked region is acceptable and releases it if not.
   */
  static create(native: NativeMemory, pages: number, tryLock: boolean): LockedRegion {
    const page = native.pageSize;
    const dataBytes = pages * page;
    const mappedBytes = dataBytes + 2 * page;
    const base = native.map(mappedBytes);
    const address = base + BigInt(page);
    try {
      native.protectNone(base, page);
      native.protectNone(address + BigInt(dataBytes), page);
      const dumpExcluded = native.excludeFromCoreDumps(address, dataBytes);
      const lockErrno = tryLock ? native.lock(address, dataBytes) : -1;
      return new LockedRegion(native, base, mappedBytes, address, dataBytes, lockErrno === 0, lockErrno, dumpExcluded);
    } catch (err) {
      native.unmap(base, mappedBytes);
      throw err;
    }
  }

  /**
   * A view of `length` bytes at `start` over its own ArrayBuffer, so that holding it reaches nothing else in the
   * page. Make it while the page is open; detach it (native.detach) before the page closes or the bytes move.
   */
  viewOf(start: number, length: number): Uint8Array {
    return new Uint8Array(this.native.view(this.address + BigInt(start), length));
  }

  /**
   * Moves the data pages' contents to a new mapping, and leaves at the old address fresh pages that read zeros,
   * unlocked and mapped for good: for when a view of these pages escaped (a withBytes view transferred to an
   * ArrayBuffer the library cannot reach), so that whatever holds it reads zeros, never a later secret. The region
   * must be open. A copy, not mremap: mremap with MREMAP_DONTUNMAP leaves the kernel counting the old pages as
   * locked (VmLck grows by the region, seen on Linux 6.18), which would eat into RLIMIT_MEMLOCK for good. The new
   * pages are locked after the old ones are unlocked, so the move needs no more of the limit than the region has;
   * if another thread took that room meanwhile, the region stays unlocked (`locked` false) and the caller accounts
   * for it.
   */
  relocate(): void {
    const native = this.native;
    const page = native.pageSize;
    const base = native.map(this.mappedBytes);
    const to = base + BigInt(page);
    let bytes: Uint8Array;
    try {
      native.protectNone(base, page);
      native.protectNone(to + BigInt(this.dataBytes), page);
      native.excludeFromCoreDumps(to, this.dataBytes);
      bytes = new Uint8Array(native.view(to, this.dataBytes));
      bytes.set(this.bytes);
    } catch (err) {
      native.unmap(base, this.mappedBytes);
      throw err;
    }
    native.zero(this.address, this.dataBytes);
    if (this.locked) native.unlock(this.address, this.dataBytes);
    // The old mapping (guard pages and these zeros) is never unmapped: the escaped view may still read it.
    native.replaceWithZeros(this.address, this.dataBytes);
    if (this.locked) this.locked = native.lock(to, this.dataBytes) === 0;
    native.detach(this.bytes.buffer as ArrayBuffer);
    this.base = base;
    this.address = to;
    this.bytes = bytes;
    moveMapping(this.registrySlot, base, this.locked);
  }

  open(): void {
    this.native.protectReadWrite(this.address, this.dataBytes);
    this.isOpen = true;
  }

  close(): void {
    this.native.protectNone(this.address, this.dataBytes);
    this.isOpen = false;
  }

  /** Index of the first unit of a free run of `units`, or -1. */
  findRun(units: number): number {
    if (this.freeUnits < units) return -1;
    const used = this.used;
    const total = used.length;
    if (units === 1) {
      for (let i = this.nextFree; i < total; i++) if (used[i] === 0) return i;
      for (let i = 0; i < this.nextFree; i++) if (used[i] === 0) return i;
      return -1;
    }
    let runStart = 0;
    let runLength = 0;
    for (let i = 0; i < total; i++) {
      if (used[i] === 0) {
        if (runLength === 0) runStart = i;
        if (++runLength === units) return runStart;
      } else {
        runLength = 0;
      }
    }
    return -1;
  }

  take(first: number, units: number): void {
    if (units === 1) this.used[first] = 1;
    else this.used.fill(1, first, first + units);
    this.freeUnits -= units;
    this.nextFree = first + units < this.used.length ? first + units : 0;
  }

  give(first: number, units: number): void {
    if (units === 1) this.used[first] = 0;
    else this.used.fill(0, first, first + units);
    this.freeUnits += units;
    if (first < this.nextFree) this.nextFree = first;
  }

  get isEmpty(): boolean {
    return this.freeUnits === this.used.length;
  }

  /** Zeroes the data pages, unlocks and unmaps them. The region must not be used afterwards. */
  release(): void {
    if (!this.isOpen) this.open();
    this.native.zero(this.address, this.dataBytes);
    if (this.locked) this.native.unlock(this.address, this.dataBytes);
    this.isOpen = false;
    this.native.detach(this.bytes.buffer as ArrayBuffer);
    this.native.unmap(this.base, this.mappedBytes);
    forgetMapping(this.registrySlot);
  }
}
