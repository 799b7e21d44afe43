/**
 * Interop with the real Rust Asherah (asherah-linux-x64-gnu 4.0.57) on one shared DynamoDB table (dynalite), both
 * directions, with and without region suffixes (docs/wire-format.md §1.2, §3.4).
 *
 * The oracle runs in child processes through spawnSync, which blocks this process's event loop, so dynalite runs in
 * a process of its own. Each test gets its own table: the oracle's config drift guard (docs/wire-format.md §9.3)
 * records the table, the region and whether suffixes are on, and refuses a later run with another combination.
 *
 * Observed with 4.0.57: its items have exactly our shape (Id S, Created N, KeyRecord M{Created N, Key S,
 * ParentKeyMeta M{KeyId S, Created N}} for IKs, no Revoked); with enableRegionSuffix the suffix is dynamoDbRegion
 * (`_SK_service_product_us-west-2`, `_IK_p1_service_product_us-west-2`); it also writes the drift-guard item
 * `__asherah_internal_config_drift_guard_v1__:<b64url>` (Created 946684800, a KeyRecord whose Key is base64 JSON).
 */
import { randomBytes } from 'node:crypto';
import { ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { decodeDataRowRecord, encodeDataRowRecord } from '../../layer/src/index';
import { DynamoDbMetastore, type DynamoDbMetastoreOptions } from '../../layer/src/appencryption/metastore/dynamodb-metastore';
import { DUMMY_CREDENTIALS_ENV, TEST_REGION } from '../../scripts/local-aws/dynalite';
import { testFactory, type TestFactory } from '../support/envelope';
import { useDynalite } from '../support/local-aws';
import {
  decryptOp,
  describeOracle,
  encryptOp,
  interopCases,
  ORACLE_NO_SELF_HEAL,
  resultData,
  resultDrr,
  runOracleOk,
  type OracleConfig,
  type OracleOp,
  type OracleResult,
} from '../support/oracle';

const { partitions, cases } = interopCases({ random64KiB: randomBytes(64 * 1024) });
const OTHER_REGION = 'eu-central-1';

describeOracle('interop with the Rust implementation on a shared DynamoDB table', () => {
  const local = useDynalite({ separateProcess: true, tables: [] });
  const newTable = () => local.newTable('SharedKeys');

  function oracleConfig(tableName: string, overrides: Partial<OracleConfig> = {}): OracleConfig {
    return {
      serviceName: 'service',
      productId: 'product',
      metastore: 'dynamodb',
      dynamoDbEndpoint: local.dynamo.endpoint,
      dynamoDbRegion: TEST_REGION,
      dynamoDbTableName: tableName,
      kms: 'test-debug-static',
      enableSessionCaching: false,
      ...overrides,
    };
  }

  function oracle(config: OracleConfig, ops: OracleOp[], env: NodeJS.ProcessEnv = {}): OracleResult[] {
    return runOracleOk({ config, ops }, { env: { ...DUMMY_CREDENTIALS_ENV, ...env } });
  }

  /** Our SDK on the table, with a client in `region` (what regionSuffix: true uses). */
  async function ours(tableName: string, options: DynamoDbMetastoreOptions = {}, region = TEST_REGION): Promise<TestFactory> {
    const metastore = await DynamoDbMetastore.create(local.dynamo.client(region), { tableName, ...options });
    return testFactory({ metastore });
  }

  /** Key items (Id starting _SK_ or _IK_) as [id, created], sorted; the oracle's drift-guard item is not key material. */
  async function keyItems(tableName: string): Promise<[string, string][]> {
    return (await allItems(tableName))
      .map((item): [string, string] => [item.Id.S!, item.Created.N!])
      .filter(([id]) => id.startsWith('_SK_') || id.startsWith('_IK_'))
      .sort(([a, x], [b, y]) => (a === b ? Number(x) - Number(y) : a < b ? -1 : 1));
  }

  async function allItems(tableName: string): Promise<Record<string, AttributeValue>[]> {
    return (await local.client.send(new ScanCommand({ TableName: tableName, ConsistentRead: true }))).Items ?? [];
  }

  const idsOf = (items: [string, string][]) => items.map(([id]) => id);

  test('records the Rust implementation writes decrypt here, and its items have exactly our shape', async () => {
    const table = await newTable();
    const results = oracle(oracleConfig(table), cases.map((c) => encryptOp(c.partition, c.data)));

    const items = await allItems(table);
    for (const item of items) {
      const id = item.Id.S!;
      const record = item.KeyRecord.M!;
      if (id.startsWith('_SK_')) {
        expect(Object.keys(record).sort()).toEqual(['Created', 'Key']);
      } else if (id.startsWith('_IK_')) {
        expect(Object.keys(record).sort()).toEqual(['Created', 'Key', 'ParentKeyMeta']);
        expect(Object.keys(record.ParentKeyMeta.M!).sort()).toEqual(['Created', 'KeyId']);
        expect(record.ParentKeyMeta.M!.KeyId.S).toBe('_SK_service_product');
      } else {
        expect(id).toMatch(/^__asherah_internal_config_drift_guard_v1__:/);
        continue;
      }
      expect(Object.keys(item).sort()).toEqual(['Created', 'Id', 'KeyRecord']);
      expect(record.Created.N).toBe(item.Created.N);
      expect(Number(item.Created.N) % 60).toBe(0); // minute precision (docs/wire-format.md §1.3)
    }
    expect(idsOf(await keyItems(table))).toEqual(
      ['_SK_service_product', ...partitions.map((p) => `_IK_${p}_service_product`)].sort(),
    );

    const sdk = await ours(table);
    try {
      for (const [i, c] of cases.entries()) {
        const plaintext = await sdk.factory.getSession(c.partition).decrypt(decodeDataRowRecord(resultDrr(results[i])));
        expect([c.partition, c.name, plaintext.equals(c.data)]).toEqual([c.partition, c.name, true]);
      }
      // One KMS call for the SK, one GetItem per IK and one for the SK, nothing written.
      expect(sdk.factory.metrics()).toMatchObject({
        kmsDecryptKeyCalls: 1,
        metastoreLoads: partitions.length + 1,
        metastoreStores: 0,
      });
    } finally {
      await sdk.close();
    }
  });

  test('records we write decrypt in the Rust implementation, which uses our keys from the table', async () => {
    const table = await newTable();
    const sdk = await ours(table);
    const drrs: string[] = [];
    try {
      for (const c of cases) drrs.push(encodeDataRowRecord(await sdk.factory.getSession(c.partition).encrypt(c.data)));
    } finally {
      await sdk.close();
    }
    const before = await keyItems(table);
    expect(before).toHaveLength(1 + partitions.length);
    const results = oracle(oracleConfig(table), cases.map((c, i) => decryptOp(c.partition, drrs[i])), ORACLE_NO_SELF_HEAL);
    for (const [i, c] of cases.entries()) {
      expect([c.partition, c.name, resultData(results[i]).equals(c.data)]).toEqual([c.partition, c.name, true]);
    }
    expect(await keyItems(table)).toEqual(before);
  });

  test('both write to one partition in turn and each reads the other: one SK and one IK between them', async () => {
    const table = await newTable();
    const first = oracle(oracleConfig(table), [encryptOp('shared', 'from rust')]);
    const sdk = await ours(table);
    let mine: string;
    try {
      const theirs = decodeDataRowRecord(resultDrr(first[0]));
      const drr = await sdk.factory.getSession('shared').encrypt(Buffer.from('from ts'));
      expect(drr.key.parentKeyMeta).toEqual(theirs.key.parentKeyMeta); // we found and used its IK
      mine = encodeDataRowRecord(drr);
      expect((await sdk.factory.getSession('shared').decrypt(theirs)).toString()).toBe('from rust');
    } finally {
      await sdk.close();
    }
    const back = oracle(oracleConfig(table), [decryptOp('shared', mine), encryptOp('shared', 'rust again')], ORACLE_NO_SELF_HEAL);
    expect(resultData(back[0]).toString()).toBe('from ts');
    expect(decodeDataRowRecord(resultDrr(back[1])).key.parentKeyMeta).toEqual(decodeDataRowRecord(mine).key.parentKeyMeta);
    expect(idsOf(await keyItems(table))).toEqual(['_IK_shared_service_product', '_SK_service_product']);
  });

  test('region suffix: the Rust implementation suffixes ids with dynamoDbRegion; we read them with regionSuffix: true, from that region and another', async () => {
    const table = await newTable();
    const config = oracleConfig(table, { enableRegionSuffix: true });
    const results = oracle(config, [encryptOp('p1', 'west one'), encryptOp('p2', 'west two')]);
    const written = await keyItems(table);
    expect(idsOf(written)).toEqual([
      '_IK_p1_service_product_us-west-2',
      '_IK_p2_service_product_us-west-2',
      '_SK_service_product_us-west-2',
    ]);
    const theirs = results.map((r) => decodeDataRowRecord(resultDrr(r)));
    expect(theirs[0].key.parentKeyMeta?.keyId).toBe('_IK_p1_service_product_us-west-2');

    const sameRegion = await ours(table, { regionSuffix: true });
    try {
      expect((await sameRegion.factory.getSession('p1').decrypt(theirs[0])).toString()).toBe('west one');
      // Our next write in that region uses its IK: same id and Created, nothing new stored.
      const mine = await sameRegion.factory.getSession('p2').encrypt(Buffer.from('ours'));
      expect(mine.key.parentKeyMeta).toEqual(theirs[1].key.parentKeyMeta);
    } finally {
      await sameRegion.close();
    }
    // Another region's reader accepts an IK id that starts with the partition's unsuffixed id
    // (docs/wire-format.md §1.2).
    const otherRegion = await ours(table, { regionSuffix: true }, OTHER_REGION);
    try {
      expect((await otherRegion.factory.getSession('p2').decrypt(theirs[1])).toString()).toBe('west two');
      expect(otherRegion.factory.metrics().metastoreStores).toBe(0);
    } finally {
      await otherRegion.close();
    }
    expect(await keyItems(table)).toEqual(written);
  });

  test('region suffix, the other way: the Rust implementation reads our suffixed keys, from our region and another, and then uses our IK', async () => {
    const table = await newTable();
    const west = await ours(table, { regionSuffix: true });
    const east = await ours(table, { regionSuffix: OTHER_REGION });
    let westDrr: string;
    let eastDrr: string;
    try {
      const record = await west.factory.getSession('p3').encrypt(Buffer.from('ours, west'));
      expect(record.key.parentKeyMeta?.keyId).toBe('_IK_p3_service_product_us-west-2');
      westDrr = encodeDataRowRecord(record);
      const other = await east.factory.getSession('p4').encrypt(Buffer.from('ours, central'));
      expect(other.key.parentKeyMeta?.keyId).toBe(`_IK_p4_service_product_${OTHER_REGION}`);
      eastDrr = encodeDataRowRecord(other);
    } finally {
      await west.close();
      await east.close();
    }
    const written = await keyItems(table);
    expect(idsOf(written)).toEqual([
      `_IK_p3_service_product_us-west-2`,
      `_IK_p4_service_product_${OTHER_REGION}`,
      `_SK_service_product_${OTHER_REGION}`,
      '_SK_service_product_us-west-2',
    ]);

    const config = oracleConfig(table, { enableRegionSuffix: true });
    const results = oracle(
      config,
      [decryptOp('p3', westDrr), decryptOp('p4', eastDrr), encryptOp('p3', 'rust, west')],
      ORACLE_NO_SELF_HEAL,
    );
    expect(resultData(results[0]).toString()).toBe('ours, west');
    expect(resultData(results[1]).toString()).toBe('ours, central');
    expect(decodeDataRowRecord(resultDrr(results[2])).key.parentKeyMeta).toEqual(decodeDataRowRecord(westDrr).key.parentKeyMeta);
    expect(await keyItems(table)).toEqual(written);
  });
});
