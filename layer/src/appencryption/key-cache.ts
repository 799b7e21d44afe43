/**
 * A cache of SKs or IKs keyed by (id, created), with the latest key per id (docs/wire-format.md §5.2):
 * - an entry is trusted for `checkInterval` after it was loaded, then re-read to notice a revocation (revoked
 *   entries need no re-read: revocation is final);
 * - bounded: past `maxSize` the least recently used entry is retired (zeroed once no operation holds it); the
 *   entries Map is kept in use order (a hit moves its entry to the end), so finding that entry is O(1);
 * - single-flight: concurrent misses for one key share one load.
 * Hits are synchronous, so the per-record path awaits nothing when keys are warm.
 */
import type { Clock } from './ports.js';
import type { CryptoKey } from './crypto-key.js';
import type { CryptoPolicy } from './config/crypto-policy.js';
import type { Metrics } from './metrics.js';

interface Entry {
  readonly key: CryptoKey;
  readonly id: string;
  /** Its key in `entries`. */
  readonly slot: string;
  loadedAt: number;
}

interface Flight {
  readonly promise: Promise<CryptoKey>;
  /** Callers waiting on this load: each gets its own reference, taken before any of them runs. */
  waiters: number;
}

export type Loader = () => Promise<CryptoKey>;

export class KeyCache {
  private readonly entries = new Map<string, Entry>();
  private readonly latest = new Map<string, Entry>();
  private readonly flights = new Map<string, Flight>();
  private closed = false;

  constructor(
    private readonly kind: 'systemKey' | 'intermediateKey',
    private readonly enabled: boolean,
    private readonly maxSize: number,
    private readonly policy: CryptoPolicy,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
  ) {}

  /** The key (id, created), acquired, if cached and fresh; the caller releases it. */
  get(id: string, created: number): CryptoKey | undefined {
    const entry = this.entries.get(cacheKey(id, created));
    if (entry === undefined || !this.isFresh(entry)) return undefined;
    return this.hit(entry);
  }

  /** The latest key of `id`, acquired, if cached, fresh and still valid for new writes. */
  getLatest(id: string): CryptoKey | undefined {
    const entry = this.latest.get(id);
    if (entry === undefined || !this.isFresh(entry) || !this.isUsableForWrites(entry.key)) return undefined;
    return this.hit(entry);
  }

  /** The key (id, created), acquired: from the cache, or from `load` (shared by concurrent callers). */
  getOrLoad(id: string, created: number, load: Loader): CryptoKey | Promise<CryptoKey> {
    return this.get(id, created) ?? this.loadShared(cacheKey(id, created), load, id, false);
  }

  /** The latest valid key of `id`, acquired; `load` must return a key valid for writes (creating one if needed). */
  getOrLoadLatest(id: string, load: Loader): CryptoKey | Promise<CryptoKey> {
    return this.getLatest(id) ?? this.loadShared(`latest\u0000${id}`, load, id, true);
  }

  /** Wipes every key now, held or not (the factory closes it only once started operations ended or timed out). */
  close(): void {
    this.closed = true;
    for (const entry of this.entries.values()) entry.key.wipe();
    this.entries.clear();
    this.latest.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private hit(entry: Entry): CryptoKey {
    // Map keeps insertion order: re-inserting makes this the most recently used entry.
    this.entries.delete(entry.slot);
    this.entries.set(entry.slot, entry);
    this.metrics.increment(`cache.${this.kind}.hit`);
    return entry.key.acquire();
  }

  private loadShared(flightKey: string, load: Loader, id: string, isLatest: boolean): Promise<CryptoKey> {
    this.metrics.increment(`cache.${this.kind}.miss`);
    let flight = this.flights.get(flightKey);
    if (flight === undefined) {
      const pending: { waiters: number } = { waiters: 0 };
      const promise = (async () => {
        try {
          // Every waiter's reference is taken inside insert, synchronously, so no eviction can zero the key
          // before the waiters' continuations run.
          return this.insert(await load(), id, isLatest, pending.waiters);
        } finally {
          this.flights.delete(flightKey);
        }
      })();
      flight = Object.assign(pending, { promise });
      this.flights.set(flightKey, flight);
    }
    flight.waiters++;
    return flight.promise;
  }

  /** Puts a freshly loaded key in the cache; returns the key callers should use, with `refs` references. */
  private insert(loaded: CryptoKey, id: string, isLatest: boolean, refs: number): CryptoKey {
    if (!this.enabled || this.closed) {
      // Not cached: the key lives as long as its holders.
      loaded.acquire(refs).retire();
      return loaded;
    }
    const key = cacheKey(id, loaded.created);
    const existing = this.entries.get(key);
    let entry: Entry;
    if (existing !== undefined) {
      // A re-read of a cached key (Go key_cache.go): keep the cached secret, take the fresh Revoked flag.
      existing.key.revoked = existing.key.revoked || loaded.revoked;
      existing.loadedAt = this.clock.now();
      loaded.retire();
      entry = existing;
    } else {
      entry = { key: loaded, id, slot: key, loadedAt: this.clock.now() };
      this.entries.set(key, entry);
      if (this.entries.size > this.maxSize) this.evictLeastRecentlyUsed(entry);
    }
    if (isLatest) this.latest.set(id, entry);
    return entry.key.acquire(refs);
  }

  /** Retires the least recently used entry other than `keep`: the first in the Map's order. */
  private evictLeastRecentlyUsed(keep: Entry): void {
    for (const victim of this.entries.values()) {
      if (victim === keep) continue;
      this.entries.delete(victim.slot);
      if (this.latest.get(victim.id) === victim) this.latest.delete(victim.id);
      victim.key.retire();
      return;
    }
  }

  private isFresh(entry: Entry): boolean {
    return entry.key.revoked || this.clock.now() - entry.loadedAt < this.policy.checkIntervalSeconds * 1000;
  }

  private isUsableForWrites(key: CryptoKey): boolean {
    return !key.revoked && !this.policy.isExpired(key.created, this.clock.now());
  }
}

function cacheKey(id: string, created: number): string {
  return `${id}\u0000${created}`;
}
