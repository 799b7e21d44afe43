import { testFactory } from '../../support/envelope';

describe('single-flight key loading', () => {
  test('100 concurrent encrypts on a cold partition cost 1 IK creation and at most 1 KMS call', async () => {
    const t = testFactory();
    try {
      const session = t.factory.getSession('cold');
      const records = await Promise.all(Array.from({ length: 100 }, (_, i) => session.encrypt(Buffer.from(`r${i}`))));
      expect(t.metastore.calls).toEqual({ load: 0, loadLatest: 2, store: 2 }); // one IK and one SK, each once
      expect(t.kms.calls.encryptKey + t.kms.calls.decryptKey).toBe(1);
      expect(new Set(records.map((r) => r.key.parentKeyMeta!.created)).size).toBe(1);
      const metrics = t.factory.metrics();
      expect(metrics).toMatchObject({ kmsCalls: 1, metastoreCalls: 4, encrypts: 100 });
    } finally {
      await t.close();
    }
  });

  test('100 concurrent decrypts with cold caches cost 1 IK load, 1 SK load and 1 KMS call', async () => {
    const writer = testFactory();
    const records = await Promise.all(
      Array.from({ length: 100 }, (_, i) => writer.factory.getSession('p').encrypt(Buffer.from(`r${i}`))),
    );
    const reader = testFactory({ metastore: writer.metastore.inner });
    try {
      const session = reader.factory.getSession('p');
      const plain = await Promise.all(records.map((r) => session.decrypt(r)));
      expect(plain.map(String)).toEqual(records.map((_, i) => `r${i}`));
      expect(reader.metastore.calls).toEqual({ load: 2, loadLatest: 0, store: 0 });
      expect(reader.kms.calls).toEqual({ encryptKey: 0, decryptKey: 1 });
      // Warm: nothing more.
      await session.decrypt(records[0]);
      expect(reader.metastore.calls.load).toBe(2);
      expect(reader.factory.metrics()).toMatchObject({ cacheHits: expect.any(Number), decrypts: 101 });
    } finally {
      await reader.close();
      await writer.close();
    }
  });

  test('a failed load is shared by its waiters and the next call tries again', async () => {
    const t = testFactory();
    const realLoadLatest = t.metastore.inner.loadLatest.bind(t.metastore.inner);
    let fail = true;
    t.metastore.inner.loadLatest = async (id: string) => {
      if (fail) throw new Error('metastore down');
      return realLoadLatest(id);
    };
    try {
      const session = t.factory.getSession('p');
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => session.encrypt(Buffer.from('x'))));
      expect(results.every((r) => r.status === 'rejected')).toBe(true);
      expect(t.metastore.calls.loadLatest).toBe(1);
      fail = false;
      await expect(session.encrypt(Buffer.from('x'))).resolves.toBeDefined();
    } finally {
      await t.close();
    }
  });
});
