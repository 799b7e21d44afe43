/**
 * Counters of what the core does: KMS and metastore calls, key cache hits and misses, records processed. Read
 * them with `SessionFactory.metrics()`; pass a `MetricsHook` to forward each count as it happens (e.g. to EMF).
 * Never carries key material or record contents.
 */
export type MetricName =
  | 'kms.encryptKey'
  | 'kms.decryptKey'
  | 'metastore.load'
  | 'metastore.loadLatest'
  | 'metastore.store'
  | 'cache.systemKey.hit'
  | 'cache.systemKey.miss'
  | 'cache.intermediateKey.hit'
  | 'cache.intermediateKey.miss'
  | 'encrypt'
  | 'decrypt';

export interface MetricsHook {
  increment(name: MetricName, by: number): void;
}

export interface MetricsSnapshot {
  kmsCalls: number;
  kmsEncryptKeyCalls: number;
  kmsDecryptKeyCalls: number;
  metastoreCalls: number;
  metastoreLoads: number;
  metastoreLoadLatests: number;
  metastoreStores: number;
  cacheHits: number;
  cacheMisses: number;
  systemKeyCacheHits: number;
  systemKeyCacheMisses: number;
  intermediateKeyCacheHits: number;
  intermediateKeyCacheMisses: number;
  encrypts: number;
  decrypts: number;
}

export class Metrics {
  private readonly counts: Record<MetricName, number> = {
    'kms.encryptKey': 0,
    'kms.decryptKey': 0,
    'metastore.load': 0,
    'metastore.loadLatest': 0,
    'metastore.store': 0,
    'cache.systemKey.hit': 0,
    'cache.systemKey.miss': 0,
    'cache.intermediateKey.hit': 0,
    'cache.intermediateKey.miss': 0,
    encrypt: 0,
    decrypt: 0,
  };

  constructor(private readonly hook?: MetricsHook) {}

  increment(name: MetricName): void {
    this.counts[name]++;
    this.hook?.increment(name, 1);
  }

  snapshot(): MetricsSnapshot {
    const c = this.counts;
    return {
      kmsCalls: c['kms.encryptKey'] + c['kms.decryptKey'],
      kmsEncryptKeyCalls: c['kms.encryptKey'],
      kmsDecryptKeyCalls: c['kms.decryptKey'],
      metastoreCalls: c['metastore.load'] + c['metastore.loadLatest'] + c['metastore.store'],
      metastoreLoads: c['metastore.load'],
      metastoreLoadLatests: c['metastore.loadLatest'],
      metastoreStores: c['metastore.store'],
      cacheHits: c['cache.systemKey.hit'] + c['cache.intermediateKey.hit'],
      cacheMisses: c['cache.systemKey.miss'] + c['cache.intermediateKey.miss'],
      systemKeyCacheHits: c['cache.systemKey.hit'],
      systemKeyCacheMisses: c['cache.systemKey.miss'],
      intermediateKeyCacheHits: c['cache.intermediateKey.hit'],
      intermediateKeyCacheMisses: c['cache.intermediateKey.miss'],
      encrypts: c.encrypt,
      decrypts: c.decrypt,
    };
  }
}
