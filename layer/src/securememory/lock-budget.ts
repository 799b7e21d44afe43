/**
 * The locked bytes that secure memory holds in this process, counted across all its threads. RLIMIT_MEMLOCK (and
 * the library's own cap where no limit binds) is one budget per process, while each thread has its own arena: the
 * count lives in a SharedArrayBuffer that every thread started after this module loaded in its parent shares
 * (process-shared.ts).
 */
import { processShared } from './process-shared.js';

const KEY = 'asherah-layer/secure-memory/locked-kib';
/** Counted in KiB (page sizes are multiples of it): an Int32 then covers 2 TiB. */
const KIB = 1024;

export class LockBudget {
  readonly #held: Int32Array;

  constructor(shared: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.#held = new Int32Array(shared);
  }

  /** Locked bytes held by every thread of the process. */
  get heldBytes(): number {
    return Atomics.load(this.#held, 0) * KIB;
  }

  /**
   * Takes `bytes` if the process then holds at most `capBytes`. With nothing held at all it always succeeds, so
   * that the kernel is asked at least once: its answer (EPERM, ENOMEM) is the truth, not a reading of the limits.
   */
  reserve(bytes: number, capBytes: number): boolean {
    const units = bytes / KIB;
    const cap = Math.floor(capBytes / KIB);
    for (;;) {
      const held = Atomics.load(this.#held, 0);
      if (held !== 0 && held + units > cap) return false;
      if (Atomics.compareExchange(this.#held, 0, held, held + units) === held) return true;
    }
  }

  release(bytes: number): void {
    Atomics.sub(this.#held, 0, bytes / KIB);
  }
}

let processBudget: LockBudget | undefined;

/** The budget of this process: the one a parent thread shared, or a new one shared with this thread's workers. */
export function processLockBudget(): LockBudget {
  processBudget ??= new LockBudget(processShared(KEY, 4));
  return processBudget;
}

// Made when the library loads, not when the first secret is: a worker started before then must share it too.
processLockBudget();
