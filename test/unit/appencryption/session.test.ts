import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  ConfigError,
  dataRowRecordToJsonObject,
  DecryptError,
  decodeDataRowRecord,
  decodeEnvelopeKeyRecord,
  encodeDataRowRecord,
  InvalidRecordError,
  KeyNotFoundError,
  MemoryMetastore,
  SessionFactory,
  type DataRowRecord,
} from '../../../layer/src/index';
import fc from 'fast-check';
import { anyValue, hostileNumber, outcomeOf } from '../../fuzz/fuzz-support';
import { testFactory, type TestFactory } from '../../support/envelope';

const vectorsDir = path.resolve(__dirname, '../../vectors');

describe('Session', () => {
  let t: TestFactory;
  beforeEach(() => {
    t = testFactory();
  });
  afterEach(() => t.close());

  test('encrypt then decrypt returns the data, for empty, text, binary and 1 MiB payloads', async () => {
    const session = t.factory.getSession('user-1');
    const payloads = [Buffer.alloc(0), Buffer.from('héllo wörld ✓'), Buffer.from([0, 1, 2, 255]), Buffer.alloc(1 << 20, 7)];
    for (const payload of payloads) {
      const drr = await session.encrypt(payload);
      expect(drr.data.length).toBe(payload.length + 28);
      expect((await session.decrypt(drr)).equals(payload)).toBe(true);
    }
    expect((await session.decrypt(await session.encrypt('a string'))).toString()).toBe('a string');
  });

  test('records have Asherah\'s shape: 60-byte wrapped DRK, IK/SK Created on the minute, DRK Created not', async () => {
    const drr = await t.factory.getSession('user-2').encrypt(Buffer.from('x'));
    const json = encodeDataRowRecord(drr);
    expect(json).toMatch(
      /^\{"Key":\{"Created":\d+,"Key":"[A-Za-z0-9+/]{80}","ParentKeyMeta":\{"KeyId":"_IK_user-2_service_product","Created":\d+\}\},"Data":"[A-Za-z0-9+/=]+"\}$/,
    );
    expect(drr.key.created).toBe(Math.floor(t.clock.now() / 1000));
    expect(drr.key.created % 60).not.toBe(0);
    expect(drr.key.parentKeyMeta!.created % 60).toBe(0);
    const ik = await t.metastore.load('_IK_user-2_service_product', drr.key.parentKeyMeta!.created);
    expect(ik!.parentKeyMeta).toEqual({ keyId: '_SK_service_product', created: drr.key.parentKeyMeta!.created });
    expect(ik!.encryptedKey.length).toBe(60);
  });

  test('any flipped bit in Key or Data is a DecryptError', async () => {
    const session = t.factory.getSession('tamper');
    const drr = await session.encrypt(Buffer.from('sixteen bytes!!!'));
    for (const field of ['key', 'data'] as const) {
      const original = field === 'key' ? drr.key.encryptedKey : drr.data;
      for (let bit = 0; bit < original.length * 8; bit++) {
        const flipped = Buffer.from(original);
        flipped[bit >> 3] ^= 1 << (bit & 7);
        const tampered: DataRowRecord =
          field === 'key' ? { ...drr, key: { ...drr.key, encryptedKey: flipped } } : { ...drr, data: flipped };
        await expect(session.decrypt(tampered)).rejects.toThrow(DecryptError);
      }
    }
    expect((await session.decrypt(drr)).toString()).toBe('sixteen bytes!!!');
  });

  test('a record of another partition is refused, even with a partition id that is its prefix', async () => {
    const drr = await t.factory.getSession('alice').encrypt(Buffer.from('secret'));
    await expect(t.factory.getSession('bob').decrypt(drr)).rejects.toThrow(DecryptError);
    await expect(t.factory.getSession('alic').decrypt(drr)).rejects.toThrow(/another partition/);
  });

  test('a record whose IK is not in the metastore is a KeyNotFoundError, and decrypt creates no key', async () => {
    const other = testFactory();
    const drr = await other.factory.getSession('p').encrypt(Buffer.from('x'));
    await other.close();
    const storesBefore = t.metastore.calls.store;
    await expect(t.factory.getSession('p').decrypt(drr)).rejects.toThrow(KeyNotFoundError);
    expect(t.metastore.calls.store).toBe(storesBefore);
  });

  test('bad arguments are typed errors', async () => {
    expect(() => t.factory.getSession('')).toThrow(ConfigError);
    await expect(t.factory.getSession('p').encrypt(123 as unknown as Buffer)).rejects.toThrow(ConfigError);
    await expect(t.factory.getSession('p').decrypt({} as DataRowRecord)).rejects.toThrow(InvalidRecordError);
    const session = t.factory.getSession('p');
    session.close();
    await expect(session.encrypt(Buffer.from('x'))).rejects.toThrow(/session is closed/);
  });

  test('a partition whose key id would pass 2048 UTF-8 bytes is a ConfigError at getSession, before any I/O', () => {
    // 1024 characters, but 2048 bytes of "é" (2 each) or 2100 of "中" (3 each): over DynamoDB's key limit.
    for (const partition of ['é'.repeat(1024), '中'.repeat(700), 'x'.repeat(2048)]) {
      expect(() => t.factory.getSession(partition)).toThrow(ConfigError);
      expect(() => t.factory.getSession(partition)).toThrow(
        /^partition id is too long: it is \d+ bytes as UTF-8 and makes an intermediate key id of \d+ bytes, over the 2048-byte limit/,
      );
    }
    expect(t.metastore.calls).toEqual({ load: 0, loadLatest: 0, store: 0 });
    // "_IK_" + partition + "_service_product" is 2048 bytes exactly: accepted, and the message's count is right.
    const room = 2048 - '_IK__service_product'.length;
    expect(() => t.factory.getSession('x'.repeat(room))).not.toThrow();
    expect(() => t.factory.getSession('x'.repeat(room + 1))).toThrow(new RegExp(`at most ${room} bytes`));
  });

  test('service and product names whose system key id would pass 2048 bytes are a ConfigError when the factory is made', () => {
    expect(() =>
      SessionFactory.create({ serviceName: 'é'.repeat(1100), productId: 'p', metastore: new MemoryMetastore(), kms: t.kms }),
    ).toThrow(/^the service and product names make a system key id of 2206 bytes as UTF-8, over the 2048-byte limit/);
  });

  test('recordSize is the exact size of the record encrypt makes, for any partition and data size (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).filter((p) => p.isWellFormed()),
        fc.nat({ max: 5000 }),
        async (partition, size) => {
          const session = t.factory.getSession(partition);
          const record = await session.encrypt(Buffer.alloc(size, 1));
          const actual = Buffer.byteLength(encodeDataRowRecord(record), 'utf8');
          // Created is 10 digits until 2286, so the bound is exact; JSON.stringify is never longer.
          expect(session.recordSize(size)).toBe(actual);
          expect(Buffer.byteLength(JSON.stringify(dataRowRecordToJsonObject(record)), 'utf8')).toBeLessThanOrEqual(actual);
        },
      ),
      { seed: 20261208, numRuns: 200 },
    );
    expect(() => t.factory.getSession('p').recordSize(-1)).toThrow(ConfigError);
    // Any other value: a number of bytes or a ConfigError, never another error.
    const session = t.factory.getSession('p');
    fc.assert(
      fc.property(fc.oneof(hostileNumber, anyValue), (value) => {
        const outcome = outcomeOf(() => session.recordSize(value as number), ['ConfigError']);
        if ('value' in outcome && !(Number.isSafeInteger(outcome.value) && outcome.value > 0)) throw new Error('not a size');
      }),
      { seed: 20261208, numRuns: 500 },
    );
  });

  test('decrypts every known-answer vector written by upstream Go Asherah, through a SessionFactory', async () => {
    const files = readdirSync(vectorsDir).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const vector = JSON.parse(readFileSync(path.join(vectorsDir, file), 'utf8'));
      for (const c of vector.cases) {
        const metastore = new MemoryMetastore();
        for (const row of c.metastore_rows) {
          await metastore.store(row.id, row.created, decodeEnvelopeKeyRecord(row.key_record));
        }
        const v = testFactory({ metastore, masterKeyHex: vector.master_key_hex });
        try {
          const plaintext = await v.factory.getSession(c.partition).decrypt(decodeDataRowRecord(c.drr));
          expect(plaintext.toString('base64')).toBe(c.plaintext_b64);
          expect(v.kms.calls).toEqual({ encryptKey: 0, decryptKey: 1 });
        } finally {
          await v.close();
        }
      }
    }
  });
});
