import { inspect } from 'node:util';
import type { Allocation } from './allocation.js';
import { SecureMemoryError } from './errors.js';
import type { SecretArena } from './secret-arena.js';

/** Reads the private field for allocationOf(); set by the class's static block, the only code that can. */
let readAllocation: (secret: Secret) => Allocation;

/** Runs a read for the library's own crypto calls; set by the class's static block. */
let readForCrypto: <T>(secret: Secret, fn: (bytes: Uint8Array) => T) => T;

/** @internal For tests: the allocation behind a secret (the public API never reaches it). */
export function allocationOf(secret: Secret): Allocation {
  return readAllocation(secret);
}

/**
 * @internal For the library's own AES calls (aead.ts), never re-exported: withBytes without the per-secret view.
 * `fn` gets a subarray of the page's own view, made without a native call (a view costs about 1 µs and GC work,
 * per DRK per record). Its buffer spans the whole page, so it must go straight to node:crypto, which copies the
 * key into the cipher, and never be kept or reach user code; `fn` must be synchronous.
 */
export function withKeyBytes<T>(secret: Secret, fn: (bytes: Uint8Array) => T): T {
  return readForCrypto(secret, fn);
}

/**
 * Bytes held in secure memory. Read them only inside `withBytes`; close the secret when done (closing zeroes it).
 * Any use after `close()` is a SecureMemoryError, never a crash. Printing, serialising or cloning a Secret shows
 * its length and state only: its arena and bytes are in private fields.
 */
export class Secret {
  /** @internal Position in the owning factory's list of open secrets. */
  liveIndex = -1;
  readonly #arena: SecretArena;
  readonly #allocation: Allocation;
  readonly #onClose: (secret: Secret) => void;
  /** protect: 'per-access': the page is made PROT_NONE again as soon as the last read returns. */
  readonly #perAccess: boolean;
  /** No new use allowed. */
  #closed = false;
  /** close() was called inside withBytes: release when the last callback returns. */
  #releasePending = false;

  static {
    readAllocation = (secret) => secret.#allocation;
    readForCrypto = (secret, fn) => secret.#read(fn, true);
  }

  /** @internal Created by SecretFactory. */
  constructor(arena: SecretArena, allocation: Allocation, onClose: (secret: Secret) => void, perAccess = false) {
    this.#arena = arena;
    this.#allocation = allocation;
    this.#onClose = onClose;
    this.#perAccess = perAccess;
  }

  get length(): number {
    return this.#allocation.length;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Calls `fn` with a zero-copy view of the secret's locked memory and returns what it returns. The view covers
   * this secret's bytes only and is valid only during the call: do not keep it, copy it into a Buffer, or use it
   * after `fn` returns. It is detached (zero-length) as the call returns; if `fn` transferred its ArrayBuffer
   * away, the page is relocated and the moved buffer reads zeros. Treat the bytes as read-only. `fn` must be
   * synchronous: async and generator functions are refused.
   */
  withBytes<T>(fn: (bytes: Uint8Array) => T): T {
    if (this.#closed) throw closedError();
    // Before the call: once started, an async body would go on reading the page after withBytes returned.
    if (typeof fn !== 'function' || isDeferred(fn)) throw synchronousOnly();
    const result = this.#read(fn, false);
    if (typeof result === 'object' && result !== null && typeof (result as { then?: unknown }).then === 'function') {
      throw synchronousOnly();
    }
    return result;
  }

  /** Pins the secret's page open around `fn`; `internal`: pass a subarray of the page, not a view of its own. */
  #read<T>(fn: (bytes: Uint8Array) => T, internal: boolean): T {
    if (this.#closed) throw closedError();
    const allocation = this.#allocation;
    const arena = this.#arena;
    const bytes = internal ? arena.accessForCrypto(allocation) : arena.access(allocation);
    allocation.referenced = true;
    allocation.pins++;
    arena.reads++;
    try {
      return fn(bytes);
    } finally {
      arena.reads--;
      try {
        // Before any release: the view must be detached (or its page relocated) while the bytes are still there.
        if (!internal) arena.giveBack(allocation, bytes);
      } finally {
        if (--allocation.pins === 0 && this.#releasePending) this.#release();
        if (this.#perAccess) arena.settle();
      }
    }
  }

  /** Zeroes and frees the secret. Idempotent. Inside its own withBytes, it takes effect when that call returns. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#allocation.pins > 0) this.#releasePending = true;
    else {
      this.#release();
      if (this.#perAccess) this.#arena.settle();
    }
  }

  /** A summary with no byte of the secret, for logs. */
  toJSON(): { length: number; closed: boolean } {
    return { length: this.length, closed: this.#closed };
  }

  [inspect.custom](): string {
    return `Secret { length: ${this.length}, closed: ${this.#closed} }`;
  }

  #release(): void {
    this.#releasePending = false;
    try {
      this.#arena.free(this.#allocation);
    } finally {
      // Last: the factory may let go of the arena (and shut it down) once its last secret is gone.
      this.#onClose(this);
    }
  }
}

const DEFERRED = new Set(['AsyncFunction', 'AsyncGeneratorFunction', 'GeneratorFunction']);

/** Async and generator functions run (part of) their body later, when the page may be closed. */
function isDeferred(fn: unknown): boolean {
  const tag = (fn as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag];
  return tag !== undefined && DEFERRED.has(tag as string);
}

function synchronousOnly(): SecureMemoryError {
  return new SecureMemoryError(
    'withBytes takes a synchronous function (not async, not a generator, returning no promise): the bytes are ' +
      'not readable after it returns; do the async work outside and pass withBytes only the synchronous part',
  );
}

function closedError(): SecureMemoryError {
  return new SecureMemoryError('the secret is closed; its bytes were zeroed and can no longer be read');
}
