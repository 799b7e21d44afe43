/**
 * When keys expire, how long cached keys are trusted, how SK/IK Created is rounded, and the cache sizes
 * (docs/wire-format.md §5.1). Durations are in seconds, as in the Rust binding (canonical asherah-node reads
 * nanoseconds: docs/compatibility.md).
 */
import { ConfigError } from '../../errors.js';

export interface CryptoPolicyOptions {
  /** SK/IK lifetime for new writes; expired keys still decrypt. Default 90 days. */
  expireAfterSeconds?: number;
  /** How long a cached key is trusted before it is re-read to notice a revocation. Default 3600. */
  checkIntervalSeconds?: number;
  /** SK/IK Created is truncated to this; default 60 (one key per minute at most). */
  createDatePrecisionSeconds?: number;
  cacheSystemKeys?: boolean;
  cacheIntermediateKeys?: boolean;
  /** Default 1000. */
  systemKeyCacheMaxSize?: number;
  /**
   * Default 10,000. Past the locked budget (about 1,000 keys in Lambda's 64 KiB) cached keys are sealed, costing
   * about 600 bytes of heap each and no locked memory, and an unseal is far cheaper than the metastore read an
   * eviction costs: `npm run soak` (docs/cold-start-caching.md) measured the sizes.
   */
  intermediateKeyCacheMaxSize?: number;
  /** Reuse sessions per partition (EnableSessionCaching). Default false. */
  sessionCaching?: boolean;
  sessionCacheMaxSize?: number;
  sessionCacheDurationSeconds?: number;
}

const DEFAULT_EXPIRE_AFTER_SECONDS = 90 * 24 * 3600;
const DEFAULT_CHECK_INTERVAL_SECONDS = 3600;
const DEFAULT_INTERMEDIATE_KEY_CACHE_SIZE = 10_000;

export class CryptoPolicy {
  readonly expireAfterSeconds: number;
  readonly checkIntervalSeconds: number;
  readonly createDatePrecisionSeconds: number;
  readonly cacheSystemKeys: boolean;
  readonly cacheIntermediateKeys: boolean;
  readonly systemKeyCacheMaxSize: number;
  readonly intermediateKeyCacheMaxSize: number;
  readonly sessionCaching: boolean;
  readonly sessionCacheMaxSize: number;
  readonly sessionCacheDurationSeconds: number;

  constructor(options: CryptoPolicyOptions = {}) {
    // Whole seconds: SK and IK Created are integers on the wire, and they are truncated to min(precision, expiry).
    this.expireAfterSeconds = wholeSeconds(options.expireAfterSeconds, DEFAULT_EXPIRE_AFTER_SECONDS, 'expireAfterSeconds');
    this.checkIntervalSeconds = positive(options.checkIntervalSeconds, DEFAULT_CHECK_INTERVAL_SECONDS, 'checkIntervalSeconds');
    // As the Rust binding does: an expiry shorter than the precision would make a key expire within the minute
    // it was made, which no replacement can fix until the next minute (docs/wire-format.md §1.4).
    this.createDatePrecisionSeconds = Math.min(
      wholeSeconds(options.createDatePrecisionSeconds, 60, 'createDatePrecisionSeconds'),
      this.expireAfterSeconds,
    );
    this.cacheSystemKeys = options.cacheSystemKeys ?? true;
    this.cacheIntermediateKeys = options.cacheIntermediateKeys ?? true;
    this.systemKeyCacheMaxSize = wholeNumber(options.systemKeyCacheMaxSize, 1000, 'systemKeyCacheMaxSize');
    this.intermediateKeyCacheMaxSize = wholeNumber(
      options.intermediateKeyCacheMaxSize,
      DEFAULT_INTERMEDIATE_KEY_CACHE_SIZE,
      'intermediateKeyCacheMaxSize',
    );
    this.sessionCaching = options.sessionCaching ?? false;
    this.sessionCacheMaxSize = wholeNumber(options.sessionCacheMaxSize, 1000, 'sessionCacheMaxSize');
    this.sessionCacheDurationSeconds = positive(options.sessionCacheDurationSeconds, 7200, 'sessionCacheDurationSeconds');
  }

  /** Go `IsKeyExpired`: now is after created + expireAfter. */
  isExpired(createdSeconds: number, nowMs: number): boolean {
    return nowMs > (createdSeconds + this.expireAfterSeconds) * 1000;
  }

  /** Created for a new SK or IK: now truncated to the precision (docs/wire-format.md §1.3). */
  newKeyTimestamp(nowMs: number): number {
    const seconds = Math.floor(nowMs / 1000);
    return seconds - (seconds % this.createDatePrecisionSeconds);
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(`${name} must be a positive number, got ${describe(value)}`);
  }
  return value;
}

function wholeSeconds(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new ConfigError(`${name} must be a whole number of seconds, at least 1, got ${describe(value)}`);
  }
  return value;
}

function wholeNumber(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new ConfigError(`${name} must be a positive integer, got ${describe(value)}`);
  }
  return value;
}

function describe(value: unknown): string {
  return typeof value === 'number' ? String(value) : typeof value;
}
