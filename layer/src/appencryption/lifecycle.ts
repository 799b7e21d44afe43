/**
 * Open → closing → closed, with a count of the operations in flight, so that a factory's close() can let started
 * operations finish (up to a timeout) before it wipes the keys, refuse new ones meanwhile, and make whatever is
 * still running when the keys are wiped fail with one ClosedError instead of an error from deep inside.
 */
import { ClosedError } from './errors.js';

export const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;

export class Lifecycle {
  private state: 'open' | 'closing' | 'closed' = 'open';
  private inFlight = 0;
  private onIdle: (() => void) | undefined;
  /** The operations waiting on I/O, failed at once by markClosed(). */
  private readonly onClose = new Set<() => void>();

  /** `closedMessage` says what was closed and what to do, e.g. "the SessionFactory was closed; …". */
  constructor(private readonly closedMessage: string) {}

  get isOpen(): boolean {
    return this.state === 'open';
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** No operation in flight. */
  get isIdle(): boolean {
    return this.inFlight === 0;
  }

  /** Starts an operation; refused once close() has begun. Pair with end() in a finally. */
  begin(): void {
    if (this.state !== 'open') throw this.error();
    this.inFlight++;
  }

  end(): void {
    if (--this.inFlight === 0) this.onIdle?.();
  }

  /** Throws ClosedError once closed: operations check this after each await, before they go on. */
  checkNotClosed(): void {
    if (this.state === 'closed') throw this.error();
  }

  /** What an operation that failed throws: its own error, or ClosedError if it failed because of the close. */
  failure(err: unknown): unknown {
    return this.state === 'closed' && !(err instanceof ClosedError) ? this.error(err) : err;
  }

  /** Refuses new operations and waits until the started ones end, or `timeoutMs` passes. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.state === 'open') this.state = 'closing';
    if (this.inFlight === 0 || timeoutMs <= 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.onIdle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.onIdle = undefined;
  }

  markClosed(): void {
    this.state = 'closed';
    for (const fail of [...this.onClose]) fail();
    this.onClose.clear();
  }

  /**
   * `io` (a metastore or KMS call), or ClosedError as soon as the factory is closed, whichever comes first. What
   * `io` yields after losing the race goes to `discard` (a Secret to close), its failure nowhere.
   */
  race<T>(io: Promise<T>, discard?: (late: T) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let lost = false;
      const fail = () => {
        lost = true;
        reject(this.error());
      };
      if (this.state === 'closed') fail();
      else this.onClose.add(fail);
      io.then(
        (value) => {
          this.onClose.delete(fail);
          if (lost) discard?.(value);
          else resolve(value);
        },
        (err: unknown) => {
          this.onClose.delete(fail);
          if (!lost) reject(err);
        },
      );
    });
  }

  error(cause?: unknown): ClosedError {
    return new ClosedError(this.closedMessage, cause === undefined ? undefined : { cause });
  }
}
