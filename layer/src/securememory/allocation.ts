/**
 * The arena's record of one secret (the Secret class is its public face), shared by the arena's parts: placement
 * gives it units in a region, page windows lend views of its bytes, sealing moves its bytes out of locked
 * memory and back. Plain data, so that the per-record path reads fields rather than calling accessors; it is only
 * ever held in private fields (Secret#allocation, the arena's lists), never reachable by enumeration.
 */
import { CANARY_BYTES as CANARY, UNIT_BYTES as UNIT, type LockedRegion } from './locked-region.js';

// Local copies: imported bindings compile to property reads through getters, and these sit on the hot path.
const UNIT_BYTES = UNIT;
const CANARY_BYTES = CANARY;

export interface Allocation {
  readonly length: number;
  readonly id: number;
  /** Where the bytes are while resident; null while sealed (or once freed). */
  region: LockedRegion | null;
  first: number;
  readonly units: number;
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

export function newAllocation(length: number, id: number, strict: boolean): Allocation {
  return {
    length,
    id,
    region: null,
    first: 0,
    units: unitsFor(length),
    sealed: null,
    pins: 0,
    referenced: true,
    slot: -1,
    strict,
  };
}

/** 64-byte units for a secret of `length` bytes and the canary after it. */
export function unitsFor(length: number): number {
  return Math.ceil((length + CANARY_BYTES) / UNIT_BYTES) || 1;
}

/** The arena's own short-lived view of a resident allocation (for node:crypto); never handed out. */
export function bytesOf(a: Allocation): Uint8Array {
  const start = a.first * UNIT_BYTES;
  return a.region!.bytes.subarray(start, start + a.length);
}
