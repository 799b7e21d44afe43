/**
 * Every native call and constant of secure memory, in one place, through koffi. Nothing else in the library
 * loads koffi or knows a syscall number. Supported: Linux (glibc or musl) on x64 and arm64, and macOS.
 * Elsewhere (Windows, an unknown libc) `loadNative()` throws NativeUnavailableError instead of crashing.
 */
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { NativeUnavailableError, SecureMemoryError } from './errors.js';

export type RlimitValue = number | 'unlimited';
export interface Rlimit {
  soft: RlimitValue;
  hard: RlimitValue;
}

/** Result of an mlock call: 0 on success, else the errno (ENOMEM/EAGAIN: limit reached, EPERM: not allowed). */
export type LockResult = 0 | number;

export interface NativeMemory {
  readonly platform: 'linux' | 'darwin';
  readonly pageSize: number;
  /** True where madvise can exclude a mapping from core dumps (Linux); macOS relies on RLIMIT_CORE = 0. */
  readonly canExcludeFromCoreDumps: boolean;
  readonly errnoNames: Readonly<Record<number, string>>;
  /** A private anonymous read-write mapping of `length` bytes (a multiple of the page size). */
  map(length: number): bigint;
  unmap(address: bigint, length: number): void;
  /** Replaces the pages at `address` (a range this process mapped) with fresh ones that read zeros, unlocked. */
  replaceWithZeros(address: bigint, length: number): void;
  protectNone(address: bigint, length: number): void;
  protectReadWrite(address: bigint, length: number): void;
  lock(address: bigint, length: number): LockResult;
  unlock(address: bigint, length: number): void;
  excludeFromCoreDumps(address: bigint, length: number): boolean;
  /** Zeroes memory with a call the compiler cannot drop (explicit_bzero, or memset_s on macOS). */
  zero(address: bigint, length: number): void;
  /** A zero-copy ArrayBuffer over native memory; touching it while the pages are PROT_NONE kills the process. */
  view(address: bigint, length: number): ArrayBuffer;
  /**
   * Makes a buffer from view() zero-length for good, without touching its memory: a copy of a Uint8Array over it
   * that someone kept then reads nothing and writes nowhere. False where the runtime cannot (see detacher()).
   */
  detach(buffer: ArrayBuffer): boolean;
  memlockLimit(): Rlimit;
  coreLimit(): Rlimit;
  /** setrlimit(RLIMIT_CORE, 0, 0): no core file can ever hold this process's memory. */
  disableCoreDumps(): void;
}

interface PlatformConstants {
  PROT_NONE: number;
  PROT_READ_WRITE: number;
  MAP_PRIVATE_ANONYMOUS: number;
  MAP_FIXED: number;
  MADV_DONTDUMP: number | undefined;
  RLIMIT_CORE: number;
  RLIMIT_MEMLOCK: number;
  RLIM_INFINITY: bigint;
  errnoNames: Record<number, string>;
}

// Values from the kernel and libc headers. Linux x64 and arm64 share the generic values used here
// (asm-generic/mman-common.h, asm-generic/resource.h); macOS differs in MAP_ANON, RLIMIT_MEMLOCK, RLIM_INFINITY
// and has no MADV_DONTDUMP.
const LINUX: PlatformConstants = {
  PROT_NONE: 0,
  PROT_READ_WRITE: 0x1 | 0x2,
  MAP_PRIVATE_ANONYMOUS: 0x02 | 0x20,
  MAP_FIXED: 0x10,
  MADV_DONTDUMP: 16,
  RLIMIT_CORE: 4,
  RLIMIT_MEMLOCK: 8,
  RLIM_INFINITY: 0xffffffffffffffffn,
  errnoNames: { 1: 'EPERM', 11: 'EAGAIN', 12: 'ENOMEM', 22: 'EINVAL' },
};
const DARWIN: PlatformConstants = {
  PROT_NONE: 0,
  PROT_READ_WRITE: 0x1 | 0x2,
  MAP_PRIVATE_ANONYMOUS: 0x0002 | 0x1000,
  MAP_FIXED: 0x0010,
  MADV_DONTDUMP: undefined,
  RLIMIT_CORE: 4,
  RLIMIT_MEMLOCK: 6,
  RLIM_INFINITY: 0x7fffffffffffffffn,
  errnoNames: { 1: 'EPERM', 12: 'ENOMEM', 22: 'EINVAL', 35: 'EAGAIN' },
};

const MAP_FAILED = 0xffffffffffffffffn;

let cached: NativeMemory | NativeUnavailableError | undefined;

/** Loads the bindings once per process. Throws NativeUnavailableError where they cannot exist. */
export function loadNative(): NativeMemory {
  if (cached === undefined) {
    try {
      cached = bind();
    } catch (err) {
      cached =
        err instanceof NativeUnavailableError
          ? err
          : new NativeUnavailableError(
              `secure memory is unavailable on ${process.platform}/${process.arch}: ${(err as Error).message}; ` +
                'it needs Linux (glibc or musl) or macOS on x64 or arm64 (see docs/memlock.md)',
              { cause: err },
            );
    }
  }
  if (cached instanceof Error) throw cached;
  return cached;
}

function bind(): NativeMemory {
  const platform = process.platform;
  if (platform !== 'linux' && platform !== 'darwin') {
    throw new NativeUnavailableError(
      `secure memory is unavailable on ${platform}: locked pages need mmap/mlock/mprotect, which this library ` +
        'binds on Linux and macOS only; run on Linux (e.g. AWS Lambda, a container) or macOS (see docs/memlock.md)',
    );
  }
  const c = platform === 'linux' ? LINUX : DARWIN;
  // koffi is loaded lazily so that merely importing the library never fails where it has no binary.
  const koffi = createRequire(__filename)('koffi') as typeof import('koffi');
  const lib = openLibc(koffi, platform);

  const fn = (signature: string) => {
    try {
      return lib.func(signature);
    } catch (err) {
      throw new NativeUnavailableError(
        `the C library lacks a function secure memory needs (${signature}); use glibc 2.25+, musl or macOS`,
        { cause: err },
      );
    }
  };
  const mmap = fn('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)');
  const munmap = fn('int munmap(void *addr, size_t length)');
  const mprotect = fn('int mprotect(void *addr, size_t length, int prot)');
  const mlock = fn('int mlock(void *addr, size_t length)');
  const munlock = fn('int munlock(void *addr, size_t length)');
  const madvise = fn('int madvise(void *addr, size_t length, int advice)');
  const getrlimit = fn('int getrlimit(int resource, void *rlim)');
  const setrlimit = fn('int setrlimit(int resource, void *rlim)');
  const getpagesize = fn('int getpagesize()');
  const zeroFn =
    platform === 'linux'
      ? fn('void explicit_bzero(void *s, size_t n)')
      : fn('int memset_s(void *s, size_t smax, int c, size_t n)');

  const transfer = detacher();
  const errnoName = (e: number) => c.errnoNames[e] ?? `errno ${e}`;
  const check = (result: number, what: string) => {
    if (result !== 0) {
      const e = koffi.errno();
      throw new SecureMemoryError(`${what} failed (${errnoName(e)})`);
    }
  };
  const readRlimit = (resource: number): Rlimit => {
    const buf = Buffer.alloc(16);
    check(getrlimit(resource, buf), 'getrlimit');
    const toValue = (v: bigint): RlimitValue => (v === c.RLIM_INFINITY ? 'unlimited' : Number(v));
    return { soft: toValue(buf.readBigUInt64LE(0)), hard: toValue(buf.readBigUInt64LE(8)) };
  };

  return {
    platform,
    pageSize: getpagesize(),
    canExcludeFromCoreDumps: c.MADV_DONTDUMP !== undefined,
    errnoNames: c.errnoNames,
    map(length) {
      const address = mmap(null, length, c.PROT_READ_WRITE, c.MAP_PRIVATE_ANONYMOUS, -1, 0) as bigint;
      if (address === MAP_FAILED || address === 0n) {
        throw new SecureMemoryError(`mmap of ${length} bytes failed (${errnoName(koffi.errno())})`);
      }
      return address;
    },
    unmap: (address, length) => check(munmap(address, length), 'munmap'),
    replaceWithZeros: (address, length) => {
      const fresh = mmap(address, length, c.PROT_READ_WRITE, c.MAP_PRIVATE_ANONYMOUS | c.MAP_FIXED, -1, 0) as bigint;
      if (fresh !== address) throw new SecureMemoryError(`mmap(MAP_FIXED) failed (${errnoName(koffi.errno())})`);
    },
    protectNone: (address, length) => check(mprotect(address, length, c.PROT_NONE), 'mprotect(PROT_NONE)'),
    protectReadWrite: (address, length) =>
      check(mprotect(address, length, c.PROT_READ_WRITE), 'mprotect(PROT_READ|PROT_WRITE)'),
    lock: (address, length) => (mlock(address, length) === 0 ? 0 : koffi.errno() || -1),
    unlock: (address, length) => check(munlock(address, length), 'munlock'),
    excludeFromCoreDumps: (address, length) =>
      c.MADV_DONTDUMP !== undefined && madvise(address, length, c.MADV_DONTDUMP) === 0,
    zero: (address, length) => {
      if (platform === 'linux') zeroFn(address, length);
      else check(zeroFn(address, length, 0, length), 'memset_s');
    },
    view: (address, length) => koffi.view(address, length),
    detach: (buffer) => {
      if (transfer === undefined) return false;
      // Already detached (moved by a transfer elsewhere): transfer would throw, and there is nothing to do.
      if (buffer.byteLength === 0) return true;
      transfer.call(buffer, 0);
      return true;
    },
    memlockLimit: () => readRlimit(c.RLIMIT_MEMLOCK),
    coreLimit: () => readRlimit(c.RLIMIT_CORE),
    disableCoreDumps: () => check(setrlimit(c.RLIMIT_CORE, Buffer.alloc(16)), 'setrlimit(RLIMIT_CORE, 0)'),
  };
}

type Transfer = (this: ArrayBuffer, newLength: number) => ArrayBuffer;

/**
 * ArrayBuffer.prototype.transfer (Node 21+): it detaches a buffer, even one over native memory, and with a new
 * length of 0 it copies nothing, so it never touches a PROT_NONE page. Node 20's V8 has it behind a flag only: the
 * flag is set just long enough to make one vm context, whose builtin works on this realm's buffers too (it checks
 * only that its receiver is an ArrayBuffer). structuredClone and postMessage cannot detach koffi's buffers: Node
 * marks external buffers untransferable and copies them instead (Node 20), reading the memory, or refuses (22).
 */
function detacher(): Transfer | undefined {
  const own = (ArrayBuffer.prototype as { transfer?: Transfer }).transfer;
  if (typeof own === 'function') return own;
  // The flag is process-wide: another thread doing the same may turn it off in between, so try more than once.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      setFlagsFromString('--harmony-rab-gsab-transfer');
      const borrowed = runInNewContext('ArrayBuffer.prototype.transfer') as Transfer | undefined;
      if (typeof borrowed === 'function') return borrowed;
    } catch {
      return undefined;
    } finally {
      setFlagsFromString('--no-harmony-rab-gsab-transfer');
    }
  }
  return undefined;
}

function openLibc(koffi: typeof import('koffi'), platform: 'linux' | 'darwin') {
  const arch = process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch;
  const candidates =
    platform === 'darwin' ? ['/usr/lib/libSystem.B.dylib'] : ['libc.so.6', `libc.musl-${arch}.so.1`, 'libc.so'];
  const failures: string[] = [];
  for (const name of candidates) {
    try {
      return koffi.load(name);
    } catch (err) {
      failures.push(`${name}: ${(err as Error).message}`);
    }
  }
  throw new NativeUnavailableError(
    `no usable C library found for secure memory (${failures.join('; ')}); use glibc, musl or macOS`,
  );
}
