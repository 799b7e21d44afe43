/**
 * Random bytes for new secrets, generated in locked memory. A randomFillSync call costs more than the rest of
 * createRandom put together, so the pool draws 1008 bytes at a time (31 keys of 32 bytes) into a pinned unit run of
 * its own and hands them out, zeroing each byte it gives away; no random byte of a key ever passes through the
 * heap. Secrets larger than the pool are filled directly.
 */
import { randomFillSync } from 'node:crypto';
import type { Allocation } from './allocation.js';
import { CANARY_BYTES as CANARY, UNIT_BYTES as UNIT } from './locked-region.js';
import type { PageWindows } from './page-windows.js';
import type { Placement } from './placement.js';

// Local copies: imported bindings compile to property reads through getters, and these sit on the hot path.
const UNIT_BYTES = UNIT;
const CANARY_BYTES = CANARY;

/** Random bytes drawn per refill: 16 units, 31 keys of 32 bytes per randomFillSync call. */
export const RANDOM_POOL_BYTES = 16 * UNIT_BYTES - CANARY_BYTES;

export class RandomPool {
  readonly #windows: PageWindows;
  readonly #placement: Placement;
  /** A pinned allocation, never sealed nor in the resident list; undefined until the first secret. */
  #pool: Allocation | undefined;
  /** Bytes of the pool already handed out (and zeroed); RANDOM_POOL_BYTES means refill first. */
  #used = RANDOM_POOL_BYTES;

  constructor(windows: PageWindows, placement: Placement) {
    this.#windows = windows;
    this.#placement = placement;
  }

  /** No pool yet, or a strict secret needs one in locked pages (best effort may have started it unlocked). */
  needsPlacing(strict: boolean): boolean {
    const pool = this.#pool;
    return pool === undefined || (strict && !pool.region!.locked);
  }

  /** Makes a newly placed pinned run of RANDOM_POOL_BYTES the pool (empty: the next draw refills it). */
  use(pool: Allocation): void {
    const old = this.#pool;
    if (old !== undefined) this.#placement.release(old, true);
    this.#pool = pool;
    this.#used = RANDOM_POOL_BYTES;
  }

  /** Fills a resident allocation with random bytes from the locked pool (one randomFillSync per 31 keys). */
  fill(a: Allocation): void {
    const windows = this.#windows;
    const region = a.region!;
    windows.ensureOpen(region);
    const bytes = region.bytes;
    const start = a.first * UNIT_BYTES;
    if (a.length > RANDOM_POOL_BYTES) {
      randomFillSync(bytes, start, a.length);
      return;
    }
    const pool = this.#pool!;
    const poolRegion = pool.region!;
    windows.ensureOpen(poolRegion);
    const poolBytes = poolRegion.bytes;
    const poolStart = pool.first * UNIT_BYTES;
    if (this.#used + a.length > RANDOM_POOL_BYTES) {
      randomFillSync(poolBytes, poolStart, RANDOM_POOL_BYTES);
      this.#used = 0;
    }
    // A plain loop: cheaper than subarray()+set() for key-sized copies, and it allocates nothing.
    const from = poolStart + this.#used;
    for (let i = 0; i < a.length; i++) {
      bytes[start + i] = poolBytes[from + i];
      poolBytes[from + i] = 0;
    }
    this.#used += a.length;
  }

  /** At shutdown: the pool's region is about to be unmapped. */
  shutdown(): void {
    this.#pool = undefined;
  }
}
