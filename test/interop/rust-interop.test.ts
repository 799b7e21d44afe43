/**
 * Interop with the real Rust Asherah (asherah-linux-x64-gnu 4.0.57) on one shared SQLite file, both directions.
 * The oracle runs in child processes (it hardens whatever process hosts it); runs alternate with ours, never
 * concurrently. On linux x64 these tests run; elsewhere describeOracle skips them with a message.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  decodeDataRowRecord,
  encodeDataRowRecord,
  KmsError,
  SecretFactory,
  SessionFactory,
  SqliteMetastore,
  StaticKms,
  TEST_DEBUG_STATIC_MASTER_KEY_HEX,
  type EnvelopeKeyRecord,
  type Metastore,
} from '../../layer/src/index';
import {
  decryptOp,
  describeOracle,
  encryptOp,
  interopCases,
  ORACLE_NO_SELF_HEAL,
  oracleSqliteConfig,
  resultData,
  resultDrr,
  runOracleOk,
} from '../support/oracle';

const { partitions, payloads, cases } = interopCases({ oneMiB: randomBytes(1 << 20) });
const OTHER_KEY_HEX = '22'.repeat(32);

/** A metastore as one region of a global table sees it: the shared file, with a region suffix on key ids. */
class SuffixedMetastore implements Metastore {
  constructor(
    private readonly inner: SqliteMetastore,
    private readonly suffix: string,
  ) {}
  load(id: string, created: number) {
    return this.inner.load(id, created);
  }
  loadLatest(id: string) {
    return this.inner.loadLatest(id);
  }
  store(id: string, created: number, record: EnvelopeKeyRecord) {
    return this.inner.store(id, created, record);
  }
  regionSuffix() {
    return this.suffix;
  }
}

function ours(file: string, masterKeyHex = TEST_DEBUG_STATIC_MASTER_KEY_HEX, suffix?: string) {
  const secrets = new SecretFactory();
  const sqlite = new SqliteMetastore(file);
  const metastore = suffix ? new SuffixedMetastore(sqlite, suffix) : sqlite;
  const factory = SessionFactory.create({
    serviceName: 'service',
    productId: 'product',
    metastore,
    kms: new StaticKms(masterKeyHex, secrets),
    secrets,
  });
  return {
    factory,
    close: async () => {
      await factory.close();
      sqlite.close();
      secrets.close();
    },
  };
}

function keyRowIds(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT id FROM encryption_key ORDER BY id, created').all() as { id: string }[])
      .map((r) => r.id)
      .filter((id) => id.startsWith('_SK_') || id.startsWith('_IK_'));
  } finally {
    db.close();
  }
}

describeOracle('interop with the Rust implementation on a shared SQLite file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'interop-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('records the Rust implementation writes decrypt here (default static key)', async () => {
    const file = path.join(dir, 'shared.db');
    const results = runOracleOk({ config: oracleSqliteConfig(file), ops: cases.map((c) => encryptOp(c.partition, c.data)) });
    const sdk = ours(file);
    try {
      for (const [i, c] of cases.entries()) {
        const plaintext = await sdk.factory.getSession(c.partition).decrypt(decodeDataRowRecord(resultDrr(results[i])));
        // The partition and payload name come first so that a failure says which case broke.
        expect([c.partition, c.name, plaintext.equals(c.data)]).toEqual([c.partition, c.name, true]);
      }
      expect(sdk.factory.metrics()).toMatchObject({ kmsDecryptKeyCalls: 1, metastoreStores: 0 });
    } finally {
      await sdk.close();
    }
  });

  test('records we write decrypt in the Rust implementation, which uses our keys from the file', async () => {
    const file = path.join(dir, 'shared.db');
    const sdk = ours(file);
    const drrs: string[] = [];
    try {
      for (const c of cases) drrs.push(encodeDataRowRecord(await sdk.factory.getSession(c.partition).encrypt(c.data)));
    } finally {
      await sdk.close();
    }
    const rowsBefore = keyRowIds(file);
    expect(rowsBefore).toHaveLength(1 + partitions.length);
    const results = runOracleOk(
      { config: oracleSqliteConfig(file), ops: cases.map((c, i) => decryptOp(c.partition, drrs[i])) },
      { env: ORACLE_NO_SELF_HEAL },
    );
    for (const [i, c] of cases.entries()) expect(resultData(results[i]).equals(c.data)).toBe(true);
    expect(keyRowIds(file)).toEqual(rowsBefore);
  });

  test('both write to one partition in turn and each reads the other: one SK and one IK between them', async () => {
    const file = path.join(dir, 'shared.db');
    const first = runOracleOk({ config: oracleSqliteConfig(file), ops: [encryptOp('shared', 'from rust')] });
    const sdk = ours(file);
    let mine: string;
    try {
      const drr = await sdk.factory.getSession('shared').encrypt(Buffer.from('from ts'));
      expect(drr.key.parentKeyMeta).toEqual(decodeDataRowRecord(resultDrr(first[0])).key.parentKeyMeta);
      mine = encodeDataRowRecord(drr);
      const theirs = await sdk.factory.getSession('shared').decrypt(decodeDataRowRecord(resultDrr(first[0])));
      expect(theirs.toString()).toBe('from rust');
    } finally {
      await sdk.close();
    }
    const back = runOracleOk({ config: oracleSqliteConfig(file), ops: [decryptOp('shared', mine)] }, { env: ORACLE_NO_SELF_HEAL });
    expect(resultData(back[0]).toString()).toBe('from ts');
    expect(keyRowIds(file)).toEqual(['_IK_shared_service_product', '_SK_service_product']);
  });

  test('a non-default static master key works both ways, and the wrong key is a KmsError', async () => {
    const file = path.join(dir, 'other-key.db');
    const config = oracleSqliteConfig(file, { kms: 'static', staticMasterKeyHex: OTHER_KEY_HEX });
    const theirs = runOracleOk({ config, ops: [encryptOp('p1', payloads.unicode)] });
    const sdk = ours(file, OTHER_KEY_HEX);
    let mine: string;
    try {
      expect((await sdk.factory.getSession('p1').decrypt(decodeDataRowRecord(resultDrr(theirs[0])))).equals(payloads.unicode)).toBe(true);
      mine = encodeDataRowRecord(await sdk.factory.getSession('p2').encrypt(payloads.binary));
    } finally {
      await sdk.close();
    }
    expect(resultData(runOracleOk({ config, ops: [decryptOp('p2', mine)] }, { env: ORACLE_NO_SELF_HEAL })[0]).equals(payloads.binary)).toBe(true);
    const wrong = ours(file);
    try {
      await expect(wrong.factory.getSession('p1').decrypt(decodeDataRowRecord(resultDrr(theirs[0])))).rejects.toThrow(KmsError);
    } finally {
      await wrong.close();
    }
  });

  test('region-suffixed key ids: records of one region decrypt in that region and in another, both ways', async () => {
    const file = path.join(dir, 'suffixed.db');
    const env = { REGION_SUFFIX: 'us-west-2', SQLITE_PATH: path.resolve(file), KMS: 'test-debug-static', SERVICE_NAME: 'service', PRODUCT_ID: 'product' };
    const theirs = runOracleOk({ mode: 'env', env, ops: [encryptOp('p1', 'west')] });
    const drr = decodeDataRowRecord(resultDrr(theirs[0]));
    expect(drr.key.parentKeyMeta!.keyId).toBe('_IK_p1_service_product_us-west-2');
    for (const region of ['us-west-2', 'eu-west-1']) {
      const sdk = ours(file, TEST_DEBUG_STATIC_MASTER_KEY_HEX, region);
      try {
        expect((await sdk.factory.getSession('p1').decrypt(drr)).toString()).toBe('west');
      } finally {
        await sdk.close();
      }
    }
    const sdk = ours(file, TEST_DEBUG_STATIC_MASTER_KEY_HEX, 'us-west-2');
    let mine: string;
    try {
      const record = await sdk.factory.getSession('p2').encrypt(Buffer.from('ours, suffixed'));
      expect(record.key.parentKeyMeta!.keyId).toBe('_IK_p2_service_product_us-west-2');
      mine = encodeDataRowRecord(record);
    } finally {
      await sdk.close();
    }
    const back = runOracleOk({ mode: 'env', env: { ...env, ...ORACLE_NO_SELF_HEAL }, ops: [decryptOp('p2', mine)] });
    expect(resultData(back[0]).toString()).toBe('ours, suffixed');
  });
});
