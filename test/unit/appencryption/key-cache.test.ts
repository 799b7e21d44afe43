import { testFactory } from '../../support/envelope';

describe('key caches', () => {
  test('the IK cache is bounded: past its size, least recently used IKs are dropped and reloaded on demand', async () => {
    const t = testFactory({ policy: { intermediateKeyCacheMaxSize: 10 } });
    try {
      const records = [];
      for (let i = 0; i < 25; i++) records.push(await t.factory.getSession(`p${i}`).encrypt(Buffer.from(`v${i}`)));
      // 10 cached IKs + 1 SK + 1 master key.
      expect(t.factory.metrics().secretsInUse).toBe(12);
      const loadsBefore = t.metastore.calls.load;
      for (let i = 0; i < 25; i++) expect((await t.factory.getSession(`p${i}`).decrypt(records[i])).toString()).toBe(`v${i}`);
      expect(t.metastore.calls.load).toBeGreaterThan(loadsBefore);
      expect(t.factory.metrics().secretsInUse).toBe(12);
    } finally {
      await t.close();
    }
  });

  test('eviction follows use, not insertion: a key used since it was cached outlives the ones that were not', async () => {
    const t = testFactory({ policy: { intermediateKeyCacheMaxSize: 3 } });
    try {
      const drrs = [];
      for (const p of ['a', 'b', 'c']) drrs.push(await t.factory.getSession(p).encrypt('x'));
      await t.factory.getSession('a').decrypt(drrs[0]); // 'a' is now the most recently used; 'b' the least
      await t.factory.getSession('d').encrypt('x'); // evicts 'b'
      const loads = t.metastore.calls.load;
      await t.factory.getSession('a').decrypt(drrs[0]);
      await t.factory.getSession('c').decrypt(drrs[2]);
      expect(t.metastore.calls.load).toBe(loads); // both still cached
      await t.factory.getSession('b').decrypt(drrs[1]);
      expect(t.metastore.calls.load).toBe(loads + 1); // 'b' was the one evicted
    } finally {
      await t.close();
    }
  });

  test('an IK evicted while an operation holds it stays usable until released', async () => {
    const t = testFactory({ policy: { intermediateKeyCacheMaxSize: 1 } });
    try {
      // Many partitions at once: each encrypt's IK is evicted by the next partition's while still in flight.
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => t.factory.getSession(`q${i}`).encrypt(Buffer.from(`${i}`))),
      );
      const back = await Promise.all(results.map((r, i) => t.factory.getSession(`q${i}`).decrypt(r)));
      expect(back.map(String)).toEqual(results.map((_, i) => `${i}`));
    } finally {
      await t.close();
    }
  });

  test('with caching off every operation loads its keys, and no key stays in memory', async () => {
    const t = testFactory({ policy: { cacheIntermediateKeys: false, cacheSystemKeys: false } });
    try {
      const session = t.factory.getSession('p');
      const drr = await session.encrypt(Buffer.from('x'));
      await session.decrypt(drr);
      await session.decrypt(drr);
      expect(t.kms.calls.decryptKey).toBe(2);
      expect(t.factory.metrics().secretsInUse).toBe(1); // the master key only
    } finally {
      await t.close();
    }
  });

  test('factory.close zeroes every key it holds', async () => {
    const t = testFactory();
    await t.factory.getSession('p').encrypt(Buffer.from('x'));
    expect(t.secrets.stats().factorySecretsInUse).toBe(3);
    await t.factory.close();
    expect(t.secrets.stats().factorySecretsInUse).toBe(1); // the static KMS master key, owned by the caller
    expect(() => t.factory.getSession('p')).toThrow(/closed/);
    t.secrets.close();
  });

  test('session caching hands each caller its own session, so closing one never affects another', async () => {
    const t = testFactory({ policy: { sessionCaching: true, sessionCacheMaxSize: 2 } });
    try {
      const a = t.factory.getSession('p');
      const b = t.factory.getSession('p');
      a.close();
      expect((await b.decrypt(await b.encrypt(Buffer.from('still open')))).toString()).toBe('still open');
      for (const id of ['x', 'y', 'z', 'p']) await t.factory.getSession(id).encrypt(Buffer.from(id));
    } finally {
      await t.close();
    }
  });
});
