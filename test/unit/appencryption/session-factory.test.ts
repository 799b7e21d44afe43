import {
  ConfigError,
  MemoryMetastore,
  SecretFactory,
  SessionFactory,
  StaticKms,
  TEST_DEBUG_STATIC_MASTER_KEY_HEX,
  type MetricName,
} from '../../../layer/src/index';
import { testFactory } from '../../support/envelope';

describe('SessionFactory', () => {
  test('prewarm loads the SK and the partitions\' IKs, so the first records cost no metastore or KMS call', async () => {
    const writer = testFactory();
    await writer.factory.getSession('a').encrypt(Buffer.from('x'));
    await writer.factory.getSession('b').encrypt(Buffer.from('x'));
    const t = testFactory({ metastore: writer.metastore.inner });
    try {
      await t.factory.prewarm(['a', 'b']);
      expect(t.kms.calls).toEqual({ encryptKey: 0, decryptKey: 1 });
      const before = { ...t.metastore.calls };
      await t.factory.getSession('a').encrypt(Buffer.from('warm'));
      await t.factory.getSession('b').encrypt(Buffer.from('warm'));
      expect(t.metastore.calls).toEqual(before);
      expect(t.kms.calls.decryptKey).toBe(1);
    } finally {
      await t.close();
      await writer.close();
    }
  });

  test('a metrics hook sees every count as it happens', async () => {
    const seen: MetricName[] = [];
    const secrets = new SecretFactory();
    const factory = SessionFactory.create({
      serviceName: 's',
      productId: 'p',
      metastore: new MemoryMetastore(),
      kms: new StaticKms(TEST_DEBUG_STATIC_MASTER_KEY_HEX, secrets),
      secrets,
      metrics: { increment: (name) => seen.push(name) },
    });
    try {
      const session = factory.getSession('x');
      await session.decrypt(await session.encrypt(Buffer.from('y')));
      expect(seen).toEqual(
        expect.arrayContaining(['cache.intermediateKey.miss', 'metastore.loadLatest', 'metastore.store', 'kms.encryptKey', 'encrypt', 'cache.intermediateKey.hit', 'decrypt']),
      );
      const m = factory.metrics();
      expect(seen.length).toBe(m.kmsCalls + m.metastoreCalls + m.cacheHits + m.cacheMisses + m.encrypts + m.decrypts);
    } finally {
      await factory.close();
      secrets.close();
    }
  });

  test('a missing adapter is a ConfigError naming it', () => {
    expect(() => SessionFactory.create({ serviceName: 's', productId: 'p', kms: undefined!, metastore: new MemoryMetastore() })).toThrow(
      /kms is required/,
    );
    expect(() => SessionFactory.create({ serviceName: 's', productId: 'p', kms: {} as never, metastore: undefined! })).toThrow(ConfigError);
  });
});
