/**
 * Property tests over what a metastore may find in its table: arbitrary row contents, written straight into a real
 * SQLite file (the metastore's own table) and into dynalite (a real DynamoDB-protocol server), then read through
 * load() and loadLatest(). Whatever the row holds:
 *   - every outcome is a record, undefined, or an InvalidRecordError / MetastoreError, never a TypeError or a
 *     SyntaxError, and no message contains the key id;
 *   - a record returned by loadLatest(id) is found again by load(id, record.created) (a writer names that
 *     (id, Created) in the records it encrypts);
 *   - a record returned by load(id, created) has that created.
 * And store() only ever writes what load() returns unchanged.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { AsherahError } from '../../layer/src/errors';
import { MetastoreError } from '../../layer/src/appencryption/errors';
import { DynamoDbMetastore } from '../../layer/src/appencryption/metastore/dynamodb-metastore';
import { MemoryMetastore } from '../../layer/src/appencryption/metastore/memory-metastore';
import { SqliteMetastore } from '../../layer/src/appencryption/metastore/sqlite-metastore';
import type { EnvelopeKeyRecord } from '../../layer/src/appencryption/record-codec';
import { useDynalite } from '../support/local-aws';

const SK_ID = '_SK_service_product';
const IK_ID = '_IK_partition-7f3a_service_product';
const T0 = 1795858140;
/** '9999-12-31 23:59:59', the last second SQLite's datetime() represents. */
const MAX_CREATED = 253402300799;
const SEED = 20260807;

type Metastore = SqliteMetastore | DynamoDbMetastore | MemoryMetastore;
type Outcome<T> = { value: T } | { error: Error };

/** Runs one metastore call; an error must be one of the named classes and must not name the key id. */
async function outcome<T>(call: () => Promise<T>, id: string): Promise<Outcome<T>> {
  try {
    return { value: await call() };
  } catch (err) {
    if (!(err instanceof AsherahError) || !['InvalidRecordError', 'MetastoreError'].includes(err.name)) {
      throw new Error(`expected a record, undefined or a named error, got ${String(err)}`, { cause: err });
    }
    expect(err.message).not.toContain(id);
    return { error: err };
  }
}

function expectWellFormed(record: EnvelopeKeyRecord): void {
  expect(Number.isSafeInteger(record.created) && record.created >= 0).toBe(true);
  expect(Buffer.isBuffer(record.encryptedKey)).toBe(true);
  if (record.parentKeyMeta !== undefined) {
    expect(typeof record.parentKeyMeta.keyId).toBe('string');
    expect(Number.isSafeInteger(record.parentKeyMeta.created) && record.parentKeyMeta.created >= 0).toBe(true);
  }
  expect(record.revoked === undefined || record.revoked === true).toBe(true);
}

/** The properties of the header, for one id whose rows were just written; `candidates` are created values to load. */
async function checkReads(metastore: Metastore, id: string, candidates: number[]): Promise<void> {
  const latest = await outcome(() => metastore.loadLatest(id), id);
  const tried = new Set(candidates);
  if ('value' in latest && latest.value !== undefined) {
    expectWellFormed(latest.value);
    tried.add(latest.value.created);
    // The row loadLatest handed out is the one load() finds by the record's own Created.
    const again = await outcome(() => metastore.load(id, latest.value!.created), id);
    expect(again).toEqual({ value: latest.value });
  }
  for (const created of tried) {
    const loaded = await outcome(() => metastore.load(id, created), id);
    if ('value' in loaded && loaded.value !== undefined) {
      expectWellFormed(loaded.value);
      expect(loaded.value.created).toBe(created);
    }
  }
}

// ---- values a record's fields may hold --------------------------------------------------------------------------

const seconds = fc.oneof(
  fc.constantFrom(0, T0, T0 + 60, T0 - 3600, MAX_CREATED, MAX_CREATED + 1),
  fc.integer({ min: 0, max: MAX_CREATED }),
);
/**
 * A field name as Go would match it (any case), or a near miss, or a name that is special to JavaScript. No
 * '__proto__' in DynamoDB maps: dynalite rejects an item that has one.
 */
const fieldName = (canonical: string, proto = true) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constant(canonical) },
    fc.constantFrom(canonical.toLowerCase(), canonical.toUpperCase(), `${canonical}_`, 'constructor', ...(proto ? ['__proto__'] : [])),
  );
const extraNames = (proto = true) =>
  fc.oneof(fc.string({ minLength: 1, maxLength: 6 }), fc.constantFrom('toString', 'hasOwnProperty', ...(proto ? ['__proto__'] : [])));
const base64 = fc.uint8Array({ minLength: 1, maxLength: 48 }).map((bytes) => Buffer.from(bytes).toString('base64'));
const badBase64 = fc.oneof(
  base64.map((text) => text.replace(/=+$/, '')),
  base64.map((text) => `${text}-_`),
  base64.map((text) => `=${text}`),
  fc.string({ minLength: 1, maxLength: 10 }),
);

/** Picks the present fields: a pair [name, value] or null for an absent field. */
function fieldsToObject<V>(fields: ([string, V] | null)[], extra: [string, V][]): Record<string, V> {
  const object: Record<string, V> = {};
  for (const field of [...extra, ...fields]) {
    if (field !== null) Object.defineProperty(object, field[0], { value: field[1], enumerable: true, writable: true, configurable: true });
  }
  return object;
}

// ---- SQLite rows ------------------------------------------------------------------------------------------------

// Weighted towards valid values, so that a good share of rows decode and the mismatch check is what decides.
const jsonCreated: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 20, arbitrary: seconds },
  fc.constantFrom(-60, 1.5, 2 ** 53, 1e300, -0, null, true, '1795858140', [], {}),
  fc.string({ maxLength: 12 }),
);
const jsonKey: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 20, arbitrary: base64 },
  badBase64,
  fc.constantFrom('', null, 42, [1, 2], { Key: 'AAAA' }),
);
const jsonParent: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        fc.option(
          fc.tuple(fieldName('KeyId'), fc.oneof({ weight: 6, arbitrary: fc.constant(SK_ID) }, fc.string(), fc.integer(), fc.constant(null))),
          { freq: 8 },
        ),
        fc.option(fc.tuple(fieldName('Created'), jsonCreated), { freq: 8 }),
      )
      .map(([keyId, created]) => fieldsToObject<unknown>([keyId, created], [])),
  },
  fc.constantFrom(null, 'parent', 7, [], true),
);
const jsonRevoked: fc.Arbitrary<unknown> = fc.constantFrom(true, false, null, 'true', 1, 0, {});

const jsonRecord = fc
  .tuple(
    fc.option(fc.tuple(fieldName('Created'), jsonCreated), { freq: 12 }),
    fc.option(fc.tuple(fieldName('Key'), jsonKey), { freq: 12 }),
    fc.option(fc.tuple(fieldName('ParentKeyMeta'), jsonParent), { freq: 2 }),
    fc.option(fc.tuple(fieldName('Revoked'), jsonRevoked), { freq: 1 }),
    fc.array(fc.tuple(extraNames(), fc.jsonValue({ maxDepth: 2 })), { maxLength: 2 }),
  )
  .map(([created, key, parent, revoked, extra]) => fieldsToObject<unknown>([created, key, parent, revoked], extra));

/** The text datetime(s, 'unixepoch') gives. */
const datetimeText = (s: number) => new Date(s * 1000).toISOString().slice(0, 19).replace('T', ' ');
const inRange = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= MAX_CREATED;
/** The record's Created as the decoder would find it (any case of the name; the last one wins, as in Go). */
function createdOf(record: Record<string, unknown>): unknown {
  let found: unknown;
  for (const name of Object.keys(record)) if (name.toUpperCase() === 'CREATED') found = record[name];
  return found;
}

type ColumnSpec =
  | { kind: 'own' }
  | { kind: 'shifted'; by: number }
  | { kind: 'text'; seconds: number }
  | { kind: 'value'; value: string | number | bigint | Buffer };
const columnSpec: fc.Arbitrary<ColumnSpec> = fc.oneof(
  { weight: 10, arbitrary: fc.constant({ kind: 'own' as const }) },
  { weight: 3, arbitrary: fc.constantFrom(-7200, -60, -1, 1, 3600).map((by) => ({ kind: 'shifted' as const, by })) },
  { weight: 2, arbitrary: seconds.filter(inRange).map((s) => ({ kind: 'text' as const, seconds: s })) },
  fc
    .oneof(
      seconds.map((s) => BigInt(s)),
      seconds.map((s) => s + 0.5),
      seconds.filter(inRange).map((s) => datetimeText(s).replace(' ', 'T')),
      seconds.filter(inRange).map((s) => `${datetimeText(s)}.000`),
      seconds.filter(inRange).map((s) => Buffer.from(datetimeText(s))),
      fc.string({ maxLength: 20 }),
      fc.constantFrom('2026-02-30 25:00:00', '0050-01-01 00:00:00', ''),
    )
    .map((value) => ({ kind: 'value' as const, value })),
);

type KeyRecordColumn = string | Buffer | number;
const keyRecordColumn: fc.Arbitrary<(record: Record<string, unknown>) => KeyRecordColumn> = fc.oneof(
  { weight: 20, arbitrary: fc.constant((record: Record<string, unknown>) => JSON.stringify(record)) },
  fc.constant((record: Record<string, unknown>) => Buffer.from(JSON.stringify(record))),
  fc.nat(40).map((n) => (record: Record<string, unknown>) => JSON.stringify(record).slice(0, n)),
  fc.json({ maxDepth: 2 }).map((text) => () => text),
  fc.string({ maxLength: 30, unit: 'binary' }).map((text) => () => text),
  fc.uint8Array({ maxLength: 20 }).map((bytes) => () => Buffer.from(bytes)),
  fc.constantFrom(42, 1.5).map((n) => () => n),
);

interface SqliteRow {
  created: string | number | bigint | Buffer;
  keyRecord: KeyRecordColumn;
  /** created values worth loading by: this row's, and its record's. */
  candidates: number[];
}

const sqliteRow: fc.Arbitrary<SqliteRow> = fc.tuple(jsonRecord, columnSpec, keyRecordColumn).map(([record, spec, column]) => {
  const own = createdOf(record);
  const base = inRange(own) ? own : T0;
  let created: SqliteRow['created'];
  switch (spec.kind) {
    case 'own': created = datetimeText(base); break;
    case 'shifted': created = datetimeText(Math.min(MAX_CREATED, Math.max(0, base + spec.by))); break;
    case 'text': created = datetimeText(spec.seconds); break;
    case 'value': created = spec.value; break;
  }
  const candidates = [base];
  if (spec.kind === 'text') candidates.push(spec.seconds);
  if (typeof own === 'number') candidates.push(own);
  return { created, keyRecord: column(record), candidates };
});

describe('SQLite metastore rows (property)', () => {
  let dir: string;
  let metastore: SqliteMetastore;
  let db: Database.Database;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'metastore-rows-'));
    const file = path.join(dir, 'rows.db');
    metastore = new SqliteMetastore(file);
    db = new Database(file);
    // Only this connection writes, and the file is thrown away: no need to wait for the disk.
    db.pragma('synchronous = OFF');
  });
  afterAll(() => {
    db?.close();
    metastore?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('load and loadLatest of arbitrary rows: a record that load finds again, undefined, or a named error (3,000 cases)', async () => {
    const clear = db.prepare('DELETE FROM encryption_key');
    const insert = db.prepare('INSERT OR IGNORE INTO encryption_key (id, created, key_record) VALUES (?, ?, ?)');
    const write = db.transaction((id: string, rows: SqliteRow[]) => {
      clear.run();
      for (const row of rows) insert.run(id, row.created, row.keyRecord);
    });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(SK_ID, IK_ID), fc.array(sqliteRow, { minLength: 1, maxLength: 3 }), async (id, rows) => {
        write(id, rows);
        await checkReads(metastore, id, [...rows.flatMap((row) => row.candidates), T0]);
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it('the created text it compares against is what SQLite\'s datetime() writes (2,000 cases)', () => {
    const datetime = db.prepare<[bigint], string>("SELECT datetime(?, 'unixepoch')").pluck();
    fc.assert(
      fc.property(seconds.filter(inRange), (s) => {
        expect(datetimeText(s)).toBe(datetime.get(BigInt(s)));
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });
});

// ---- store, on every metastore ----------------------------------------------------------------------------------

const storeCase = fc.record({
  id: fc.constantFrom<string>(SK_ID, IK_ID),
  created: fc.oneof({ weight: 6, arbitrary: seconds }, fc.constantFrom(-60, 1.5, Number.NaN, 2 ** 53)),
  /** The record's own Created: the same as `created`, or another. */
  shift: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, fc.constantFrom(-3600, -1, 1, 60)),
  key: fc.uint8Array({ maxLength: 48 }),
  parent: fc.option(fc.record({ keyId: fc.constantFrom(SK_ID, '_SK_other'), created: seconds }), { nil: undefined }),
  revoked: fc.boolean(),
});

type StoreCase = typeof storeCase extends fc.Arbitrary<infer T> ? T : never;

/** store() either refuses (a named error, nothing written) or writes exactly what load() and loadLatest() return. */
async function checkStore(metastore: Metastore, c: StoreCase): Promise<void> {
  const record: EnvelopeKeyRecord = { created: c.created + c.shift, encryptedKey: Buffer.from(c.key) };
  if (c.parent !== undefined) record.parentKeyMeta = c.parent;
  if (c.revoked) record.revoked = true;
  const stored = await outcome(() => metastore.store(c.id, c.created, record), c.id);
  if ('error' in stored) {
    // A record that is valid but under another created is the mismatch; an invalid one may fail as such first.
    if (record.created !== c.created && inRange(c.created) && inRange(record.created)) {
      expect(stored.error).toBeInstanceOf(MetastoreError);
    }
    expect(await outcome(() => metastore.loadLatest(c.id), c.id)).toEqual({ value: undefined });
    return;
  }
  expect(record.created).toBe(c.created);
  expect(stored.value).toBe(true);
  expect(await metastore.load(c.id, c.created)).toEqual(record);
  expect(await metastore.loadLatest(c.id)).toEqual(record);
}

describe('store (property)', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'metastore-store-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('SQLite and memory: a refusal writes nothing; a write loads back unchanged (1,000 cases each)', async () => {
    const file = path.join(dir, 'store.db');
    const sqlite = new SqliteMetastore(file);
    const db = new Database(file);
    db.pragma('synchronous = OFF');
    try {
      await fc.assert(
        fc.asyncProperty(storeCase, async (c) => {
          db.prepare('DELETE FROM encryption_key').run();
          await checkStore(sqlite, c);
          await checkStore(new MemoryMetastore(), c);
        }),
        { seed: SEED, numRuns: 1000 },
      );
    } finally {
      db.close();
      sqlite.close();
    }
  });
});

// ---- DynamoDB items ---------------------------------------------------------------------------------------------

/** N as DynamoDB accepts it: integers (some beyond 2^53), negatives, fractions, an exponent. */
const numberText = fc.oneof(
  { weight: 6, arbitrary: seconds.map(String) },
  fc.constantFrom('-60', '0.5', '1795858140.5', '9007199254740993', '1e3', '1795858140.000000000000000000001', '-0'),
  fc.integer({ min: -1000, max: 1000 }).map(String),
);
const S = (s: string): AttributeValue => ({ S: s });
const N = (n: string): AttributeValue => ({ N: n });
const simpleAttribute: fc.Arbitrary<AttributeValue> = fc.oneof(
  fc.string({ minLength: 1, maxLength: 8 }).map(S),
  numberText.map(N),
  fc.boolean().map((b): AttributeValue => ({ BOOL: b })),
  fc.constant<AttributeValue>({ NULL: true }),
  fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b): AttributeValue => ({ B: b })),
  fc.uniqueArray(fc.string({ minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 }).map((ss): AttributeValue => ({ SS: ss })),
  fc.constant<AttributeValue>({ L: [] }),
  fc.constant<AttributeValue>({ M: {} }),
);
const itemCreated: fc.Arbitrary<AttributeValue> = fc.oneof(
  { weight: 20, arbitrary: seconds.map(String).map(N) },
  numberText.map(N),
  seconds.map(String).map(S),
  simpleAttribute,
);
const itemKey: fc.Arbitrary<AttributeValue> = fc.oneof(
  { weight: 20, arbitrary: base64.map(S) },
  badBase64.map(S),
  fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => ({ B: b })),
  simpleAttribute,
);
const itemParent: fc.Arbitrary<AttributeValue> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        fc.option(fc.tuple(fieldName('KeyId', false), fc.oneof(fc.constant(S(SK_ID)), simpleAttribute)), { freq: 8 }),
        fc.option(fc.tuple(fieldName('Created', false), itemCreated), { freq: 8 }),
      )
      .map(([keyId, created]) => ({ M: fieldsToObject<AttributeValue>([keyId, created], []) })),
  },
  simpleAttribute,
);
const itemRevoked: fc.Arbitrary<AttributeValue> = fc.oneof(fc.boolean().map((b) => ({ BOOL: b })), simpleAttribute);
const keyRecordMap = fc
  .tuple(
    fc.option(fc.tuple(fieldName('Created', false), itemCreated), { freq: 12 }),
    fc.option(fc.tuple(fieldName('Key', false), itemKey), { freq: 12 }),
    fc.option(fc.tuple(fieldName('ParentKeyMeta', false), itemParent), { freq: 2 }),
    fc.option(fc.tuple(fieldName('Revoked', false), itemRevoked), { freq: 1 }),
    fc.array(fc.tuple(extraNames(false), simpleAttribute), { maxLength: 2 }),
  )
  .map(([created, key, parent, revoked, extra]) => fieldsToObject<AttributeValue>([created, key, parent, revoked], extra));

interface DynamoItem {
  rangeKey: string;
  keyRecord: AttributeValue | undefined;
  candidates: number[];
}

const dynamoItem: fc.Arbitrary<DynamoItem> = fc
  .tuple(
    keyRecordMap,
    fc.oneof(
      { weight: 10, arbitrary: fc.constant<ColumnSpec>({ kind: 'own' }) },
      { weight: 3, arbitrary: fc.constantFrom(-7200, -60, -1, 1, 3600).map((by): ColumnSpec => ({ kind: 'shifted', by })) },
      { weight: 2, arbitrary: numberText.map((n): ColumnSpec => ({ kind: 'value', value: n })) },
    ),
    fc.oneof(
      { weight: 12, arbitrary: fc.constant((map: Record<string, AttributeValue>): AttributeValue | undefined => ({ M: map })) },
      fc.constant(() => undefined),
      simpleAttribute.map((value) => () => value),
    ),
  )
  .map(([map, spec, wrap]) => {
    let own: number | undefined;
    for (const name of Object.keys(map)) if (name.toUpperCase() === 'CREATED') own = map[name].N === undefined ? undefined : Number(map[name].N);
    const base = own !== undefined && Number.isSafeInteger(own) && own >= 0 ? own : T0;
    let rangeKey = String(base);
    if (spec.kind === 'shifted') rangeKey = String(Math.max(0, base + spec.by));
    if (spec.kind === 'value') rangeKey = String(spec.value);
    const candidates = [base];
    const asNumber = Number(rangeKey);
    if (Number.isSafeInteger(asNumber) && asNumber >= 0) candidates.push(asNumber);
    return { rangeKey, keyRecord: wrap(map), candidates };
  });

describe('DynamoDB metastore items on dynalite (property)', () => {
  const local = useDynalite();

  it('load and loadLatest of arbitrary items: a record that load finds again, undefined, or a named error (300 cases)', async () => {
    const metastore = new DynamoDbMetastore(local.client);
    let caseNumber = 0;
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(dynamoItem, { minLength: 1, maxLength: 3 }), async (system, items) => {
        // A fresh id per case: the table is never cleared. The message check covers ids with a partition in them.
        const id = system ? `_SK_s${++caseNumber}x_product` : `_IK_p${++caseNumber}x_service_product`;
        for (const item of items) {
          const attributes: Record<string, AttributeValue> = { Id: S(id), Created: N(item.rangeKey) };
          if (item.keyRecord !== undefined) attributes.KeyRecord = item.keyRecord;
          await local.client.send(new PutItemCommand({ TableName: 'EncryptionKey', Item: attributes }));
        }
        await checkReads(metastore, id, [...items.flatMap((item) => item.candidates), T0]);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('store: a refusal writes nothing; a write loads back unchanged (200 cases)', async () => {
    let caseNumber = 0;
    await fc.assert(
      fc.asyncProperty(storeCase, async (c) => {
        // A table per run would be slow; a fresh id per case keeps the cases apart instead.
        const id = c.id === SK_ID ? `_SK_store${++caseNumber}_product` : `_IK_store${++caseNumber}_service_product`;
        await checkStore(new DynamoDbMetastore(local.client), { ...c, id });
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
});
