/**
 * What this host lets the process lock: RLIMIT_MEMLOCK, CAP_IPC_LOCK, VmLck, page size. Read at start and
 * whenever a report is asked for; the allocator never trusts these numbers alone (another library in the
 * process may lock memory too), it also handles mlock failing.
 */
import { readFileSync } from 'node:fs';
import type { NativeMemory, RlimitValue } from './native.js';

/** Bit 14 of the capability sets (linux/capability.h). */
const CAP_IPC_LOCK = 14n;

export interface MemlockFacts {
  pageSize: number;
  memlockSoft: RlimitValue;
  memlockHard: RlimitValue;
  /** Root usually has it; it makes the kernel ignore RLIMIT_MEMLOCK. */
  capIpcLock: boolean;
  /** VmLck of /proc/self/status in bytes; undefined where the kernel does not say (macOS). */
  lockedBytes: number | undefined;
  coreSoft: RlimitValue;
  coreHard: RlimitValue;
}

export function readMemlockFacts(native: NativeMemory): MemlockFacts {
  const memlock = native.memlockLimit();
  const core = native.coreLimit();
  const status = readProcStatus();
  return {
    pageSize: native.pageSize,
    memlockSoft: memlock.soft,
    memlockHard: memlock.hard,
    capIpcLock: status ? hasCapability(status, CAP_IPC_LOCK) : false,
    lockedBytes: status ? lockedBytesFrom(status) : undefined,
    coreSoft: core.soft,
    coreHard: core.hard,
  };
}

/** VmLck now, in bytes (undefined off Linux). */
export function readLockedBytes(): number | undefined {
  const status = readProcStatus();
  return status ? lockedBytesFrom(status) : undefined;
}

/**
 * How many bytes this process may still lock: unlimited with CAP_IPC_LOCK or an unlimited soft limit,
 * else the soft limit less what is already locked.
 */
export function lockableBytes(facts: MemlockFacts): number | 'unlimited' {
  if (facts.capIpcLock || facts.memlockSoft === 'unlimited') return 'unlimited';
  return Math.max(0, facts.memlockSoft - (facts.lockedBytes ?? 0));
}

function readProcStatus(): string | undefined {
  try {
    return readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined;
  }
}

function hasCapability(status: string, bit: bigint): boolean {
  const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return match !== null && ((BigInt(`0x${match[1]}`) >> bit) & 1n) === 1n;
}

function lockedBytesFrom(status: string): number | undefined {
  const match = /^VmLck:\s*(\d+) kB$/m.exec(status);
  return match ? Number(match[1]) * 1024 : undefined;
}
