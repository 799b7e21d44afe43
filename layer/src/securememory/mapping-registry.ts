/**
 * Every mapping of secure memory in the process and the thread that owns it, in shared memory. A worker thread
 * that ends normally or calls process.exit() releases its own pages (process-arena.ts), but one stopped by
 * worker.terminate() runs no more JavaScript: the thread that started it releases what it left (zeroed, unlocked,
 * unmapped, given back to the budget) when the worker's 'exit' event fires. Threads that load the library listen
 * for the workers they start.
 */
import { threadId } from 'node:worker_threads';
import { processLockBudget } from './lock-budget.js';
import { loadNative } from './native.js';
import { processShared } from './process-shared.js';

const KEY = 'asherah-layer/secure-memory/mappings';
/** Enough for 8 MiB of one-page regions, locked and unlocked, several times over. */
const SLOTS = 8192;
/** Per slot: owner (threadId + 1, 0 when free), base address, mapped bytes, data bytes (negative if not locked). */
const FIELDS = 4;

const table = new BigInt64Array(processShared(KEY, SLOTS * FIELDS * BigInt64Array.BYTES_PER_ELEMENT));
const me = BigInt(threadId + 1);
let nextSlot = 0;

/**
 * Records a mapping of this thread: guard page, data pages, guard page from `base`. Returns its slot, or -1 if
 * the table is full (the mapping is then released only by its own thread).
 */
export function recordMapping(base: bigint, mappedBytes: number, dataBytes: number, locked: boolean): number {
  for (let i = 0; i < SLOTS; i++) {
    const slot = (nextSlot + i) % SLOTS;
    const at = slot * FIELDS;
    if (Atomics.compareExchange(table, at, 0n, me) !== 0n) continue;
    Atomics.store(table, at + 1, base);
    Atomics.store(table, at + 2, BigInt(mappedBytes));
    Atomics.store(table, at + 3, BigInt(locked ? dataBytes : -dataBytes));
    nextSlot = slot + 1;
    return slot;
  }
  return -1;
}

/** The mapping in `slot` was released by its thread. */
export function forgetMapping(slot: number): void {
  if (slot >= 0) Atomics.store(table, slot * FIELDS, 0n);
}

/** Zeroes, unlocks and unmaps every mapping still recorded for a thread that has stopped. Returns how many. */
export function releaseMappingsOf(stoppedThreadId: number): number {
  const owner = BigInt(stoppedThreadId + 1);
  let released = 0;
  for (let slot = 0; slot < SLOTS; slot++) {
    const at = slot * FIELDS;
    if (Atomics.load(table, at) !== owner) continue;
    const base = Atomics.load(table, at + 1);
    const mappedBytes = Number(Atomics.load(table, at + 2));
    const signedData = Number(Atomics.load(table, at + 3));
    const native = loadNative();
    const address = base + BigInt(native.pageSize);
    const dataBytes = Math.abs(signedData);
    // The pages may be PROT_NONE: open them to zero them.
    native.protectReadWrite(address, dataBytes);
    native.zero(address, dataBytes);
    if (signedData > 0) {
      native.unlock(address, dataBytes);
      processLockBudget().release(dataBytes);
    }
    native.unmap(base, mappedBytes);
    Atomics.store(table, at, 0n);
    released++;
  }
  return released;
}

process.on('worker', (worker) => {
  // Read now: a worker that has stopped reports threadId -1.
  const id = worker.threadId;
  worker.once('exit', () => releaseMappingsOf(id));
});
