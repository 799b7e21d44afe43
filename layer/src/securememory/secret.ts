import { SecureMemoryError } from './errors.js';
import type { Allocation, SecretArena } from './secret-arena.js';

/**
 * Bytes held in secure memory. Read them only inside `withBytes`; close the secret when done (closing zeroes it).
 * Any use after `close()` is a SecureMemoryError, never a crash.
 */
export class Secret {
  /** No new use allowed. */
  private closed = false;
  /** close() was called inside withBytes: release when the last callback returns. */
  private releasePending = false;
  /** @internal Position in the owning factory's list of open secrets. */
  liveIndex = -1;

  /** @internal Created by SecretFactory. */
  constructor(
    private readonly arena: SecretArena,
    private readonly allocation: Allocation,
    private readonly onClose: (secret: Secret) => void,
    /** protect: 'per-access': the page is made PROT_NONE again as soon as the last read returns. */
    private readonly perAccess = false,
  ) {}

  get length(): number {
    return this.allocation.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Calls `fn` with a zero-copy view of the secret's locked memory and returns what it returns. The view is
   * valid only during the call: do not keep it, copy it into a Buffer, or use it after `fn` returns (the page is
   * made inaccessible again, and touching it then ends the process). Treat the bytes as read-only.
   * `fn` must be synchronous.
   */
  withBytes<T>(fn: (bytes: Uint8Array) => T): T {
    if (this.closed) throw closedError();
    const allocation = this.allocation;
    let bytes = allocation.view;
    // Fast path (the per-record case): resident, and its page already open in this turn.
    if (bytes === null || !allocation.region!.isOpen) bytes = this.arena.access(allocation);
    allocation.referenced = true;
    allocation.pins++;
    const arena = this.arena;
    arena.reads++;
    let result: T;
    try {
      result = fn(bytes);
    } finally {
      arena.reads--;
      if (--allocation.pins === 0 && this.releasePending) this.release();
      if (this.perAccess) arena.settle();
    }
    if (typeof result === 'object' && result !== null && typeof (result as { then?: unknown }).then === 'function') {
      throw new SecureMemoryError(
        'withBytes callbacks must be synchronous: the bytes are not readable after the callback returns; ' +
          'do the async work outside and pass withBytes only the synchronous part',
      );
    }
    return result;
  }

  /** Zeroes and frees the secret. Idempotent. Inside its own withBytes, it takes effect when that call returns. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.allocation.pins > 0) this.releasePending = true;
    else {
      this.release();
      if (this.perAccess) this.arena.settle();
    }
  }

  private release(): void {
    this.releasePending = false;
    this.onClose(this);
    this.arena.free(this.allocation);
  }
}

function closedError(): SecureMemoryError {
  return new SecureMemoryError('the secret is closed; its bytes were zeroed and can no longer be read');
}
