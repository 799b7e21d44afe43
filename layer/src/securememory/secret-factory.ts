import { inspect } from 'node:util';
import { ConfigError } from '../errors.js';
import { SecureMemoryError } from './errors.js';
import { holdProcessArena, letGoOfProcessArena } from './process-arena.js';
import { Secret } from './secret.js';
import type { ArenaStats, SecretArena } from './secret-arena.js';
import type { MlockMode, SecureMemoryLogger } from './types.js';

export interface SecretFactoryOptions {
  /**
   * 'strict' (default): secrets live only in locked pages; if this process may lock no memory at all, creating
   * a secret throws MemlockLimitError. 'best-effort': if nothing can be locked, carry on with unlocked pages
   * (still excluded from core dumps, PROT_NONE while idle, zeroed on release) and say so loudly.
   */
  mlock?: MlockMode;
  /** Disable core dumps process-wide on first use (default true). Applies when the process's arena is made. */
  disableCoreDumps?: boolean;
  /** Cap on locked bytes for the process's arena (see ArenaOptions.maxLockedBytes). Applies when it is made. */
  maxLockedBytes?: number;
  logger?: SecureMemoryLogger;
  /** @internal Use this arena instead of the process-wide one (tests and benchmarks; SecretArena is not exported). */
  arena?: SecretArena;
  /**
   * When key pages go back to PROT_NONE. 'per-turn' (default): at the end of the event-loop turn in which a secret
   * in them was used, so a turn that uses keys pays one mprotect pair per page, not per access (each pair costs
   * some 7 µs here, more than the AES work it guards). 'per-access': as soon as the last withBytes returns, and after
   * each create and close, at that cost. Pages are PROT_NONE whenever the process is idle either way.
   */
  protect?: 'per-turn' | 'per-access';
}

export interface SecretFactoryStats extends ArenaStats {
  mlockMode: MlockMode;
  /** Secrets made by this factory and not yet closed. */
  factorySecretsInUse: number;
}

/**
 * Makes Secrets. Cheap to create; `close()` zeroes every secret it made that is still open. Factories share the
 * thread's arena (process-arena.ts), which is shut down and its pages given back once every factory that used it
 * has closed; a factory used after that gets a new one.
 */
export class SecretFactory {
  readonly mlockMode: MlockMode;
  readonly #options: SecretFactoryOptions;
  readonly #strict: boolean;
  readonly #perAccess: boolean;
  /** Open secrets, for close(); an array with swap-removal is cheaper than a Set on the per-record path. */
  readonly #live: Secret[] = [];
  /** The shared arena this factory holds (used and not yet let go of), if any. */
  #held: SecretArena | undefined;
  #closed = false;

  constructor(options: SecretFactoryOptions = {}) {
    const mode = options.mlock ?? 'strict';
    if (mode !== 'strict' && mode !== 'best-effort') {
      throw new ConfigError(`mlock must be "strict" or "best-effort", got ${JSON.stringify(mode)}`);
    }
    const max = options.maxLockedBytes;
    if (max !== undefined && !(Number.isInteger(max) && max >= 4096)) {
      throw new ConfigError(`maxLockedBytes must be an integer of at least 4096 (one page), got ${String(max)}`);
    }
    const protect = options.protect ?? 'per-turn';
    if (protect !== 'per-turn' && protect !== 'per-access') {
      throw new ConfigError(`protect must be "per-turn" or "per-access", got ${JSON.stringify(protect)}`);
    }
    this.mlockMode = mode;
    this.#options = options;
    this.#strict = mode === 'strict';
    this.#perAccess = protect === 'per-access';
  }

  /** A secret of `length` random bytes, generated straight into locked memory. */
  createRandom(length: number): Secret {
    checkLength(length);
    const arena = this.#arena();
    const allocation = arena.allocate(length, this.#strict);
    arena.fillRandom(allocation);
    return this.#track(new Secret(arena, allocation, this.#untrack, this.#perAccess));
  }

  /** A secret holding a copy of `bytes`; the source is zeroed (wiped) once copied. */
  createFrom(bytes: Uint8Array): Secret {
    if (!(bytes instanceof Uint8Array)) {
      throw new SecureMemoryError('createFrom takes a Uint8Array or Buffer holding the secret bytes');
    }
    checkLength(bytes.length);
    const arena = this.#arena();
    const allocation = arena.allocate(bytes.length, this.#strict);
    arena.write(allocation, bytes);
    bytes.fill(0);
    return this.#track(new Secret(arena, allocation, this.#untrack, this.#perAccess));
  }

  stats(): SecretFactoryStats {
    return { ...this.#arena().stats(), mlockMode: this.mlockMode, factorySecretsInUse: this.#live.length };
  }

  /**
   * Zeroes every secret this factory made that is still open. The factory cannot be used afterwards. If it was
   * the last open factory of the shared arena, every page is zeroed, unlocked and unmapped (once any secret
   * closed inside its own withBytes is released).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const secret of this.#live.slice()) secret.close();
    if (this.#live.length === 0) this.#letGo();
  }

  /** A summary with no address or byte of any secret, for logs. */
  toJSON(): { mlock: MlockMode; secretsInUse: number; closed: boolean } {
    return { mlock: this.mlockMode, secretsInUse: this.#live.length, closed: this.#closed };
  }

  [inspect.custom](): string {
    return `SecretFactory ${inspect(this.toJSON())}`;
  }

  /** The arena is found on first use, so that merely building a factory touches no native code. */
  #arena(): SecretArena {
    if (this.#closed) throw new SecureMemoryError('the SecretFactory is closed; create a new one');
    const own = this.#options.arena;
    if (own !== undefined) return own;
    const held = this.#held;
    if (held !== undefined && !held.isShutDown) return held;
    this.#held = holdProcessArena({
      disableCoreDumps: this.#options.disableCoreDumps,
      maxLockedBytes: this.#options.maxLockedBytes,
      logger: this.#options.logger,
    });
    return this.#held;
  }

  #letGo(): void {
    const held = this.#held;
    this.#held = undefined;
    if (held !== undefined) letGoOfProcessArena(held);
  }

  #track(secret: Secret): Secret {
    secret.liveIndex = this.#live.length;
    this.#live.push(secret);
    if (this.#perAccess) this.#arena().settle();
    return secret;
  }

  readonly #untrack = (secret: Secret): void => {
    const live = this.#live;
    const last = live.pop()!;
    if (last !== secret) {
      live[secret.liveIndex] = last;
      last.liveIndex = secret.liveIndex;
    }
    // The last secret of a closed factory, released when its withBytes returned.
    if (this.#closed && live.length === 0) this.#letGo();
  };
}

function checkLength(length: number): void {
  if (!Number.isInteger(length) || length < 1 || length > 1024 * 1024) {
    throw new SecureMemoryError(`a secret's length must be an integer from 1 to 1048576 bytes, got ${String(length)}`);
  }
}
