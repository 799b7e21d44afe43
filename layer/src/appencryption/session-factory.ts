/**
 * The entry point of the SDK: one per service and product, at module scope in a Lambda function so that its key
 * caches survive across invocations. `getSession(partition)` does no I/O; keys load lazily on first use, or
 * ahead of time with `prewarm` (e.g. during Lambda INIT).
 */
import { ConfigError } from '../errors.js';
import { SecretFactory, type SecretFactoryStats } from '../securememory/secret-factory.js';
import { composeFromConfig, composeFromEnv, type Composed, type FromConfigOptions, type FromEnvOptions } from './config/compose.js';
import type { AsherahConfig } from './config/config.js';
import { CryptoPolicy } from './config/crypto-policy.js';
import type { EnvMap } from './config/env-config.js';
import { KeyManager, type Partition } from './key-manager.js';
import { DEFAULT_CLOSE_TIMEOUT_MS, Lifecycle } from './lifecycle.js';
import { Metrics, type MetricsSnapshot } from './metrics.js';
import { systemClock, type Clock, type KeyManagementService, type Metastore } from './ports.js';
import { redactWith } from './redact.js';
import { Session } from './session.js';
import type { SessionFactoryConfig } from './session-factory-config.js';

export type { SessionFactoryConfig } from './session-factory-config.js';

export interface FactoryMetrics extends MetricsSnapshot {
  /** Secrets (SKs, IKs, in-flight DRKs) open now in this factory's secure memory. */
  secretsInUse: number;
  secureMemory: SecretFactoryStats;
}

export interface CloseOptions {
  /**
   * How long close() waits for operations already started (encrypt, decrypt, prewarm) to finish before it wipes
   * the keys; what is still running then fails with ClosedError. Default 5000 ms; 0 wipes at once.
   */
  timeoutMs?: number;
}

interface CachedPartition {
  partition: Partition;
  expiresAt: number;
}

export class SessionFactory {
  // Private (#): a logger or serializer that walks the factory must not reach its keys (see redact.ts).
  readonly #keys: KeyManager;
  readonly #secrets: SecretFactory;
  readonly #ownsSecrets: boolean;
  readonly #policy: CryptoPolicy;
  readonly #clock: Clock;
  readonly #kms: KeyManagementService;
  readonly #metastore: Metastore;
  readonly #sessionCache = new Map<string, CachedPartition>();
  readonly #lifecycle = new Lifecycle(
    'the SessionFactory was closed (close(), shutdown() or shutdownAsync()) and its keys were wiped; create a new ' +
      'SessionFactory (or call setup() again) to encrypt or decrypt',
  );
  #closing: Promise<void> | undefined;
  /** Closes what a builder (fromConfig, fromEnv) made for this factory; nothing for `create`. */
  readonly #closeBuilt: () => void;

  private constructor(config: SessionFactoryConfig, closeBuilt: () => void = () => undefined) {
    if (config === null || typeof config !== 'object') throw new ConfigError('SessionFactory.create takes a config object');
    for (const key of ['metastore', 'kms'] as const) {
      if (config[key] === undefined || config[key] === null) throw new ConfigError(`${key} is required`);
    }
    this.#policy = config.policy instanceof CryptoPolicy ? config.policy : new CryptoPolicy(config.policy);
    this.#clock = config.clock ?? systemClock;
    this.#ownsSecrets = !(config.secrets instanceof SecretFactory);
    this.#secrets = config.secrets instanceof SecretFactory ? config.secrets : new SecretFactory(config.secrets);
    this.#kms = config.kms;
    this.#metastore = config.metastore;
    this.#closeBuilt = closeBuilt;
    this.#keys = new KeyManager({
      serviceName: config.serviceName,
      productId: config.productId,
      metastore: config.metastore,
      kms: config.kms,
      policy: this.#policy,
      secrets: this.#secrets,
      metrics: new Metrics(config.metrics),
      clock: this.#clock,
      lifecycle: this.#lifecycle,
      legacyKeyIdNames: config.legacyKeyIdNames,
    });
  }

  static create(config: SessionFactoryConfig): SessionFactory {
    return new SessionFactory(config);
  }

  /**
   * A factory built from an AsherahConfig (setup()'s PascalCase keys, or their JSON text), with the metastore, KMS
   * and AWS SDK clients it names (compose.ts, docs/api.md). Its close() also closes everything made here; clients
   * and a SecretFactory passed in `options` stay yours.
   */
  static fromConfig(config: AsherahConfig | string, options?: FromConfigOptions): SessionFactory {
    return SessionFactory.built(composeFromConfig(config, options));
  }

  /**
   * A factory built from the ASHERAH_* variables (ENV_NAMES) with the sample function's defaults and Lambda rules
   * (env-config.ts), through the same code as fromConfig; close() as there. Writes no file unless
   * `options.developmentDir` is given.
   */
  static fromEnv(env: EnvMap = process.env, options?: FromEnvOptions): SessionFactory {
    return SessionFactory.built(composeFromEnv(env, options));
  }

  private static built(parts: Composed): SessionFactory {
    try {
      return new SessionFactory(parts.config, parts.close);
    } catch (err) {
      try {
        parts.close();
      } catch {
        // the construction error says more
      }
      throw err;
    }
  }

  /** A session for one partition (user, account). No I/O. */
  getSession(partitionId: string): Session {
    this.checkOpen();
    return new Session(this.#keys, this.partitionOf(partitionId));
  }

  /**
   * Loads (or creates, as the first encrypt would) the SK and the latest IK of each partition, so that the first
   * records pay no KMS or metastore round trip. Meant for Lambda INIT.
   */
  async prewarm(partitionIds: readonly string[]): Promise<void> {
    this.checkOpen();
    const life = this.#lifecycle;
    life.begin();
    try {
      await Promise.all(
        partitionIds.map(async (id) => {
          const key = await this.#keys.latestIntermediateKey(this.partitionOf(id));
          key.release();
        }),
      );
    } catch (err) {
      throw life.failure(err);
    } finally {
      life.end();
    }
  }

  metrics(): FactoryMetrics {
    const secureMemory = this.#secrets.stats();
    return { ...this.#keys.metrics.snapshot(), secretsInUse: secureMemory.factorySecretsInUse, secureMemory };
  }

  /**
   * Closes the factory and every session it made. New operations fail with ClosedError at once; operations already
   * started finish (for up to `timeoutMs`), then every key this factory holds is wiped, and what is still running
   * fails with ClosedError. Closes what the factory made (its SecretFactory); the KMS and metastore given to
   * `create` stay the caller's, while a factory from fromConfig or fromEnv also closes the adapters, SDK clients
   * and SecretFactory made for it. With `timeoutMs: 0` (or nothing in flight) all that is done before close()
   * returns its promise.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    const timeoutMs = options.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    if (!(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
      throw new ConfigError(`close() timeoutMs must be a non-negative number of milliseconds, got ${String(timeoutMs)}`);
    }
    const drained = this.#lifecycle.drain(timeoutMs); // refuses new operations from here on
    if (this.#lifecycle.isIdle || timeoutMs === 0) {
      this.wipe();
      this.#closing = Promise.resolve();
    } else {
      this.#closing = drained.then(() => this.wipe());
    }
    return this.#closing;
  }

  private wipe(): void {
    this.#lifecycle.markClosed();
    this.#sessionCache.clear();
    try {
      this.#keys.close();
      if (this.#ownsSecrets) this.#secrets.close();
    } finally {
      this.#closeBuilt(); // after the keys, when nothing still running can need the adapters
    }
  }

  /** The KMS and metastore given to `create`, e.g. to close them after the factory. */
  get adapters(): { kms: KeyManagementService; metastore: Metastore } {
    return { kms: this.#kms, metastore: this.#metastore };
  }

  private partitionOf(partitionId: string): Partition {
    if (!this.#policy.sessionCaching) return this.#keys.partition(partitionId);
    // Session caching (EnableSessionCaching): sessions share the factory's key caches, so what a cached session
    // saves is its setup; each caller still gets its own Session, so closing one never affects another.
    const now = this.#clock.now();
    const cached = this.#sessionCache.get(partitionId);
    if (cached !== undefined && cached.expiresAt > now) return cached.partition;
    const partition = this.#keys.partition(partitionId);
    this.#sessionCache.delete(partitionId);
    if (this.#sessionCache.size >= this.#policy.sessionCacheMaxSize) {
      const oldest = this.#sessionCache.keys().next().value;
      if (oldest !== undefined) this.#sessionCache.delete(oldest);
    }
    this.#sessionCache.set(partitionId, { partition, expiresAt: now + this.#policy.sessionCacheDurationSeconds * 1000 });
    return partition;
  }

  /** Whether close() has begun. */
  get isClosed(): boolean {
    return this.#closing !== undefined;
  }

  private checkOpen(): void {
    if (!this.#lifecycle.isOpen) throw this.#lifecycle.error();
  }
}

redactWith(SessionFactory, (f) => ({ closed: f.isClosed }));
