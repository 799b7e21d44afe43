import { SecureMemoryError } from './errors.js';
import type { Allocation, SecretArena } from './secret-arena.js';

/**
 * Bytes held in secure memory. Read them only inside `withBytes`; close the secret when done (closing zeroes it).
 * Any use after `close()` is a SecureMemoryError, never a crash.
 */
export class Secret {
  private state: 'open' | 'closing' | 'closed' = 'open';

  /** @internal Created by SecretFactory. */
  constructor(
    private readonly arena: SecretArena,
    private readonly allocation: Allocation,
    private readonly onClose: (secret: Secret) => void,
  ) {}

  get length(): number {
    return this.allocation.length;
  }

  get isClosed(): boolean {
    return this.state !== 'open';
  }

  /**
   * Calls `fn` with a zero-copy view of the secret's locked memory and returns what it returns. The view is
   * valid only during the call: do not keep it, copy it into a Buffer, or use it after `fn` returns (the page is
   * made inaccessible again, and touching it then ends the process). Treat the bytes as read-only.
   * `fn` must be synchronous.
   */
  withBytes<T>(fn: (bytes: Uint8Array) => T): T {
    if (this.state !== 'open') throw closedError();
    const allocation = this.allocation;
    const bytes = this.arena.access(allocation);
    allocation.pins++;
    try {
      const result = fn(bytes);
      if (isThenable(result)) {
        throw new SecureMemoryError(
          'withBytes callbacks must be synchronous: the bytes are not readable after the callback returns; ' +
            'do the async work outside and pass withBytes only the synchronous part',
        );
      }
      return result;
    } finally {
      allocation.pins--;
      if (allocation.pins === 0) this.releaseIfClosing();
    }
  }

  /** Zeroes and frees the secret. Idempotent. Inside its own withBytes, it takes effect when that call returns. */
  close(): void {
    if (this.state !== 'open') return;
    if (this.allocation.pins > 0) {
      this.state = 'closing';
      return;
    }
    this.release();
  }

  private releaseIfClosing(): void {
    if (this.state === 'closing') this.release();
  }

  private release(): void {
    this.state = 'closed';
    this.onClose(this);
    this.arena.free(this.allocation);
  }
}

function closedError(): SecureMemoryError {
  return new SecureMemoryError('the secret is closed; its bytes were zeroed and can no longer be read');
}

function isThenable(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
