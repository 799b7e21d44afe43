/**
 * The DynamoDB metastore against dynalite (a real DynamoDB-protocol server, in memory) through the real SDK over
 * HTTP: Asherah's item format (docs/wire-format.md §3.4), reading what Java writes (§10), errors, region suffixes
 * (§1.2), a SessionFactory end to end, and throttling through a local proxy that answers like DynamoDB does.
 */
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CreateTableCommand,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import {
  ConfigError,
  decodeDataRowRecord,
  encodeDataRowRecord,
  InvalidRecordError,
  MetastoreError,
  type EnvelopeKeyRecord,
} from '../../layer/src/index';
import { DynamoDbMetastore } from '../../layer/src/appencryption/metastore/dynamodb-metastore';
import { testFactory } from '../support/envelope';
import { useDynalite } from '../support/local-aws';
import { runWithoutAwsSdk } from '../support/without-aws-sdk';

const SK_ID = '_SK_service_product';
const IK_ID = '_IK_partition_service_product';
const T0 = 1795858140; // a whole minute, as SK/IK Created always is (docs/wire-format.md §1.3)

const local = useDynalite({ tables: [] });

/** A fresh table per test, so that scans see only that test's items. */
const newTable = () => local.newTable('EncryptionKey');

async function rawItem(tableName: string, id: string, created: number) {
  return (await local.client.send(new GetItemCommand({ TableName: tableName, Key: { Id: { S: id }, Created: { N: String(created) } } }))).Item;
}

async function putRaw(tableName: string, item: Record<string, AttributeValue>): Promise<void> {
  await local.client.send(new PutItemCommand({ TableName: tableName, Item: item }));
}

async function scanIds(tableName: string): Promise<string[]> {
  const { Items = [] } = await local.client.send(new ScanCommand({ TableName: tableName, ConsistentRead: true }));
  return Items.map((item) => `${item.Id.S}@${item.Created.N}`).sort();
}

function skRecord(created: number, fill = 1): EnvelopeKeyRecord {
  return { created, encryptedKey: Buffer.alloc(60, fill) };
}

function ikRecord(created: number, skCreated: number, fill = 2): EnvelopeKeyRecord {
  return { created, encryptedKey: Buffer.alloc(60, fill), parentKeyMeta: { keyId: SK_ID, created: skCreated } };
}

const b64 = (fill: number) => Buffer.alloc(60, fill).toString('base64');

/** Counts the DynamoDB operations a client sends (one per command, before the SDK's retries). */
function countOperations(target: DynamoDBClient): Record<string, number> {
  const counts: Record<string, number> = {};
  target.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? 'unknown';
      counts[name] = (counts[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'countOperations' },
  );
  return counts;
}

describe('DynamoDbMetastore on dynalite', () => {
  test('an SK round-trips, stored as exactly Id (S), Created (N) and a KeyRecord map of Created (N) and Key (S)', async () => {
    const table = await newTable();
    const metastore = new DynamoDbMetastore(local.client, { tableName: table });
    expect(await metastore.store(SK_ID, T0, skRecord(T0))).toBe(true);
    expect(await metastore.load(SK_ID, T0)).toEqual(skRecord(T0));
    expect(await metastore.loadLatest(SK_ID)).toEqual(skRecord(T0));
    // No Revoked (Go omits false), no ParentKeyMeta (SKs have none), nothing else.
    expect(await rawItem(table, SK_ID, T0)).toStrictEqual({
      Id: { S: SK_ID },
      Created: { N: String(T0) },
      KeyRecord: { M: { Created: { N: String(T0) }, Key: { S: b64(1) } } },
    });
  });

  test('an IK round-trips with ParentKeyMeta as a map of KeyId (S) and Created (N); Revoked is written only when true', async () => {
    const table = await newTable();
    const metastore = new DynamoDbMetastore(local.client, { tableName: table });
    expect(await metastore.store(IK_ID, T0, ikRecord(T0, T0 - 60))).toBe(true);
    expect(await metastore.load(IK_ID, T0)).toEqual(ikRecord(T0, T0 - 60));
    expect(await rawItem(table, IK_ID, T0)).toStrictEqual({
      Id: { S: IK_ID },
      Created: { N: String(T0) },
      KeyRecord: {
        M: {
          Created: { N: String(T0) },
          Key: { S: b64(2) },
          ParentKeyMeta: { M: { KeyId: { S: SK_ID }, Created: { N: String(T0 - 60) } } },
        },
      },
    });
    const revoked = { ...ikRecord(T0 + 60, T0), revoked: true };
    expect(await metastore.store(IK_ID, T0 + 60, revoked)).toBe(true);
    expect((await rawItem(table, IK_ID, T0 + 60))?.KeyRecord.M?.Revoked).toStrictEqual({ BOOL: true });
    expect(await metastore.load(IK_ID, T0 + 60)).toEqual(revoked);
  });

  test('loadLatest returns the record with the greatest Created, whatever the order of writes; absent keys are undefined', async () => {
    const table = await newTable();
    const metastore = new DynamoDbMetastore(local.client, { tableName: table });
    expect(await metastore.loadLatest(IK_ID)).toBeUndefined();
    for (const [created, fill] of [[T0, 1], [T0 + 120, 3], [T0 + 60, 2]]) {
      expect(await metastore.store(IK_ID, created, ikRecord(created, T0, fill))).toBe(true);
    }
    // An id that extends this one (a region-suffixed IK) is another hash key, not a newer record of this one.
    await metastore.store(`${IK_ID}_us-west-2`, T0 + 600, ikRecord(T0 + 600, T0, 9));
    expect(await metastore.loadLatest(IK_ID)).toEqual(ikRecord(T0 + 120, T0, 3));
    expect(await metastore.load(IK_ID, T0 + 60)).toEqual(ikRecord(T0 + 60, T0, 2));
    expect(await metastore.load(IK_ID, T0 + 1)).toBeUndefined();
    expect(await metastore.load('_IK_nobody_service_product', T0)).toBeUndefined();
  });

  test('a second store of the same (Id, Created) returns false and leaves the first item as it was', async () => {
    const table = await newTable();
    const metastore = new DynamoDbMetastore(local.client, { tableName: table });
    expect(await metastore.store(IK_ID, T0, ikRecord(T0, T0, 1))).toBe(true);
    expect(await metastore.store(IK_ID, T0, ikRecord(T0, T0, 7))).toBe(false);
    expect((await rawItem(table, IK_ID, T0))?.KeyRecord.M?.Key).toStrictEqual({ S: b64(1) });
    expect(await metastore.load(IK_ID, T0)).toEqual(ikRecord(T0, T0, 1));
    expect(await scanIds(table)).toEqual([`${IK_ID}@${T0}`]);
  });

  test('items as Java writes them (an explicit Revoked false, every number an N string) are read', async () => {
    const table = await newTable();
    const metastore = new DynamoDbMetastore(local.client, { tableName: table });
    // The shape of Java's DynamoDbMetastoreImpl (KeyRecord via toDynamoDbItem, docs/wire-format.md §3.2, §10).
    await putRaw(table, {
      Id: { S: IK_ID },
      Created: { N: '1551980041' },
      KeyRecord: {
        M: {
          Revoked: { BOOL: false },
          ParentKeyMeta: { M: { KeyId: { S: '_SK_api_ecomm' }, Created: { N: '1551980040' } } },
          Key: { S: b64(5) },
          Created: { N: '1551980041' },
        },
      },
    });
    expect(await metastore.load(IK_ID, 1551980041)).toStrictEqual({
      created: 1551980041,
      encryptedKey: Buffer.alloc(60, 5),
      parentKeyMeta: { keyId: '_SK_api_ecomm', created: 1551980040 },
    });
    await putRaw(table, {
      Id: { S: SK_ID },
      Created: { N: '1551980040' },
      KeyRecord: { M: { Revoked: { BOOL: true }, Key: { S: b64(6) }, Created: { N: '1551980040' } } },
    });
    expect(await metastore.loadLatest(SK_ID)).toEqual({ ...skRecord(1551980040, 6), revoked: true });
    // A NULL Revoked reads as false, as Go reads a JSON null.
    await putRaw(table, {
      Id: { S: SK_ID },
      Created: { N: '1551980100' },
      KeyRecord: { M: { Revoked: { NULL: true }, Key: { S: b64(7) }, Created: { N: '1551980100' } } },
    });
    expect(await metastore.loadLatest(SK_ID)).toStrictEqual(skRecord(1551980100, 7));
  });

  const malformed: [string, AttributeValue | undefined, RegExp][] = [
    ['no KeyRecord', undefined, /KeyRecord of an intermediate key item is missing/],
    ['KeyRecord as a JSON string', { S: `{"Created":${T0},"Key":"${b64(1)}"}` }, /is an attribute of type S, not a map/],
    ['Created as a string', { M: { Created: { S: String(T0) }, Key: { S: b64(1) } } }, /Created must be a non-negative integer .*got a string/],
    ['a fractional Created', { M: { Created: { N: '1795858140.5' }, Key: { S: b64(1) } } }, /Created must be .*fractional/],
    ['no Created', { M: { Key: { S: b64(1) } } }, /Created is missing/],
    ['unpadded base64', { M: { Created: { N: String(T0) }, Key: { S: b64(1).slice(0, -2) + 'A' } } }, /Key must be standard base64/],
    ['Key as binary', { M: { Created: { N: String(T0) }, Key: { B: Buffer.alloc(60, 1) } } }, /Key must be a base64 string/],
    ['ParentKeyMeta without KeyId', { M: { Created: { N: String(T0) }, Key: { S: b64(1) }, ParentKeyMeta: { M: { Created: { N: String(T0) } } } } }, /ParentKeyMeta\.KeyId is missing/],
    ['Revoked as a string', { M: { Created: { N: String(T0) }, Key: { S: b64(1) }, Revoked: { S: 'true' } } }, /Revoked must be true or false/],
  ];
  test.each(malformed)('an item with %s is an InvalidRecordError naming the table, the key id and the field', async (_name, keyRecord, message) => {
    const table = await newTable();
    const metastore = new DynamoDbMetastore(local.client, { tableName: table });
    await putRaw(table, { Id: { S: IK_ID }, Created: { N: String(T0) }, ...(keyRecord && { KeyRecord: keyRecord }) });
    for (const read of [() => metastore.load(IK_ID, T0), () => metastore.loadLatest(IK_ID)]) {
      const err = await read().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidRecordError);
      expect((err as Error).message).toContain(`DynamoDB metastore table "${table}"`);
      expect((err as Error).message).toMatch(message);
    }
  });

  test('a missing table is a MetastoreError that says how to create it, for every operation', async () => {
    const metastore = new DynamoDbMetastore(local.client, { tableName: 'NoSuchTable' });
    for (const operation of [
      () => metastore.load(SK_ID, T0),
      () => metastore.loadLatest(SK_ID),
      () => metastore.store(SK_ID, T0, skRecord(T0)),
    ]) {
      const err = await operation().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MetastoreError);
      expect((err as Error).message).toMatch(/table "NoSuchTable": could not .*ResourceNotFoundException.*does not exist in us-west-2/);
      expect((err as Error).message).toContain('--table-name NoSuchTable --attribute-definitions AttributeName=Id,AttributeType=S');
      expect(((err as Error).cause as Error).name).toBe('ResourceNotFoundException');
    }
  });

  test.each([
    ['keyed by Id alone', [{ AttributeName: 'Id', KeyType: 'HASH' }], [{ AttributeName: 'Id', AttributeType: 'S' }]],
    [
      'with Created a String',
      [{ AttributeName: 'Id', KeyType: 'HASH' }, { AttributeName: 'Created', KeyType: 'RANGE' }],
      [{ AttributeName: 'Id', AttributeType: 'S' }, { AttributeName: 'Created', AttributeType: 'S' }],
    ],
    [
      'with another sort key',
      [{ AttributeName: 'Id', KeyType: 'HASH' }, { AttributeName: 'Version', KeyType: 'RANGE' }],
      [{ AttributeName: 'Id', AttributeType: 'S' }, { AttributeName: 'Version', AttributeType: 'N' }],
    ],
  ] as const)('a table %s is refused before the first write, with the schema to use; nothing is written', async (_, keySchema, attributes) => {
    const table = `WrongSchema_${keySchema.length}_${attributes[attributes.length - 1].AttributeType}_${keySchema[keySchema.length - 1].AttributeName}`;
    await local.client.send(
      new CreateTableCommand({
        TableName: table,
        KeySchema: keySchema.map((k) => ({ ...k })),
        AttributeDefinitions: attributes.map((a) => ({ ...a })),
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    // Directly, and through a SessionFactory (which would otherwise write the SK and IK and encrypt).
    const metastore = new DynamoDbMetastore(local.client, { tableName: table });
    const direct = await metastore.store(SK_ID, T0, skRecord(T0)).catch((e: unknown) => e);
    const t = testFactory({ metastore: new DynamoDbMetastore(local.client, { tableName: table }) });
    const viaSession = await t.factory.getSession('p1').encrypt(Buffer.from('lost')).catch((e: unknown) => e);
    await t.close();
    for (const err of [direct, viaSession]) {
      expect(err).toBeInstanceOf(MetastoreError);
      expect((err as Error).message).toMatch(
        new RegExp(`table "${table}": could not check the table's key schema before the first write \\(GetItem\\): the table's key schema is not Asherah's \\(ValidationException: .*\\); nothing was written\\. Asherah needs partition key Id \\(String, HASH\\) and sort key Created \\(Number, RANGE\\)`),
      );
      expect((err as Error).message).toContain('--key-schema AttributeName=Id,KeyType=HASH AttributeName=Created,KeyType=RANGE');
    }
    const { Items = [] } = await local.client.send(new ScanCommand({ TableName: table, ConsistentRead: true }));
    expect(Items).toEqual([]);
  });

  test('an unreachable endpoint is a MetastoreError that says DynamoDB could not be reached', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    await once(closed, 'close');
    const unreachable = local.dynamo.client('us-west-2', { endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1 });
    const err = await new DynamoDbMetastore(unreachable).loadLatest(SK_ID).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetastoreError);
    expect((err as Error).message).toMatch(/could not load the latest key record \(Query\).*could not reach DynamoDB in us-west-2/);
  });

  test('created must be a non-negative safe integer, and options are checked when the metastore is built', async () => {
    const table = await newTable();
    const metastore = new DynamoDbMetastore(local.client, { tableName: table });
    for (const created of [-60, 1.5, Number.NaN, 2 ** 53]) {
      await expect(metastore.load(SK_ID, created)).rejects.toThrow(MetastoreError);
      await expect(metastore.store(SK_ID, created, skRecord(T0))).rejects.toThrow(MetastoreError);
    }
    await expect(metastore.store(SK_ID, T0, skRecord(-1))).rejects.toThrow(InvalidRecordError);
    expect(await scanIds(table)).toEqual([]);
    expect(new DynamoDbMetastore(local.client).tableName).toBe('EncryptionKey');
    expect(new DynamoDbMetastore(local.client, { tableName: '' }).tableName).toBe('EncryptionKey'); // as Go and Rust
    expect(() => new DynamoDbMetastore(local.client, { tableName: 'a b' })).toThrow(ConfigError);
    expect(() => new DynamoDbMetastore(local.client, { regionSuffix: '' })).toThrow(ConfigError);
    expect(() => new DynamoDbMetastore({} as DynamoDBClient)).toThrow(/needs a DynamoDBClient/);
  });
});

describe('packaging: the layer without the AWS SDK', () => {
  test('the public index and this module load where @aws-sdk is absent; only constructing a DynamoDbMetastore needs it', () => {
    const out = runWithoutAwsSdk(`
      const index = require('./layer/src/index.ts');
      const { DynamoDbMetastore } = require('./layer/src/appencryption/metastore/dynamodb-metastore.ts');
      let error;
      try { new DynamoDbMetastore({ send() {}, config: {} }); } catch (err) { error = { name: err.name, message: err.message }; }
      console.log(JSON.stringify({ index: typeof index.SessionFactory, metastore: typeof DynamoDbMetastore, error }));
    `);
    expect(out).toEqual({
      index: 'function',
      metastore: 'function',
      error: { name: 'ConfigError', message: expect.stringContaining('needs @aws-sdk/client-dynamodb (AWS SDK v3), which is not installed here') },
    });
  });
});

describe('region suffix (docs/wire-format.md §1.2)', () => {
  test('regionSuffix: true is the DynamoDB client\'s region, resolved once by create(), and suffixes every key id written', async () => {
    const table = await newTable();
    const regional = local.dynamo.client('eu-central-1');
    const metastore = await DynamoDbMetastore.create(regional, { tableName: table, regionSuffix: true });
    expect(metastore.regionSuffix()).toBe('eu-central-1');
    const t = testFactory({ metastore });
    try {
      const drr = await t.factory.getSession('p1').encrypt(Buffer.from('suffixed'));
      expect(drr.key.parentKeyMeta?.keyId).toBe('_IK_p1_service_product_eu-central-1');
      expect((await t.factory.getSession('p1').decrypt(drr)).toString()).toBe('suffixed');
    } finally {
      await t.close();
    }
    const ids = await scanIds(table);
    expect(ids.map((id) => id.split('@')[0])).toEqual(['_IK_p1_service_product_eu-central-1', '_SK_service_product_eu-central-1']);
  });

  test('a string is the suffix itself; false or nothing is no suffix; true needs create(), and a client without a region is a ConfigError', async () => {
    expect(new DynamoDbMetastore(local.client, { regionSuffix: 'ap-south-1' }).regionSuffix()).toBe('ap-south-1');
    expect(new DynamoDbMetastore(local.client, { regionSuffix: false }).regionSuffix()).toBeUndefined();
    expect(new DynamoDbMetastore(local.client).regionSuffix()).toBeUndefined();
    expect((await DynamoDbMetastore.create(local.client)).regionSuffix()).toBeUndefined();
    expect(() => new DynamoDbMetastore(local.client, { regionSuffix: true })).toThrow(/DynamoDbMetastore\.create/);
    const noRegion = local.dynamo.client('us-west-2', {
      region: (): Promise<string> => Promise.reject(new Error('Region is missing')),
    });
    await expect(DynamoDbMetastore.create(noRegion, { regionSuffix: true })).rejects.toThrow(ConfigError);
  });
});

describe('a SessionFactory on the DynamoDB metastore', () => {
  test('encrypts and decrypts end to end; KMS and DynamoDB calls per cold and warm operation', async () => {
    const table = await newTable();
    const counted = local.dynamo.client();
    const operations = countOperations(counted);
    const metastore = new DynamoDbMetastore(counted, { tableName: table });
    const calls = () => ({ ...operations });
    const since = (before: Record<string, number>) =>
      Object.fromEntries(Object.entries(operations).map(([name, n]) => [name, n - (before[name] ?? 0)]).filter(([, n]) => n !== 0));

    const writer = testFactory({ metastore });
    let drr: string;
    try {
      let before = calls();
      const record = await writer.factory.getSession('p1').encrypt(Buffer.from('hello dynamodb'));
      // Cold encrypt on an empty table: latest IK (none), latest SK (none), KMS wraps a new SK, the key-schema check
      // before the first write, store SK, store IK.
      expect(since(before)).toEqual({ QueryCommand: 2, GetItemCommand: 1, PutItemCommand: 2 });
      expect(writer.factory.metrics()).toMatchObject({ kmsEncryptKeyCalls: 1, kmsDecryptKeyCalls: 0, metastoreCalls: 4 });
      drr = encodeDataRowRecord(record);

      before = calls();
      await writer.factory.getSession('p1').encrypt(Buffer.from('again'));
      expect((await writer.factory.getSession('p1').decrypt(record)).toString()).toBe('hello dynamodb');
      expect(since(before)).toEqual({}); // warm: the IK and SK are cached
      expect(writer.factory.metrics()).toMatchObject({ kmsCalls: 1, metastoreCalls: 4 });

      before = calls();
      await writer.factory.getSession('p2').encrypt(Buffer.from('second partition'));
      expect(since(before)).toEqual({ QueryCommand: 1, PutItemCommand: 1 }); // a new IK under the cached SK
      expect(writer.factory.metrics()).toMatchObject({ kmsCalls: 1 });
    } finally {
      await writer.close();
    }

    // A new factory (a cold Lambda environment) reading what the first one wrote.
    const reader = testFactory({ metastore });
    try {
      let before = calls();
      expect((await reader.factory.getSession('p1').decrypt(decodeDataRowRecord(drr))).toString()).toBe('hello dynamodb');
      expect(since(before)).toEqual({ GetItemCommand: 2 }); // the IK and the SK by (Id, Created)
      expect(reader.factory.metrics()).toMatchObject({ kmsDecryptKeyCalls: 1, kmsEncryptKeyCalls: 0, metastoreLoads: 2 });

      before = calls();
      await reader.factory.getSession('p1').decrypt(decodeDataRowRecord(drr));
      expect(since(before)).toEqual({}); // warm decrypt

      before = calls();
      await reader.factory.getSession('p1').encrypt(Buffer.from('reader writes'));
      expect(since(before)).toEqual({ QueryCommand: 1 }); // the latest IK; its SK is already cached
      expect(reader.factory.metrics()).toMatchObject({ kmsCalls: 1, metastoreStores: 0 });
    } finally {
      await reader.close();
    }

    // A cold environment whose first operation is an encrypt for a partition that has keys (the usual Lambda cold
    // start): the latest IK, then its SK by (Id, Created), one KMS decrypt; nothing stored.
    const coldWriter = testFactory({ metastore });
    try {
      const before = calls();
      await coldWriter.factory.getSession('p2').encrypt(Buffer.from('cold writer'));
      expect(since(before)).toEqual({ QueryCommand: 1, GetItemCommand: 1 });
      expect(coldWriter.factory.metrics()).toMatchObject({ kmsDecryptKeyCalls: 1, kmsEncryptKeyCalls: 0, metastoreStores: 0 });
    } finally {
      await coldWriter.close();
    }
    expect((await scanIds(table)).map((id) => id.split('@')[0])).toEqual([
      '_IK_p1_service_product',
      '_IK_p2_service_product',
      '_SK_service_product',
    ]);
  });
});

/**
 * A local HTTP proxy in front of dynalite that answers the first `failures` requests (of operation `only`, if
 * given) with a DynamoDB error (HTTP 400 JSON, as the service sends it) and forwards the rest.
 */
async function faultyProxy(target: string, failures: number, errorType: string, message: string, only?: string) {
  const seen: string[] = [];
  let remaining = failures;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const operation = String(req.headers['x-amz-target'] ?? '').replace('DynamoDB_20120810.', '');
      if (remaining > 0 && (only === undefined || operation === only)) {
        remaining--;
        seen.push(`${operation}:${errorType}`);
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': `proxy-${seen.length}` });
        res.end(JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${errorType}`, message }));
        return;
      }
      seen.push(operation);
      const upstream = httpRequest(`${target}${req.url ?? '/'}`, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 500, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', (err) => res.destroy(err));
      upstream.end(Buffer.concat(chunks));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

const THROTTLED = 'ProvisionedThroughputExceededException';
const THROTTLE_MESSAGE = 'The level of configured provisioned throughput for the table was exceeded.';

describe('errors DynamoDB returns, through a proxy', () => {
  test('throttling that clears within the SDK\'s retries is invisible: the store succeeds', async () => {
    const table = await newTable();
    const proxy = await faultyProxy(local.dynamo.endpoint, 2, THROTTLED, THROTTLE_MESSAGE, 'PutItem');
    try {
      const throttled = local.dynamo.client('us-west-2', { endpoint: proxy.endpoint, maxAttempts: 3 });
      const metastore = new DynamoDbMetastore(throttled, { tableName: table });
      expect(await metastore.store(SK_ID, T0, skRecord(T0))).toBe(true);
      // The key-schema check (a GetItem), then the put, throttled twice.
      expect(proxy.seen).toEqual(['GetItem', `PutItem:${THROTTLED}`, `PutItem:${THROTTLED}`, 'PutItem']);
      expect(await metastore.load(SK_ID, T0)).toEqual(skRecord(T0));
    } finally {
      await proxy.close();
    }
  });

  test('throttling that never clears is a MetastoreError after the SDK\'s attempts, and nothing is written', async () => {
    const table = await newTable();
    const proxy = await faultyProxy(local.dynamo.endpoint, Number.POSITIVE_INFINITY, THROTTLED, THROTTLE_MESSAGE, 'PutItem');
    try {
      const throttled = local.dynamo.client('us-west-2', { endpoint: proxy.endpoint, maxAttempts: 2 });
      const metastore = new DynamoDbMetastore(throttled, { tableName: table });
      const err = await metastore.store(SK_ID, T0, skRecord(T0)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MetastoreError);
      expect((err as Error).message).toMatch(
        new RegExp(`could not store a key record \\(PutItem\\) after 2 attempts \\(${THROTTLED}: ${THROTTLE_MESSAGE}\\); DynamoDB throttled`),
      );
      expect(((err as Error).cause as Error).name).toBe(THROTTLED);
      expect(proxy.seen).toEqual(['GetItem', `PutItem:${THROTTLED}`, `PutItem:${THROTTLED}`]);
    } finally {
      await proxy.close();
    }
    expect(await rawItem(table, SK_ID, T0)).toBeUndefined();
    expect(await scanIds(table)).toEqual([]);
  });

  test('access denied is a MetastoreError that names the permissions to grant', async () => {
    const table = await newTable();
    const denial =
      'User: arn:aws:sts::123456789012:assumed-role/fn/fn is not authorized to perform: dynamodb:Query on resource: ' +
      `arn:aws:dynamodb:us-west-2:123456789012:table/${table}`;
    const proxy = await faultyProxy(local.dynamo.endpoint, 1, 'AccessDeniedException', denial);
    try {
      const denied = local.dynamo.client('us-west-2', { endpoint: proxy.endpoint });
      const err = await new DynamoDbMetastore(denied, { tableName: table }).loadLatest(SK_ID).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MetastoreError);
      expect((err as Error).message).toContain(`(AccessDeniedException: ${denial}); access denied: grant`);
      expect((err as Error).message).toContain('dynamodb:GetItem, dynamodb:PutItem and dynamodb:Query');
      expect(proxy.seen).toEqual(['Query:AccessDeniedException']); // not retried
    } finally {
      await proxy.close();
    }
  });
});
