import { AsherahError } from '../errors.js';

/** Locked memory could not be set up or used as promised (see docs/memlock.md and docs/troubleshooting.md). */
export class SecureMemoryError extends AsherahError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SecureMemoryError';
  }
}

/** The process may not lock the memory it needs (RLIMIT_MEMLOCK is too low and CAP_IPC_LOCK is absent). */
export class MemlockLimitError extends SecureMemoryError {
  constructor(
    readonly limitBytes: number | 'unlimited',
    readonly requestedBytes: number,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(
      `locking ${requestedBytes} bytes failed: ${detail} (RLIMIT_MEMLOCK soft limit: ${formatLimit(limitBytes)}); ` +
        'raise the limit (e.g. `ulimit -l 64` or more, LimitMEMLOCK= for systemd, --ulimit memlock for Docker, ' +
        'CAP_IPC_LOCK) or use mlock: "best-effort" to run with unlocked pages; see docs/memlock.md',
      options,
    );
    this.name = 'MemlockLimitError';
  }
}

/** The native calls that secure memory needs (mmap, mlock, mprotect, …) do not exist on this platform. */
export class NativeUnavailableError extends SecureMemoryError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'NativeUnavailableError';
  }
}

export function formatLimit(bytes: number | 'unlimited'): string {
  return bytes === 'unlimited' ? 'unlimited' : `${bytes} bytes`;
}
