import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError } from '../../layer/src/errors';
import { InvalidRecordError, MetastoreError } from '../../layer/src/appencryption/errors';
import { SqliteMetastore } from '../../layer/src/appencryption/metastore/sqlite-metastore';
import {
  decodeEnvelopeKeyRecord,
  encodeEnvelopeKeyRecord,
  type EnvelopeKeyRecord,
} from '../../layer/src/appencryption/record-codec';
import { rejection } from '../support/rejection';

// Real SQLite files in a temporary directory, in the Rust binding's format (docs/wire-format.md §3.4).

const REPO_ROOT = path.resolve(__dirname, '../..');
// Upstream Go's known-answer vectors, vendored in test/vectors (see its README).
const VECTORS_DIR = path.join(REPO_ROOT, 'test', 'vectors');
const METASTORE_MODULE = path.join(REPO_ROOT, 'layer/src/appencryption/metastore/sqlite-metastore.ts');

const SK_ID = '_SK_service_product';
const IK_ID = '_IK_partition_service_product';
const T0 = 1795858140; // a whole minute, as SK/IK Created always is (docs/wire-format.md §1.3)
const T0_TEXT = '2026-11-28 09:29:00';

let dir: string;
let fileCount = 0;
const opened: SqliteMetastore[] = [];
const rawOpened: Database.Database[] = [];

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sqlite-metastore-'));
});

afterEach(() => {
  for (const metastore of opened.splice(0)) metastore.close();
  for (const db of rawOpened.splice(0)) if (db.open) db.close();
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function newFile(): string {
  return path.join(dir, `metastore-${++fileCount}.db`);
}

function open(file: string, options?: { busyTimeoutMs?: number }): SqliteMetastore {
  const metastore = new SqliteMetastore(file, options);
  opened.push(metastore);
  return metastore;
}

/** A plain connection, for looking at and writing rows as another implementation would. */
function raw(file: string): Database.Database {
  const db = new Database(file);
  rawOpened.push(db);
  return db;
}

interface RawRow {
  id: string;
  created: unknown;
  created_type: string;
  key_record: string;
}

function rawRows(file: string): RawRow[] {
  return raw(file)
    .prepare('SELECT id, created, typeof(created) AS created_type, key_record FROM encryption_key ORDER BY id, created')
    .all() as RawRow[];
}

function skRecord(created: number, fill = 1): EnvelopeKeyRecord {
  return { created, encryptedKey: Buffer.alloc(60, fill) };
}

function ikRecord(created: number, skCreated: number, fill = 2): EnvelopeKeyRecord {
  return { created, encryptedKey: Buffer.alloc(60, fill), parentKeyMeta: { keyId: SK_ID, created: skCreated } };
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error, but nothing was thrown');
}

describe('SqliteMetastore', () => {
  it('round-trips an SK record (no parent) and an IK record (with parent)', async () => {
    const metastore = open(newFile());
    expect(await metastore.store(SK_ID, T0, skRecord(T0))).toBe(true);
    expect(await metastore.store(IK_ID, T0, ikRecord(T0, T0))).toBe(true);

    const sk = await metastore.load(SK_ID, T0);
    expect(sk).toEqual(skRecord(T0));
    expect(sk!.parentKeyMeta).toBeUndefined();
    expect(await metastore.load(IK_ID, T0)).toEqual(ikRecord(T0, T0));
    expect(await metastore.load(SK_ID, T0 + 60)).toBeUndefined();
    expect(await metastore.load('_SK_other_product', T0)).toBeUndefined();
    expect(await metastore.loadLatest('_SK_other_product')).toBeUndefined();
  });

  it('round-trips the revoked flag', async () => {
    const file = newFile();
    const metastore = open(file);
    await metastore.store(IK_ID, T0, { ...ikRecord(T0, T0), revoked: true });
    expect((await metastore.load(IK_ID, T0))?.revoked).toBe(true);
    expect((await metastore.loadLatest(IK_ID))?.revoked).toBe(true);
    expect(rawRows(file)[0].key_record).toMatch(/^\{"Revoked":true,"Created":/);
  });

  it('creates exactly the Rust binding\'s table', () => {
    const file = newFile();
    open(file);
    const columns = raw(file).pragma('table_info(encryption_key)') as { name: string; type: string; notnull: number; pk: number }[];
    expect(columns.map(({ name, type, notnull, pk }) => ({ name, type, notnull, pk }))).toEqual([
      { name: 'id', type: 'TEXT', notnull: 1, pk: 1 },
      { name: 'created', type: 'TIMESTAMP', notnull: 1, pk: 2 },
      { name: 'key_record', type: 'TEXT', notnull: 1, pk: 0 },
    ]);
  });

  it("stores created as the text of datetime(created, 'unixepoch') and key_record as Go's JSON", async () => {
    const file = newFile();
    const metastore = open(file);
    await metastore.store(SK_ID, T0, skRecord(T0));
    await metastore.store(IK_ID, T0, ikRecord(T0, T0));

    const db = raw(file);
    const expected = db.prepare("SELECT datetime(?, 'unixepoch')").pluck().get(T0);
    expect(expected).toBe(T0_TEXT);
    expect(rawRows(file)).toEqual([
      { id: IK_ID, created: T0_TEXT, created_type: 'text', key_record: encodeEnvelopeKeyRecord(ikRecord(T0, T0)) },
      { id: SK_ID, created: T0_TEXT, created_type: 'text', key_record: encodeEnvelopeKeyRecord(skRecord(T0)) },
    ]);
    // The Rust binding's load query finds the row (its ?1/?2 written as '?': better-sqlite3 binds numbered
    // parameters only from an object).
    const rustLoad = db.prepare("SELECT key_record FROM encryption_key WHERE id=? AND created = datetime(?, 'unixepoch')");
    expect(rustLoad.pluck().get(SK_ID, T0)).toBe(encodeEnvelopeKeyRecord(skRecord(T0)));
  });

  it('loadLatest returns the newest record, whatever the order of the stores', async () => {
    const metastore = open(newFile());
    expect(await metastore.loadLatest(SK_ID)).toBeUndefined();
    await metastore.store(SK_ID, T0 + 60, skRecord(T0 + 60, 2));
    await metastore.store(SK_ID, T0 + 86_400 * 400, skRecord(T0 + 86_400 * 400, 3)); // a later year
    await metastore.store(SK_ID, T0, skRecord(T0, 1));
    await metastore.store('_SK_service_product_suffix', T0 + 86_400 * 800, skRecord(T0 + 86_400 * 800, 4));
    expect(await metastore.loadLatest(SK_ID)).toEqual(skRecord(T0 + 86_400 * 400, 3));
  });

  it('a duplicate store returns false and keeps the first record', async () => {
    const file = newFile();
    const metastore = open(file);
    expect(await metastore.store(SK_ID, T0, skRecord(T0, 1))).toBe(true);
    expect(await metastore.store(SK_ID, T0, skRecord(T0, 9))).toBe(false);
    expect(await metastore.load(SK_ID, T0)).toEqual(skRecord(T0, 1));
    expect(rawRows(file)).toHaveLength(1);
  });

  it('reads rows the way the Rust binding writes them, and keyRows() leaves out its drift-guard row', async () => {
    const file = newFile();
    // The Rust binding writes '<&>' raw (its escaper escapes only '"', '\' and controls: docs/wire-format.md §3.1) and
    // stores a config drift guard row (docs/wire-format.md §9.3) next to the keys.
    const skId = '_SK_svc<&>x_prod';
    const ikId = '_IK_p1_svc<&>x_prod';
    const skText = `{"Created":${T0},"Key":"${Buffer.alloc(60, 1).toString('base64')}"}`;
    const ikText =
      `{"Created":${T0},"Key":"${Buffer.alloc(60, 2).toString('base64')}",` +
      `"ParentKeyMeta":{"KeyId":"${skId}","Created":${T0}}}`;
    const guardText = `{"Created":946684800,"Key":"${Buffer.from('{"schema_version":1}').toString('base64')}"}`;
    const guardId = '__asherah_internal_config_drift_guard_v1__:x';

    const db = raw(file);
    db.exec(
      'CREATE TABLE IF NOT EXISTS encryption_key (id TEXT NOT NULL, created TIMESTAMP NOT NULL, ' +
        'key_record TEXT NOT NULL, PRIMARY KEY (id, created))',
    );
    const insert = db.prepare(
      "INSERT OR IGNORE INTO encryption_key(id, created, key_record) VALUES (?, datetime(?, 'unixepoch'), ?)",
    );
    insert.run(skId, T0, skText);
    insert.run(ikId, T0, ikText);
    insert.run(guardId, 946684800, guardText);
    expect(db.prepare('SELECT created FROM encryption_key WHERE id = ?').pluck().get(guardId)).toBe('2000-01-01 00:00:00');

    const metastore = open(file);
    const ik = await metastore.load(ikId, T0);
    expect(ik).toEqual({ created: T0, encryptedKey: Buffer.alloc(60, 2), parentKeyMeta: { keyId: skId, created: T0 } });
    expect(await metastore.loadLatest(skId)).toEqual(skRecord(T0, 1));
    // Our text for the same record is Go's, with '<&>' escaped: equal in meaning, not in bytes.
    expect(encodeEnvelopeKeyRecord(ik!)).toContain('\\u003c\\u0026\\u003e');
    expect(decodeEnvelopeKeyRecord(encodeEnvelopeKeyRecord(ik!))).toEqual(ik);
    // The Rust row occupies the same primary key ours would.
    expect(await metastore.store(ikId, T0, ikRecord(T0, T0, 9))).toBe(false);

    expect(metastore.keyRows().map(({ id, created }) => [id, created])).toEqual([
      [ikId, T0],
      [skId, T0],
    ]);
    expect(metastore.keyRows()[0].record).toEqual(ik);
    expect(await metastore.loadLatest(guardId)).toBeDefined(); // present, just not a key row
  });

  it('two connections on one file racing to store the same (id, created) end with one row and one true', async () => {
    const file = newFile();
    const first = open(file);
    const second = open(file);
    const results = await Promise.all([
      first.store(IK_ID, T0, ikRecord(T0, T0, 1)),
      second.store(IK_ID, T0, ikRecord(T0, T0, 2)),
      first.store(IK_ID, T0, ikRecord(T0, T0, 3)),
      second.store(IK_ID, T0, ikRecord(T0, T0, 4)),
    ]);
    expect(results.filter((stored) => stored)).toHaveLength(1);
    expect(rawRows(file)).toHaveLength(1);
    expect(await second.load(IK_ID, T0)).toEqual(await first.load(IK_ID, T0));
  });

  it('processes racing to store the same (id, created) wait out each other\'s locks: one row, one true', async () => {
    const file = newFile();
    open(file); // creates the table, so the children race on the insert only
    const children = [1, 2, 3, 4].map((fill) => storeInChild(file, fill));
    await Promise.all(children.map((child) => child.ready));
    for (const child of children) child.go();
    const results = await Promise.all(children.map((child) => child.result));
    expect(results.filter((stored) => stored)).toHaveLength(1);
    const rows = rawRows(file);
    expect(rows).toHaveLength(1);
    expect(rows[0].created).toBe(T0_TEXT);
  }, 60_000);

  it('accepts a sqlite:// prefix, as the Rust binding\'s ConnectionString does', async () => {
    const file = newFile();
    const metastore = open(`sqlite://${file}`);
    expect(metastore.path).toBe(file);
    await metastore.store(SK_ID, T0, skRecord(T0));
    expect(rawRows(file).map((row) => row.id)).toEqual([SK_ID]);
  });

  it('rejects a created that datetime() would truncate or turn into NULL, and writes nothing', async () => {
    const file = newFile();
    const metastore = open(file);
    for (const created of [T0 + 0.5, -60, 253402300800, Number.NaN]) {
      const err = await rejection(metastore.store(SK_ID, created, skRecord(T0)));
      expect(err).toBeInstanceOf(MetastoreError);
      expect(err.message).toMatch(/created must be an integer number of Unix seconds from 0 to 253402300799/);
      expect(err.message).not.toContain(String(created));
      await expect(metastore.load(SK_ID, created)).rejects.toBeInstanceOf(MetastoreError);
    }
    expect(rawRows(file)).toEqual([]);
    // The largest accepted value is the last second of year 9999.
    expect(await metastore.store(SK_ID, 253402300799, skRecord(253402300799))).toBe(true);
    expect(rawRows(file)[0].created).toBe('9999-12-31 23:59:59');
  });

  describe('failures', () => {
    it('a missing directory is a MetastoreError naming it, and nothing is created', () => {
      const missing = path.join(dir, 'no-such-dir');
      const err = thrown(() => open(path.join(missing, 'keys.db')));
      expect(err).toBeInstanceOf(MetastoreError);
      expect(err.name).toBe('MetastoreError');
      expect(err.message).toContain(`the directory ${missing} does not exist; create it, or fix the path`);
      expect(readdirSync(dir)).not.toContain('no-such-dir');
    });

    it('a file that is not a database is a MetastoreError that says so, and the file is left as it was', () => {
      const file = newFile();
      const garbage = Buffer.alloc(4096);
      for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 151 + 7) & 0xff;
      writeFileSync(file, garbage);
      const err = thrown(() => open(file));
      expect(err).toBeInstanceOf(MetastoreError);
      expect(err.message).toContain(`SQLite metastore "${file}": could not create or open the encryption_key table`);
      expect(err.message).toContain('SQLITE_NOTADB: file is not a database');
      expect(err.message).toContain('check the path. Do not delete it before checking');
      expect((err.cause as { code?: string }).code).toBe('SQLITE_NOTADB');
      expect(readFileSync(file)).toEqual(garbage);
    });

    it('a path that is a directory is a MetastoreError saying the file cannot be opened', () => {
      const sub = path.join(dir, 'a-directory');
      mkdirSync(sub);
      const err = thrown(() => open(sub));
      expect(err).toBeInstanceOf(MetastoreError);
      expect(err.message).toMatch(/SQLITE_CANTOPEN/);
      expect(err.message).toContain('check that the path names a file (not a directory)');
    });

    // Root reads and writes whatever the mode bits say; as root, the check runs in a child without the DAC
    // capabilities (it stays uid 0, so it can still read the checkout), like the memlock tests drop CAP_IPC_LOCK.
    const isRoot = process.getuid?.() === 0;
    const canDropDac = isRoot && existsSync('/usr/bin/setpriv');
    (!isRoot || canDropDac ? it : it.skip)(
      'an unreadable file and a read-only file give MetastoreErrors that say what to do',
      async () => {
        const unreadable = newFile();
        const readOnly = newFile();
        open(unreadable).close();
        open(readOnly).close();
        chmodSync(unreadable, 0o000);
        chmodSync(readOnly, 0o444);
        const messages = isRoot ? permissionMessagesInChild(unreadable, readOnly) : await permissionMessages(unreadable, readOnly);
        expect(messages.unreadable).toMatch(/^MetastoreError: SQLite metastore ".*": could not open the database \(SQLITE_CANTOPEN/);
        expect(messages.unreadable).toContain('readable and writable by this process');
        expect(messages.readOnly).toMatch(/^MetastoreError: SQLite metastore ".*": could not store a key record \(SQLITE_READONLY/);
        expect(messages.readOnly).toContain('make the file and its directory writable by this process');
      },
    );

    it('an encryption_key table that does not make (id, created) unique is refused with the DDL; a unique index will do', async () => {
      const file = newFile();
      const db = raw(file);
      db.exec('CREATE TABLE encryption_key (id TEXT NOT NULL, created TIMESTAMP NOT NULL, key_record TEXT NOT NULL)');
      const err = thrown(() => open(file));
      expect(err).toBeInstanceOf(MetastoreError);
      expect(err.message).toMatch(/the encryption_key table does not make \(id, created\) unique.*nothing was written/);
      expect(err.message).toContain('CREATE TABLE encryption_key (id TEXT NOT NULL, created TIMESTAMP NOT NULL, key_record TEXT NOT NULL, PRIMARY KEY (id, created))');
      expect(db.prepare('SELECT count(*) AS n FROM encryption_key').get()).toEqual({ n: 0 });
      // A unique index on exactly (id, created) arbitrates as the primary key does.
      db.exec('CREATE UNIQUE INDEX by_key ON encryption_key (created, id)');
      const metastore = open(file);
      expect(await metastore.store(SK_ID, T0, skRecord(T0))).toBe(true);
      expect(await metastore.store(SK_ID, T0, skRecord(T0, 9))).toBe(false);
    });

    it('a database file deleted while open (SQLITE_READONLY_DBMOVED) is a MetastoreError that says to reopen it', async () => {
      const file = newFile();
      const metastore = open(file);
      await metastore.store(SK_ID, T0, skRecord(T0));
      rmSync(file);
      const err = await rejection(metastore.store(IK_ID, T0, ikRecord(T0, T0)));
      expect(err).toBeInstanceOf(MetastoreError);
      expect(err.message).toContain('SQLITE_READONLY_DBMOVED');
      expect(err.message).toMatch(/deleted, moved or replaced while this process had it open.*reopen it/);
      expect(err.message).not.toContain('make the file and its directory writable');
    });

    it('a database locked past the busy timeout is a MetastoreError that says what to do', async () => {
      const file = newFile();
      const metastore = open(file, { busyTimeoutMs: 50 });
      const locker = raw(file);
      locker.exec('BEGIN EXCLUSIVE');
      try {
        const err = await rejection(metastore.store(SK_ID, T0, skRecord(T0)));
        expect(err).toBeInstanceOf(MetastoreError);
        expect(err.message).toContain(`SQLite metastore "${file}": could not store a key record (SQLITE_BUSY`);
        expect(err.message).toContain('longer than the busy timeout (50 ms); retry, raise busyTimeoutMs');
        expect((err.cause as { code?: string }).code).toMatch(/^SQLITE_BUSY/);
        await expect(metastore.loadLatest(SK_ID)).rejects.toThrow(/could not load the latest key record \(SQLITE_BUSY/);
      } finally {
        locker.exec('COMMIT');
      }
      expect(await metastore.store(SK_ID, T0, skRecord(T0))).toBe(true);
    });

    it('a key_record that does not decode is an InvalidRecordError naming the file, the kind of row and the field', async () => {
      const file = newFile();
      const metastore = open(file);
      const insert = raw(file).prepare(
        "INSERT INTO encryption_key (id, created, key_record) VALUES (?, datetime(?, 'unixepoch'), ?)",
      );
      insert.run(SK_ID, T0, '{"Created":1795858140,"Key":"not base64!"}');
      insert.run(IK_ID, T0, 'this is not JSON');

      const sk = await rejection(metastore.load(SK_ID, T0));
      expect(sk).toBeInstanceOf(InvalidRecordError);
      expect(sk.message).toContain(`SQLite metastore "${file}": the key_record of a system key row: invalid EnvelopeKeyRecord: Key`);
      expect(sk.message).not.toContain(SK_ID);
      expect(sk.cause).toBeInstanceOf(InvalidRecordError);

      const ik = await rejection(metastore.loadLatest(IK_ID));
      expect(ik).toBeInstanceOf(InvalidRecordError);
      expect(ik.message).toContain('not valid JSON');
      expect(ik.message).toContain('an intermediate key row');
      expect(ik.message).not.toContain(IK_ID);
      expect(ik.message).not.toContain('this is not JSON');

      expect(thrown(() => metastore.keyRows())).toBeInstanceOf(InvalidRecordError);
    });

    it('after close, calls fail with a MetastoreError, and closing again is harmless', async () => {
      const metastore = open(newFile());
      metastore.close();
      metastore.close();
      const err = await rejection(metastore.load(SK_ID, T0));
      expect(err).toBeInstanceOf(MetastoreError);
      expect(err.message).toMatch(/is closed, so it cannot load a key record; create a new SqliteMetastore/);
      await expect(metastore.store(SK_ID, T0, skRecord(T0))).rejects.toBeInstanceOf(MetastoreError);
    });

    it('bad options are a ConfigError', () => {
      expect(() => new SqliteMetastore('')).toThrow(ConfigError);
      expect(() => new SqliteMetastore('sqlite://')).toThrow(ConfigError);
      expect(() => new SqliteMetastore(newFile(), { busyTimeoutMs: -1 })).toThrow(/busyTimeoutMs must be an integer/);
      expect(() => new SqliteMetastore(newFile(), { busyTimeoutMs: 1.5 })).toThrow(ConfigError);
    });
  });
});

// Known-answer vectors written by upstream Go (test/vectors/README.md): stored here as the Rust binding stores
// them, and loaded back to the exact key_record text.
interface VectorFile {
  cases: { metastore_rows: { id: string; created: number; key_record: string }[] }[];
}

const vectorCases = readdirSync(VECTORS_DIR)
  .filter((name) => name.endsWith('.json'))
  .flatMap((name) => {
    const file = JSON.parse(readFileSync(path.join(VECTORS_DIR, name), 'utf8')) as VectorFile;
    return file.cases.map((c, i) => ({ label: `${name}#${i}`, rows: c.metastore_rows }));
  });

describe('known-answer vectors', () => {
  it('finds the vendored vector files (test/vectors)', () => {
    expect(vectorCases.length).toBeGreaterThanOrEqual(2);
  });

  it.each(vectorCases)('$label: stored rows load back to the exact key_record text', async ({ rows }) => {
    const file = newFile();
    const metastore = open(file);
    for (const row of rows) {
      expect(await metastore.store(row.id, row.created, decodeEnvelopeKeyRecord(row.key_record))).toBe(true);
    }
    for (const row of rows) {
      expect(encodeEnvelopeKeyRecord((await metastore.load(row.id, row.created))!)).toBe(row.key_record);
      expect(encodeEnvelopeKeyRecord((await metastore.loadLatest(row.id))!)).toBe(row.key_record);
    }
    const stored = rawRows(file);
    expect(stored).toHaveLength(rows.length);
    for (const row of rows) {
      const match = stored.find((s) => s.id === row.id);
      expect(match?.key_record).toBe(row.key_record);
      expect(match?.created).toBe(new Date(row.created * 1000).toISOString().slice(0, 19).replace('T', ' '));
    }
  });
});

/**
 * A child process that opens the file, says "ready", and on "go" (stdin) stores (IK_ID, T0) and prints whether it
 * did. Run through tsx so that it uses the real module.
 */
function storeInChild(file: string, fill: number) {
  const script = `
    const { SqliteMetastore } = require(${JSON.stringify(METASTORE_MODULE)});
    const metastore = new SqliteMetastore(${JSON.stringify(file)});
    const record = {
      created: ${T0},
      encryptedKey: Buffer.alloc(60, ${fill}),
      parentKeyMeta: { keyId: ${JSON.stringify(SK_ID)}, created: ${T0} },
    };
    process.stdin.once('data', () => {
      metastore.store(${JSON.stringify(IK_ID)}, ${T0}, record).then(
        (stored) => { metastore.close(); process.stdout.write(JSON.stringify({ stored }) + '\\n'); process.exit(0); },
        (err) => { process.stderr.write(String(err && err.stack) + '\\n'); process.exit(1); },
      );
    });
    process.stdout.write('ready\\n');
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { cwd: REPO_ROOT, stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let markReady: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdout.includes('ready\n')) markReady();
  });
  const result = new Promise<boolean>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`child ${fill} exited with ${code}: ${stderr}`));
      const last = stdout.trim().split('\n').pop()!;
      resolve((JSON.parse(last) as { stored: boolean }).stored);
    });
  });
  // A child that dies before "ready" must fail the test rather than hang it.
  const readyOrFailed = Promise.race([ready, result.then(() => undefined)]);
  return { ready: readyOrFailed, go: () => child.stdin.end('go\n'), result };
}

interface PermissionMessages {
  unreadable: string;
  readOnly: string;
}

/** Opens the unreadable file and stores into the read-only one; returns each error as "name: message". */
async function permissionMessages(unreadable: string, readOnly: string): Promise<PermissionMessages> {
  const describe = (err: unknown) => `${(err as Error).name}: ${(err as Error).message}`;
  let unreadableMessage = 'opened';
  try {
    new SqliteMetastore(unreadable).close();
  } catch (err) {
    unreadableMessage = describe(err);
  }
  const metastore = new SqliteMetastore(readOnly);
  try {
    await metastore.store(SK_ID, T0, skRecord(T0));
    return { unreadable: unreadableMessage, readOnly: 'stored' };
  } catch (err) {
    return { unreadable: unreadableMessage, readOnly: describe(err) };
  } finally {
    metastore.close();
  }
}

/** permissionMessages in a child process without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH. */
function permissionMessagesInChild(unreadable: string, readOnly: string): PermissionMessages {
  const script = `
    const { SqliteMetastore } = require(${JSON.stringify(METASTORE_MODULE)});
    const describe = (err) => err.name + ': ' + err.message;
    let unreadable = 'opened';
    try { new SqliteMetastore(${JSON.stringify(unreadable)}).close(); } catch (err) { unreadable = describe(err); }
    const metastore = new SqliteMetastore(${JSON.stringify(readOnly)});
    metastore.store('_SK_a_b', ${T0}, { created: ${T0}, encryptedKey: Buffer.alloc(60) }).then(
      () => 'stored', describe,
    ).then((readOnly) => { metastore.close(); process.stdout.write(JSON.stringify({ unreadable, readOnly }) + '\\n'); });
  `;
  const caps = '-dac_override,-dac_read_search';
  const result = spawnSync(
    'setpriv',
    [`--inh-caps=${caps}`, `--bounding-set=${caps}`, process.execPath, '--import', 'tsx', '-e', script],
    { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 },
  );
  if (result.status !== 0) throw new Error(`permission child failed (${result.status}): ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as PermissionMessages;
}
