/**
 * A metastore row whose key (SQLite `created` column, DynamoDB `Created` range key) disagrees with its record's own
 * Created. A writer that trusted such a row named an (id, Created) in its new records
 * that no load() finds: the data was lost for every other process. The metastores refuse the row with a
 * MetastoreError instead, and encrypt passes that on without writing a key or producing a record.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { DeleteItemCommand, PutItemCommand, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { MetastoreError, type DataRowRecord, type EnvelopeKeyRecord } from '../../layer/src/index';
import { DynamoDbMetastore } from '../../layer/src/appencryption/metastore/dynamodb-metastore';
import { MemoryMetastore } from '../../layer/src/appencryption/metastore/memory-metastore';
import { SqliteMetastore } from '../../layer/src/appencryption/metastore/sqlite-metastore';
import { testFactory } from '../support/envelope';
import { useDynalite } from '../support/local-aws';
import { rejection } from '../support/rejection';

const SK_ID = '_SK_service_product';
const IK_P1 = '_IK_p1_service_product';
const T0 = 1795858140;
const HOUR = 3600;

type Item = Record<string, AttributeValue>;

/** What every refusal must say, and must not: no key id, no key bytes (errors.ts), no timestamps. */
function expectRefusal(err: Error, kind: RegExp, storedBytes: Buffer[], timestamps: number[]): void {
  expect(err).toBeInstanceOf(MetastoreError);
  expect(err.name).toBe('MetastoreError');
  expect(err.message).toMatch(kind);
  expect(err.message).toMatch(/do not delete/i);
  expect(err.message).not.toMatch(/_(SK|IK)_/);
  for (const bytes of storedBytes) expect(err.message).not.toContain(bytes.toString('base64'));
  for (const t of timestamps) {
    expect(err.message).not.toContain(String(t));
    expect(err.message).not.toContain(new Date(t * 1000).toISOString().slice(0, 19).replace('T', ' '));
  }
}

/** Encrypts one record for p1 with a fresh factory, creating p1's IK and the SK. */
async function seed(metastore: SqliteMetastore | DynamoDbMetastore): Promise<DataRowRecord> {
  const t = testFactory({ metastore });
  try {
    return await t.factory.getSession('p1').encrypt(Buffer.from('before the row was changed'));
  } finally {
    await t.close();
  }
}

/** Encrypt with a fresh factory (a cold process); returns the error and how many stores it attempted. */
async function coldEncrypt(metastore: SqliteMetastore | DynamoDbMetastore, partition: string) {
  const t = testFactory({ metastore });
  try {
    const err = await rejection(t.factory.getSession(partition).encrypt(Buffer.from('after')));
    return { err, stores: t.metastore.calls.store };
  } finally {
    await t.close();
  }
}

/**
 * The property the bug broke, stated without assuming how it is fixed: a record that encrypt returns is readable by
 * another process. On the code before the fix, encrypt succeeded and this decrypt failed with KeyNotFoundError.
 */
async function expectNoUnreadableRecord(open: () => SqliteMetastore | DynamoDbMetastore): Promise<void> {
  const writer = testFactory({ metastore: open() });
  let drr: DataRowRecord | undefined;
  try {
    drr = await writer.factory.getSession('p1').encrypt(Buffer.from('must stay readable'));
  } catch (err) {
    expect(err).toBeInstanceOf(MetastoreError);
  } finally {
    await writer.close();
  }
  if (drr === undefined) return;
  const reader = testFactory({ metastore: open() });
  try {
    expect((await reader.factory.getSession('p1').decrypt(drr)).toString()).toBe('must stay readable');
  } finally {
    await reader.close();
  }
}

async function coldDecrypt(metastore: SqliteMetastore | DynamoDbMetastore, drr: DataRowRecord): Promise<Error> {
  const t = testFactory({ metastore });
  try {
    return await rejection(t.factory.getSession('p1').decrypt(drr));
  } finally {
    await t.close();
  }
}

describe('SQLite: a row whose created column disagrees with its key_record Created', () => {
  let dir: string;
  let fileCount = 0;
  const closers: (() => void)[] = [];

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'metastore-mismatch-'));
  });
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function open(file: string): SqliteMetastore {
    const metastore = new SqliteMetastore(file);
    closers.push(() => metastore.close());
    return metastore;
  }

  function raw(file: string): Database.Database {
    const db = new Database(file);
    closers.push(() => db.close());
    return db;
  }

  interface Row {
    id: string;
    created: unknown;
    key_record: string;
  }

  const allRows = (db: Database.Database) =>
    db.prepare('SELECT id, created, key_record FROM encryption_key ORDER BY id, created').all() as Row[];

  /** Moves a row's created column by `seconds`, as a tool writing local time instead of UTC would. */
  function shiftCreated(db: Database.Database, id: string, seconds: number): void {
    const changed = db
      .prepare("UPDATE encryption_key SET created = datetime(unixepoch(created) + ?, 'unixepoch') WHERE id = ?")
      .run(seconds, id).changes;
    expect(changed).toBe(1);
  }

  const keyBytes = (rows: Row[]) => rows.map((row) => Buffer.from(JSON.parse(row.key_record).Key as string, 'base64'));
  const createdOf = (rows: Row[]) => rows.map((row) => JSON.parse(row.key_record).Created as number);

  it('the latest IK row: encrypt fails with a MetastoreError, stores nothing, produces no record', async () => {
    const file = path.join(dir, `${++fileCount}.db`);
    await seed(open(file));
    const db = raw(file);
    shiftCreated(db, IK_P1, HOUR);
    const before = allRows(db);

    const { err, stores } = await coldEncrypt(open(file), 'p1');
    expectRefusal(err, /an intermediate key row/, keyBytes(before), createdOf(before));
    expect(err.message).toContain('3600 seconds later');
    expect(stores).toBe(0);
    expect(allRows(db)).toEqual(before);
  });

  it('whatever encrypt does with a shifted IK or SK row, it never returns a record another process cannot read', async () => {
    for (const [id, seconds] of [[IK_P1, HOUR], [SK_ID, -HOUR]] as const) {
      const file = path.join(dir, `${++fileCount}.db`);
      await seed(open(file));
      shiftCreated(raw(file), id, seconds);
      await expectNoUnreadableRecord(() => open(file));
    }
  });

  it('the latest SK row: encrypt fails with a MetastoreError for a new partition and for one with an IK', async () => {
    const file = path.join(dir, `${++fileCount}.db`);
    await seed(open(file));
    const db = raw(file);
    shiftCreated(db, SK_ID, -2 * HOUR);
    const before = allRows(db);

    for (const partition of ['p2', 'p1']) {
      const { err, stores } = await coldEncrypt(open(file), partition);
      expectRefusal(err, /a system key row/, keyBytes(before), createdOf(before));
      expect(err.message).toContain('7200 seconds earlier');
      expect(stores).toBe(0);
    }
    expect(allRows(db)).toEqual(before);
  });

  it('load() of a row whose key_record Created was changed: decrypt and encrypt fail with a MetastoreError', async () => {
    const file = path.join(dir, `${++fileCount}.db`);
    const drr = await seed(open(file));
    const db = raw(file);
    const ik = db.prepare('SELECT key_record FROM encryption_key WHERE id = ?').pluck().get(IK_P1) as string;
    const record = JSON.parse(ik) as { Created: number };
    record.Created -= 60;
    db.prepare('UPDATE encryption_key SET key_record = ? WHERE id = ?').run(JSON.stringify(record), IK_P1);
    const before = allRows(db);

    expectRefusal(await coldDecrypt(open(file), drr), /an intermediate key row/, keyBytes(before), createdOf(before));
    const { err, stores } = await coldEncrypt(open(file), 'p1');
    expectRefusal(err, /an intermediate key row/, keyBytes(before), createdOf(before));
    expect(err.message).toContain('60 seconds later');
    expect(stores).toBe(0);
  });

  it('a created column that datetime() did not write (an integer, ISO 8601 text) is refused by loadLatest', async () => {
    const file = path.join(dir, `${++fileCount}.db`);
    const metastore = open(file);
    const db = raw(file);
    const keyRecord = JSON.stringify({ Created: T0, Key: Buffer.alloc(60, 1).toString('base64') });
    for (const created of [T0, '2026-11-28T09:29:00', '2026-11-28 09:29:00.000']) {
      db.prepare('DELETE FROM encryption_key').run();
      db.prepare('INSERT INTO encryption_key (id, created, key_record) VALUES (?, ?, ?)').run(SK_ID, created, keyRecord);
      const err = await rejection(metastore.loadLatest(SK_ID));
      expectRefusal(err, /a system key row/, [Buffer.alloc(60, 1)], [T0]);
      expect(err.message).toMatch(/not 'YYYY-MM-DD HH:MM:SS' text/);
      // The row is invisible to load(), which is why loadLatest must not hand it out.
      expect(await metastore.load(SK_ID, T0)).toBeUndefined();
    }
  });

  it('store() refuses a record whose Created is not the created it is stored under, and writes nothing', async () => {
    const file = path.join(dir, `${++fileCount}.db`);
    const metastore = open(file);
    const record: EnvelopeKeyRecord = { created: T0 + 60, encryptedKey: Buffer.alloc(60, 3) };
    const err = await rejection(metastore.store(SK_ID, T0, record));
    expect(err).toBeInstanceOf(MetastoreError);
    expect(err.message).toMatch(/record's Created differs from the created it is stored under/);
    expect(err.message).not.toContain(String(T0));
    expect(allRows(raw(file))).toEqual([]);
  });
});

describe('DynamoDB: an item whose Created range key disagrees with its KeyRecord Created', () => {
  const local = useDynalite({ tables: [] });
  const newTable = () => local.newTable('Mismatch');

  async function items(table: string): Promise<Item[]> {
    const { Items = [] } = await local.client.send(new ScanCommand({ TableName: table, ConsistentRead: true }));
    return Items.sort((a, b) => `${a.Id.S}@${a.Created.N}`.localeCompare(`${b.Id.S}@${b.Created.N}`));
  }

  /** Re-keys an item under Created + `seconds` (a PutItem with another range key), deleting the original. */
  async function shiftCreated(table: string, id: string, seconds: number): Promise<void> {
    const [item] = (await items(table)).filter((i) => i.Id.S === id);
    await local.client.send(
      new PutItemCommand({ TableName: table, Item: { ...item, Created: { N: String(Number(item.Created.N) + seconds) } } }),
    );
    await local.client.send(new DeleteItemCommand({ TableName: table, Key: { Id: item.Id, Created: item.Created } }));
  }

  const keyBytes = (all: Item[]) => all.map((i) => Buffer.from(i.KeyRecord.M!.Key.S!, 'base64'));
  const createdOf = (all: Item[]) => all.map((i) => Number(i.KeyRecord.M!.Created.N));

  it('the latest IK item: encrypt fails with a MetastoreError, stores nothing, produces no record', async () => {
    const table = await newTable();
    await seed(new DynamoDbMetastore(local.client, { tableName: table }));
    await shiftCreated(table, IK_P1, HOUR);
    const before = await items(table);

    const { err, stores } = await coldEncrypt(new DynamoDbMetastore(local.client, { tableName: table }), 'p1');
    expectRefusal(err, /an intermediate key item/, keyBytes(before), createdOf(before));
    expect(err.message).toContain(`table "${table}"`);
    expect(err.message).toContain('3600 seconds later');
    expect(stores).toBe(0);
    expect(await items(table)).toEqual(before);
  });

  it('whatever encrypt does with a re-keyed IK or SK item, it never returns a record another process cannot read', async () => {
    for (const [id, seconds] of [[IK_P1, HOUR], [SK_ID, -HOUR]] as const) {
      const table = await newTable();
      await seed(new DynamoDbMetastore(local.client, { tableName: table }));
      await shiftCreated(table, id, seconds);
      await expectNoUnreadableRecord(() => new DynamoDbMetastore(local.client, { tableName: table }));
    }
  });

  it('the latest SK item: encrypt fails with a MetastoreError for a new partition and for one with an IK', async () => {
    const table = await newTable();
    await seed(new DynamoDbMetastore(local.client, { tableName: table }));
    await shiftCreated(table, SK_ID, HOUR);
    const before = await items(table);

    for (const partition of ['p2', 'p1']) {
      const { err, stores } = await coldEncrypt(new DynamoDbMetastore(local.client, { tableName: table }), partition);
      expectRefusal(err, /a system key item/, keyBytes(before), createdOf(before));
      expect(stores).toBe(0);
    }
    expect(await items(table)).toEqual(before);
  });

  it('load() of an item whose KeyRecord Created was changed: decrypt and encrypt fail with a MetastoreError', async () => {
    const table = await newTable();
    const drr = await seed(new DynamoDbMetastore(local.client, { tableName: table }));
    const [ik] = (await items(table)).filter((i) => i.Id.S === IK_P1);
    const keyRecord = { ...ik.KeyRecord.M!, Created: { N: String(Number(ik.Created.N) - 60) } };
    await local.client.send(new PutItemCommand({ TableName: table, Item: { ...ik, KeyRecord: { M: keyRecord } } }));
    const before = await items(table);

    const metastore = new DynamoDbMetastore(local.client, { tableName: table });
    expectRefusal(await coldDecrypt(metastore, drr), /an intermediate key item/, keyBytes(before), createdOf(before));
    const { err, stores } = await coldEncrypt(metastore, 'p1');
    expectRefusal(err, /an intermediate key item/, keyBytes(before), createdOf(before));
    expect(stores).toBe(0);
  });

  it('store() refuses a record whose Created is not the Created it is stored under, and writes nothing', async () => {
    const table = await newTable();
    const metastore = new DynamoDbMetastore(local.client, { tableName: table });
    const err = await rejection(metastore.store(SK_ID, T0, { created: T0 - 60, encryptedKey: Buffer.alloc(60, 3) }));
    expect(err).toBeInstanceOf(MetastoreError);
    expect(err.message).toMatch(/record's Created differs from the Created it is stored under/);
    expect(err.message).not.toContain(String(T0));
    expect(await items(table)).toEqual([]);
  });
});

describe('MemoryMetastore', () => {
  it('store() refuses a record whose Created is not the created it is stored under, and keeps nothing', async () => {
    const metastore = new MemoryMetastore();
    const err = await rejection(metastore.store(SK_ID, T0, { created: T0 + 1, encryptedKey: Buffer.alloc(60, 3) }));
    expect(err).toBeInstanceOf(MetastoreError);
    expect(err.message).toMatch(/record's Created differs from the created it is stored under/);
    expect(metastore.rows()).toEqual([]);
    expect(await metastore.loadLatest(SK_ID)).toBeUndefined();
  });
});
