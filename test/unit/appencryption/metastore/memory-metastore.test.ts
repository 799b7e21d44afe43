import { MemoryMetastore } from '../../../../layer/src/appencryption/metastore/memory-metastore';
import type { EnvelopeKeyRecord } from '../../../../layer/src/appencryption/record-codec';

const SK_ID = '_SK_service_product';
const IK_ID = '_IK_partition_service_product';
const T0 = 1795858140; // a whole minute, as SK/IK Created always is (docs/wire-format.md §1.3)

function skRecord(created: number, fill = 1): EnvelopeKeyRecord {
  return { created, encryptedKey: Buffer.alloc(60, fill) };
}

function ikRecord(created: number, skCreated: number, fill = 2): EnvelopeKeyRecord {
  return { created, encryptedKey: Buffer.alloc(60, fill), parentKeyMeta: { keyId: SK_ID, created: skCreated } };
}

describe('MemoryMetastore', () => {
  it('loads what was stored under (id, created), and nothing for another id or created', async () => {
    const metastore = new MemoryMetastore();
    expect(await metastore.store(SK_ID, T0, skRecord(T0))).toBe(true);
    expect(await metastore.store(IK_ID, T0, ikRecord(T0, T0))).toBe(true);

    expect(await metastore.load(SK_ID, T0)).toEqual(skRecord(T0));
    expect(await metastore.load(IK_ID, T0)).toEqual(ikRecord(T0, T0));
    expect(await metastore.load(SK_ID, T0 + 60)).toBeUndefined();
    expect(await metastore.load('_SK_other_product', T0)).toBeUndefined();
  });

  it('keeps the revoked flag', async () => {
    const metastore = new MemoryMetastore();
    await metastore.store(IK_ID, T0, { ...ikRecord(T0, T0), revoked: true });
    expect((await metastore.load(IK_ID, T0))?.revoked).toBe(true);
    expect((await metastore.loadLatest(IK_ID))?.revoked).toBe(true);
  });

  it('loadLatest returns the record with the greatest created, whatever the order of the stores', async () => {
    const metastore = new MemoryMetastore();
    expect(await metastore.loadLatest(SK_ID)).toBeUndefined();
    await metastore.store(SK_ID, T0 + 60, skRecord(T0 + 60, 2));
    await metastore.store(SK_ID, T0 + 120, skRecord(T0 + 120, 3));
    await metastore.store(SK_ID, T0, skRecord(T0, 1));
    expect(await metastore.loadLatest(SK_ID)).toEqual(skRecord(T0 + 120, 3));
    expect(await metastore.loadLatest(IK_ID)).toBeUndefined();
  });

  it('a duplicate store returns false and keeps the first record', async () => {
    const metastore = new MemoryMetastore();
    expect(await metastore.store(SK_ID, T0, skRecord(T0, 1))).toBe(true);
    expect(await metastore.store(SK_ID, T0, skRecord(T0, 9))).toBe(false);
    expect(await metastore.load(SK_ID, T0)).toEqual(skRecord(T0, 1));
    expect(metastore.rows()).toHaveLength(1);
  });

  it('racing stores of the same (id, created) give exactly one true', async () => {
    const metastore = new MemoryMetastore();
    const results = await Promise.all([1, 2, 3, 4].map((fill) => metastore.store(IK_ID, T0, ikRecord(T0, T0, fill))));
    expect(results.filter((stored) => stored)).toHaveLength(1);
    expect(metastore.rows()).toHaveLength(1);
  });

  it('stores a copy: changing the stored record or its buffer afterwards changes nothing', async () => {
    const metastore = new MemoryMetastore();
    const record = ikRecord(T0, T0, 7);
    await metastore.store(IK_ID, T0, record);
    record.encryptedKey.fill(0);
    record.parentKeyMeta!.keyId = '_SK_tampered';
    record.revoked = true;
    record.created = 0;
    expect(await metastore.load(IK_ID, T0)).toEqual(ikRecord(T0, T0, 7));
  });

  it('returns copies: changing a loaded record does not change what the next load returns', async () => {
    const metastore = new MemoryMetastore();
    await metastore.store(IK_ID, T0, ikRecord(T0, T0, 7));
    for (const loaded of [await metastore.load(IK_ID, T0), await metastore.loadLatest(IK_ID), metastore.rows()[0].record]) {
      loaded!.encryptedKey.fill(0);
      loaded!.parentKeyMeta!.created = 0;
      loaded!.revoked = true;
    }
    expect(await metastore.load(IK_ID, T0)).toEqual(ikRecord(T0, T0, 7));
    expect(await metastore.loadLatest(IK_ID)).toEqual(ikRecord(T0, T0, 7));
  });

  it('copies a Buffer that is a view into a larger ArrayBuffer without the bytes around it', async () => {
    const metastore = new MemoryMetastore();
    const backing = Buffer.alloc(100, 0xee);
    const view = backing.subarray(20, 80).fill(5);
    await metastore.store(SK_ID, T0, { created: T0, encryptedKey: view });
    const loaded = await metastore.load(SK_ID, T0);
    expect(loaded!.encryptedKey).toEqual(Buffer.alloc(60, 5));
    expect(loaded!.encryptedKey.buffer).not.toBe(backing.buffer);
  });

  it('rows() lists every row sorted by id, then created', async () => {
    const metastore = new MemoryMetastore();
    await metastore.store(SK_ID, T0 + 60, skRecord(T0 + 60));
    await metastore.store(IK_ID, T0, ikRecord(T0, T0));
    await metastore.store(SK_ID, T0, skRecord(T0));
    expect(metastore.rows().map(({ id, created }) => [id, created])).toEqual([
      [IK_ID, T0],
      [SK_ID, T0],
      [SK_ID, T0 + 60],
    ]);
  });

  it('reports the region suffix it was given, and none by default', () => {
    expect(new MemoryMetastore().regionSuffix()).toBeUndefined();
    expect(new MemoryMetastore({ regionSuffix: 'us-west-2' }).regionSuffix()).toBe('us-west-2');
  });
});
