/**
 * Every mapping of secure memory in the process and the thread that owns it, in shared memory, so that pages are
 * given back whatever ends a thread. A worker that ends normally or calls process.exit() releases its own pages
 * (process-arena.ts); one stopped by worker.terminate(), or stopped with an ancestor that was, runs no more
 * JavaScript. Its pages are released (zeroed, unlocked, unmapped, given back to the budget) by another thread:
 *
 * - the thread that started it, when the worker's 'exit' event fires (threads that load the library listen for
 *   the workers they start);
 * - on Linux, any thread, for every mapping whose owner's OS thread is gone (/proc/self/task/<tid>): after any
 *   worker's exit (a terminated worker takes its own workers down, whose parent never hears it), and when the
 *   process's locked budget is full (reclaimStopped).
 *
 * A mapping is claimed (compare-and-swap) before it is released, so two threads never release one twice.
 */
import { existsSync, readlinkSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { processLockBudget } from './lock-budget.js';
import { loadNative } from './native.js';
import { processShared } from './process-shared.js';

// Versioned: two copies of the library in one process (two bundles) share the table only if its layout matches.
const KEY = 'asherah-layer/secure-memory/mappings-v2';
/** Enough for 8 MiB of one-page regions, locked and unlocked, several times over. */
const SLOTS = 8192;
/**
 * Per slot: owner (threadId + 1; 0 when free, -1 while being released), the owner's OS thread id (0 if unknown),
 * base address, mapped bytes, data bytes (negative if not locked).
 */
const FIELDS = 5;
const FREE = 0n;
const RELEASING = -1n;

const table = new BigInt64Array(processShared(KEY, SLOTS * FIELDS * BigInt64Array.BYTES_PER_ELEMENT));
const me = BigInt(threadId + 1);
const myTid = BigInt(osThreadId() ?? 0);
let nextSlot = 0;

/** This thread's id in the kernel (Linux: /proc/thread-self is "<pid>/task/<tid>"), or undefined. */
function osThreadId(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isSafeInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Records a mapping of this thread: guard page, data pages, guard page from `base`. Returns its slot, or -1 if
 * the table is full (the mapping is then released only by its own thread).
 */
export function recordMapping(base: bigint, mappedBytes: number, dataBytes: number, locked: boolean): number {
  for (let i = 0; i < SLOTS; i++) {
    const slot = (nextSlot + i) % SLOTS;
    const at = slot * FIELDS;
    if (Atomics.compareExchange(table, at, FREE, me) !== FREE) continue;
    Atomics.store(table, at + 1, myTid);
    Atomics.store(table, at + 2, base);
    Atomics.store(table, at + 3, BigInt(mappedBytes));
    Atomics.store(table, at + 4, BigInt(locked ? dataBytes : -dataBytes));
    nextSlot = slot + 1;
    return slot;
  }
  return -1;
}

/** The mapping in `slot` moved to `base` (LockedRegion.relocate); its old pages are left mapped, unlocked. */
export function moveMapping(slot: number, base: bigint, locked: boolean): void {
  if (slot < 0) return;
  const at = slot * FIELDS;
  const dataBytes = Math.abs(Number(Atomics.load(table, at + 4)));
  Atomics.store(table, at + 2, base);
  Atomics.store(table, at + 4, BigInt(locked ? dataBytes : -dataBytes));
}

/** The mapping in `slot` was released by its thread. */
export function forgetMapping(slot: number): void {
  if (slot >= 0) freeSlot(slot * FIELDS);
}

/**
 * Frees a slot. Its thread id is cleared first: a slot claimed again by a live thread must never show the id of a
 * thread that is gone while its new owner has not written its own yet (reclaimStopped skips id 0), or another
 * thread would unmap the new owner's pages under it.
 */
function freeSlot(at: number): void {
  Atomics.store(table, at + 1, 0n);
  Atomics.store(table, at, FREE);
}

/** Zeroes, unlocks and unmaps every mapping still recorded for a thread that has stopped. */
export function releaseMappingsOf(stoppedThreadId: number): void {
  const owner = BigInt(stoppedThreadId + 1);
  for (let slot = 0; slot < SLOTS; slot++) {
    if (Atomics.load(table, slot * FIELDS) === owner) releaseSlot(slot, owner);
  }
}

/**
 * Linux: releases every mapping whose owner's OS thread no longer exists, whoever started it. Returns the locked
 * bytes given back. A thread id the kernel has reused for a new thread only delays a release (the mapping looks
 * owned), never releases pages of a live thread.
 */
export function reclaimStopped(): number {
  if (myTid === 0n) return 0;
  const alive = new Map<bigint, boolean>();
  let reclaimed = 0;
  for (let slot = 0; slot < SLOTS; slot++) {
    const at = slot * FIELDS;
    const owner = Atomics.load(table, at);
    if (owner === FREE || owner === RELEASING || owner === me) continue;
    const tid = Atomics.load(table, at + 1);
    if (tid === 0n) continue;
    let exists = alive.get(tid);
    if (exists === undefined) {
      exists = existsSync(`/proc/self/task/${tid}`);
      alive.set(tid, exists);
    }
    if (!exists) reclaimed += releaseSlot(slot, owner);
  }
  return reclaimed;
}

/** Claims the slot from `owner` and releases its mapping. Returns the locked bytes given back. */
function releaseSlot(slot: number, owner: bigint): number {
  const at = slot * FIELDS;
  if (Atomics.compareExchange(table, at, owner, RELEASING) !== owner) return 0;
  const base = Atomics.load(table, at + 2);
  const mappedBytes = Number(Atomics.load(table, at + 3));
  const signedData = Number(Atomics.load(table, at + 4));
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
  freeSlot(at);
  return signedData > 0 ? dataBytes : 0;
}

process.on('worker', (worker) => {
  // Read now: a worker that has stopped reports threadId -1.
  const id = worker.threadId;
  worker.once('exit', () => {
    releaseMappingsOf(id);
    reclaimStopped();
  });
});
