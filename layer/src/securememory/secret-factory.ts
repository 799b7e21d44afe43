import { ConfigError } from '../errors.js';
import { SecureMemoryError } from './errors.js';
import { Secret } from './secret.js';
import { SecretArena, type ArenaOptions, type ArenaStats, type MlockMode, type SecureMemoryLogger } from './secret-arena.js';

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
  /** Use this arena instead of the process-wide one (tests, or a separate budget). */
  arena?: SecretArena;
}

export interface SecretFactoryStats extends ArenaStats {
  mlockMode: MlockMode;
  /** Secrets made by this factory and not yet closed. */
  factorySecretsInUse: number;
}

// RLIMIT_MEMLOCK is a per-process budget, so one allocator must own it for the whole process: every factory
// shares this arena unless given its own.
let sharedArena: SecretArena | undefined;

function processArena(options: ArenaOptions): SecretArena {
  if (sharedArena === undefined || sharedArena.isShutDown) sharedArena = new SecretArena(options);
  return sharedArena;
}

/** Makes Secrets. Cheap to create; `close()` zeroes every secret it made that is still open. */
export class SecretFactory {
  readonly mlockMode: MlockMode;
  private readonly strict: boolean;
  /** Open secrets, for close(); an array with swap-removal is cheaper than a Set on the per-record path. */
  private readonly live: Secret[] = [];
  private arenaRef: SecretArena | undefined;
  private closed = false;

  constructor(private readonly options: SecretFactoryOptions = {}) {
    const mode = options.mlock ?? 'strict';
    if (mode !== 'strict' && mode !== 'best-effort') {
      throw new ConfigError(`mlock must be "strict" or "best-effort", got ${JSON.stringify(mode)}`);
    }
    const max = options.maxLockedBytes;
    if (max !== undefined && !(Number.isInteger(max) && max >= 4096)) {
      throw new ConfigError(`maxLockedBytes must be an integer of at least 4096 (one page), got ${String(max)}`);
    }
    this.mlockMode = mode;
    this.strict = mode === 'strict';
    this.arenaRef = options.arena;
  }

  /** The arena is made on first use, so that merely building a factory touches no native code. */
  private get arena(): SecretArena {
    if (this.closed) throw new SecureMemoryError('the SecretFactory is closed; create a new one');
    if (this.arenaRef === undefined) {
      this.arenaRef = processArena({
        disableCoreDumps: this.options.disableCoreDumps,
        maxLockedBytes: this.options.maxLockedBytes,
        logger: this.options.logger,
      });
    }
    return this.arenaRef;
  }

  /** A secret of `length` random bytes, generated straight into locked memory. */
  createRandom(length: number): Secret {
    checkLength(length);
    const arena = this.arena;
    const allocation = arena.allocate(length, this.strict);
    arena.fillRandom(allocation);
    return this.track(new Secret(arena, allocation, this.untrack));
  }

  /** A secret holding a copy of `bytes`; the source is zeroed (wiped) once copied. */
  createFrom(bytes: Uint8Array): Secret {
    if (!(bytes instanceof Uint8Array)) {
      throw new SecureMemoryError('createFrom takes a Uint8Array or Buffer holding the secret bytes');
    }
    checkLength(bytes.length);
    const arena = this.arena;
    const allocation = arena.allocate(bytes.length, this.strict);
    allocation.view!.set(bytes);
    bytes.fill(0);
    return this.track(new Secret(arena, allocation, this.untrack));
  }

  stats(): SecretFactoryStats {
    return { ...this.arena.stats(), mlockMode: this.mlockMode, factorySecretsInUse: this.live.length };
  }

  /** Zeroes every secret this factory made that is still open. The factory cannot be used afterwards. */
  close(): void {
    if (this.closed) return;
    for (const secret of this.live.slice()) secret.close();
    this.closed = true;
  }

  private track(secret: Secret): Secret {
    secret.liveIndex = this.live.length;
    this.live.push(secret);
    return secret;
  }

  private readonly untrack = (secret: Secret): void => {
    const live = this.live;
    const last = live.pop()!;
    if (last !== secret) {
      live[secret.liveIndex] = last;
      last.liveIndex = secret.liveIndex;
    }
  };
}

function checkLength(length: number): void {
  if (!Number.isInteger(length) || length < 1 || length > 1024 * 1024) {
    throw new SecureMemoryError(`a secret's length must be an integer from 1 to 1048576 bytes, got ${String(length)}`);
  }
}
