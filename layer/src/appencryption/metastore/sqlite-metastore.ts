import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type Database from 'better-sqlite3';
import { ConfigError } from '../../errors.js';
import { InvalidRecordError, MetastoreError } from '../errors.js';
import type { Metastore } from '../ports.js';
import { decodeEnvelopeKeyRecord, encodeEnvelopeKeyRecord, type EnvelopeKeyRecord } from '../record-codec.js';
import { advice, isSqliteError } from './sqlite-advice.js';
import {
  checkCreated,
  CREATE_TABLE,
  hasUniqueKey,
  createdText,
  describeRow,
  describeShift,
  KEY_ROWS,
  LOAD,
  LOAD_LATEST,
  parseCreatedText,
  secondsOfCreatedText,
  STORE,
} from './sqlite-rows.js';

// A metastore in one SQLite file, shared with the Rust Asherah implementation (godaddy/asherah-ffi,
// asherah/src/metastore_sqlite.rs; docs/wire-format.md §3.4), so its table, its `created` encoding and its queries are
// exactly the Rust ones:
//   - `created` holds the TEXT of `datetime(<unix seconds>, 'unixepoch')`, i.e. 'YYYY-MM-DD HH:MM:SS' in UTC. A
//     row stored any other way (an integer, ISO 8601 with a 'T') would never match the Rust side's
//     `created = datetime(?, 'unixepoch')`, so it would be invisible to it.
//   - `key_record` is the EnvelopeKeyRecord JSON. We write Go's `json.Marshal` form (docs/wire-format.md §3.3), which
//     escapes `<&>` in key ids; the Rust side writes them raw. Both decode the same, and a row is written once by
//     whoever creates the key first, so the difference never makes two rows for one key.
// Canonical Go has no SQLite metastore; this is the Rust binding's format, not upstream's RDBMS one
// (docs/wire-format.md §3.4). The table, its queries and the created column are in sqlite-rows.ts, the advice a
// failure's MetastoreError carries in sqlite-advice.ts.
//
// A row is handed out only if load(id, <its key_record's Created>) finds it, i.e. its created column is exactly the
// text datetime(<the key_record's Created>, 'unixepoch'). A writer names that Created in every record it encrypts,
// so a row whose column says otherwise (a tool that wrote local time, an edited row) would yield records that no
// other process, nor the writer after a restart, can read. load() and loadLatest() refuse such a row with a
// MetastoreError, and store() refuses to write one. Go's SQL metastore and the Rust binding do not check this.
//
// better-sqlite3 is synchronous: each method does its work before the returned Promise settles and blocks the
// event loop meanwhile. That is sub-millisecond for these single-row statements, except while waiting out another
// process's lock (at most busyTimeoutMs).

/** Same as better-sqlite3's default, and as rusqlite's `Connection::open`, which the Rust binding uses. */
const DEFAULT_BUSY_TIMEOUT_MS = 5000;
/** The largest busy timeout SQLite accepts (a C int of milliseconds). */
const MAX_BUSY_TIMEOUT_MS = 0x7fffffff;
const SQLITE_SCHEME = 'sqlite://';

export interface SqliteMetastoreOptions {
  /**
   * How long a statement waits for another connection's lock before failing with a MetastoreError, in
   * milliseconds. Default 5000. Several processes (and the Rust binding) may share one file; each holds the lock
   * only for one single-row statement, so waits are short unless something keeps a transaction open.
   */
  busyTimeoutMs?: number;
}

/** A key row as `SqliteMetastore.keyRows()` lists it. */
export interface SqliteKeyRow {
  id: string;
  /** Unix seconds, read back from the 'YYYY-MM-DD HH:MM:SS' column. */
  created: number;
  record: EnvelopeKeyRecord;
}

type LoadStatement = Database.Statement<[string, bigint], unknown>;
type LoadLatestStatement = Database.Statement<[string], { created: unknown; key_record: unknown }>;
type StoreStatement = Database.Statement<[string, bigint, string], unknown>;
type KeyRowsStatement = Database.Statement<[], { id: unknown; created: unknown; key_record: unknown }>;

export class SqliteMetastore implements Metastore {
  /** The database file, without any `sqlite://` prefix (or ':memory:'). */
  readonly path: string;
  private readonly busyTimeoutMs: number;
  private readonly db: Database.Database;
  private readonly loadStatement: LoadStatement;
  private readonly loadLatestStatement: LoadLatestStatement;
  private readonly storeStatement: StoreStatement;
  private readonly keyRowsStatement: KeyRowsStatement;

  /**
   * Opens (creating if needed) the database file and its `encryption_key` table. `connectionString` is a file
   * path, optionally prefixed with `sqlite://` as the Rust binding's ConnectionString accepts (docs/wire-format.md
   * §9.2), or ':memory:' for a private in-memory database. The directory must exist: a typo in the path should
   * fail here, not silently create a new, empty metastore somewhere else.
   */
  constructor(connectionString: string, options: SqliteMetastoreOptions = {}) {
    this.path = connectionString.startsWith(SQLITE_SCHEME)
      ? connectionString.slice(SQLITE_SCHEME.length)
      : connectionString;
    if (this.path.trim() === '') {
      throw new ConfigError('SqliteMetastore needs a database file path (ConnectionString), got an empty one');
    }
    const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0 || busyTimeoutMs > MAX_BUSY_TIMEOUT_MS) {
      throw new ConfigError(
        `SqliteMetastore busyTimeoutMs must be an integer number of milliseconds from 0 to ${MAX_BUSY_TIMEOUT_MS}`,
      );
    }
    this.busyTimeoutMs = busyTimeoutMs;
    if (this.path !== ':memory:') this.checkDirectory();

    let db: Database.Database;
    try {
      db = new (loadDriver())(this.path, { timeout: busyTimeoutMs });
    } catch (err) {
      throw this.failure('open the database', err);
    }
    // Journal mode: left as the file has it (a new file gets SQLite's rollback journal). WAL would let readers
    // run during a write, but it is a persistent property of the file: every later opener, the Rust binding
    // included, would then need the -wal/-shm files beside the database, a writable directory even to read, and
    // shared memory, which network filesystems do not provide. Metastore writes are rare (a key is created at
    // most once a minute per id, docs/wire-format.md §1.3) and each statement is its own short transaction, so the
    // rollback journal plus the busy timeout serves several processes well. Whoever wants WAL can set it on
    // the file once; both implementations then follow it.
    try {
      db.exec(CREATE_TABLE);
      if (!hasUniqueKey(db)) {
        db.close();
        throw new MetastoreError(
          `SQLite metastore "${this.path}": the encryption_key table does not make (id, created) unique, so two ` +
            'processes creating the same key could both store theirs and records under one would not decrypt with ' +
            `the other; nothing was written. Asherah's table is: ${CREATE_TABLE.replace(' IF NOT EXISTS', '')}. ` +
            'Create it so (or add a unique index on (id, created)) and copy the rows over',
        );
      }
      this.loadStatement = db.prepare<[string, bigint], unknown>(LOAD).pluck();
      this.loadLatestStatement = db.prepare<[string], { created: unknown; key_record: unknown }>(LOAD_LATEST);
      this.storeStatement = db.prepare<[string, bigint, string], unknown>(STORE);
      this.keyRowsStatement = db.prepare<[], { id: unknown; created: unknown; key_record: unknown }>(KEY_ROWS);
    } catch (err) {
      if (err instanceof MetastoreError) throw err;
      db.close();
      throw this.failure('create or open the encryption_key table', err);
    }
    this.db = db;
  }

  async load(id: string, created: number): Promise<EnvelopeKeyRecord | undefined> {
    const seconds = checkCreated(created);
    const text = this.run('load a key record', () => this.loadStatement.get(id, seconds));
    if (text === undefined) return undefined;
    const record = this.decode(text, id);
    // The query matched created = datetime(created), so the column holds created.
    if (record.created !== created) throw this.mismatch(id, createdText(created), record.created);
    return record;
  }

  async loadLatest(id: string): Promise<EnvelopeKeyRecord | undefined> {
    const row = this.run('load the latest key record', () => this.loadLatestStatement.get(id));
    if (row === undefined) return undefined;
    const record = this.decode(row.key_record, id);
    // The exact condition under which load(id, record.created) finds this row (see the top of this file).
    if (row.created !== createdText(record.created)) throw this.mismatch(id, row.created, record.created);
    return record;
  }

  async store(id: string, created: number, record: EnvelopeKeyRecord): Promise<boolean> {
    const seconds = checkCreated(created);
    const json = encodeEnvelopeKeyRecord(record);
    if (record.created !== created) {
      throw new MetastoreError(
        `SQLite metastore "${this.path}": cannot store ${describeRow(id)}: the record's Created differs from the ` +
          'created it is stored under, so no load() by its own Created could find it; store each key record under ' +
          'its own Created (this is a bug in the caller)',
      );
    }
    // INSERT OR IGNORE makes the primary key the arbiter between racing creators, in this process or another
    // (docs/wire-format.md §1.5): exactly one insert changes a row, and every other one reports `false`.
    const result = this.run('store a key record', () => this.storeStatement.run(id, seconds, json));
    return result.changes === 1;
  }

  /**
   * Every system and intermediate key row (ids starting `_SK_` or `_IK_`), sorted by id then created, for tests
   * and tools. Other rows, such as the Rust binding's `__asherah_internal_config_drift_guard_v1__:…` row
   * (docs/wire-format.md §9.3), are not key material and are left out. Throws InvalidRecordError if a key row does
   * not decode.
   */
  keyRows(): SqliteKeyRow[] {
    const rows = this.run('list key rows', () => this.keyRowsStatement.all());
    return rows.map((row) => {
      const id = String(row.id);
      return { id, created: this.parseCreated(row.created, id), record: this.decode(row.key_record, id) };
    });
  }

  /** Closes the database connection. Later calls fail with a MetastoreError; closing again does nothing. */
  close(): void {
    if (this.db.open) this.db.close();
  }

  private run<T>(action: string, statement: () => T): T {
    if (!this.db.open) {
      throw new MetastoreError(`SQLite metastore "${this.path}" is closed, so it cannot ${action}; create a new SqliteMetastore`);
    }
    try {
      return statement();
    } catch (err) {
      throw this.failure(action, err);
    }
  }

  /**
   * Decodes a stored key_record. The message says which kind of row is corrupt but not its id: an IK id holds a
   * partition id, which may identify a user (errors.ts: messages carry no record key fields). keyRows() lists the
   * rows for an operator to find it.
   */
  private decode(value: unknown, id: string): EnvelopeKeyRecord {
    const where = `SQLite metastore "${this.path}": the key_record of ${describeRow(id)}`;
    if (typeof value !== 'string' && !(value instanceof Uint8Array)) {
      throw new InvalidRecordError(
        `${where} is ${value === null ? 'NULL' : `a ${typeof value}`}, not JSON text; the key record in the ` +
          'metastore is corrupt or was not written by Asherah',
      );
    }
    try {
      return decodeEnvelopeKeyRecord(value);
    } catch (err) {
      // The codec's message names the field that is wrong; we add which file and which row.
      if (err instanceof InvalidRecordError) throw new InvalidRecordError(`${where}: ${err.message}`, { cause: err });
      throw err;
    }
  }

  /**
   * The MetastoreError for a row whose created column is not datetime(<its key_record's Created>). It says how far
   * apart they are (a whole number of hours points at a local-time writer), not either timestamp (errors.ts).
   */
  private mismatch(id: string, column: unknown, recordCreated: number): MetastoreError {
    const seconds = typeof column === 'string' ? secondsOfCreatedText(column) : undefined;
    const how =
      seconds === undefined
        ? "its created column is not 'YYYY-MM-DD HH:MM:SS' text as datetime(<seconds>, 'unixepoch') writes it"
        : `its created column is ${describeShift(seconds - recordCreated)} than the Created in its key_record`;
    return new MetastoreError(
      `SQLite metastore "${this.path}": ${describeRow(id)} is corrupt: ${how}. Records encrypted under this key ` +
        "would name the key_record's Created, under which the row cannot be loaded, so it is not used. Restore the " +
        "row from a backup, or make the two agree (set created to datetime(<Created>, 'unixepoch') for the Created " +
        'that existing records name); do not delete the row while records encrypted under the key exist',
    );
  }

  private parseCreated(value: unknown, id: string): number {
    const seconds = typeof value === 'string' ? parseCreatedText(value) : undefined;
    if (seconds === undefined) {
      throw new InvalidRecordError(
        `SQLite metastore "${this.path}": ${describeRow(id)} has a created that is not 'YYYY-MM-DD HH:MM:SS' text as ` +
          "datetime(<seconds>, 'unixepoch') writes it; the row was not written by Asherah and no implementation can load it",
      );
    }
    return seconds;
  }

  private checkDirectory(): void {
    const directory = path.dirname(path.resolve(this.path));
    let isDirectory: boolean;
    try {
      isDirectory = statSync(directory).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new MetastoreError(
        code === 'ENOENT'
          ? `SQLite metastore "${this.path}": the directory ${directory} does not exist; create it, or fix the ` +
              'path (the metastore does not create directories, so that a mistyped path cannot start an empty metastore)'
          : `SQLite metastore "${this.path}": cannot access the directory ${directory} (${code ?? 'unknown error'}); ` +
              'make it readable and writable by this process',
        { cause: err },
      );
    }
    if (!isDirectory) {
      throw new MetastoreError(
        `SQLite metastore "${this.path}": ${directory} is not a directory; fix the path`,
      );
    }
  }

  /** A MetastoreError that says what failed, SQLite's own code and message, and what to do about it. */
  private failure(action: string, err: unknown): MetastoreError {
    if (err instanceof MetastoreError) return err;
    const where = `SQLite metastore "${this.path}"`;
    // Matched by shape, not instanceof: when better-sqlite3 is loaded twice in one process (a bundler, a test
    // runner), its native part builds errors with whichever copy registered last.
    if (isSqliteError(err)) {
      // SQLite's messages ("database is locked", "file is not a database") carry no data from the rows.
      return new MetastoreError(
        `${where}: could not ${action} (${err.code}: ${err.message}); ${advice(err.code, this.busyTimeoutMs)}`,
        { cause: err },
      );
    }
    const detail = err instanceof Error ? err.message : String(err);
    return new MetastoreError(`${where}: could not ${action}: ${detail}`, { cause: err });
  }
}

/**
 * better-sqlite3 is loaded on first use, not at import: the layer's index exports this class, and in Lambda (which
 * uses DynamoDB) the native SQLite module is not shipped.
 */
function loadDriver(): typeof Database {
  try {
    return createRequire(__filename)('better-sqlite3') as typeof Database;
  } catch (err) {
    throw new ConfigError(
      'the SQLite metastore needs the better-sqlite3 package (12.x); install it with `npm install better-sqlite3@12`',
      { cause: err },
    );
  }
}
