// The Rust binding's SQLite table, its queries and its `created` column (docs/wire-format.md §3.4), for
// SqliteMetastore (sqlite-metastore.ts): `created` holds the TEXT of `datetime(<unix seconds>, 'unixepoch')`, i.e.
// 'YYYY-MM-DD HH:MM:SS' in UTC, and `key_record` the EnvelopeKeyRecord JSON.
import { MetastoreError } from '../errors.js';
import { describeNumber, isUnixSeconds } from '../go-json.js';

/** The Rust binding's DDL, character for character (docs/wire-format.md §3.4). */
export const CREATE_TABLE =
  'CREATE TABLE IF NOT EXISTS encryption_key (id TEXT NOT NULL, created TIMESTAMP NOT NULL, key_record TEXT NOT NULL, PRIMARY KEY (id, created))';
export const LOAD = "SELECT key_record FROM encryption_key WHERE id = ? AND created = datetime(?, 'unixepoch')";
// 'YYYY-MM-DD HH:MM:SS' text sorts chronologically, so this selects the Rust query's row with no conversion. It
// also reads created, to check the row against its key_record.
export const LOAD_LATEST = 'SELECT created, key_record FROM encryption_key WHERE id = ? ORDER BY created DESC LIMIT 1';
export const STORE =
  "INSERT OR IGNORE INTO encryption_key (id, created, key_record) VALUES (?, datetime(?, 'unixepoch'), ?)";
// GLOB, not LIKE: GLOB is case-sensitive and treats '_' literally.
export const KEY_ROWS =
  "SELECT id, created, key_record FROM encryption_key WHERE id GLOB '_SK_*' OR id GLOB '_IK_*' ORDER BY id, created";

/**
 * Whether the table makes (id, created) unique, which insert-if-absent relies on: its primary key, or a unique
 * index, on exactly those two columns. A table made otherwise (by hand, or by another tool) would take two rows
 * for one key, so two racing creators would both think they stored theirs.
 */
export function hasUniqueKey(db: { pragma(source: string): unknown }): boolean {
  const columns = db.pragma('table_info(encryption_key)') as { name: string; pk: number }[];
  const primaryKey = columns.filter((c) => c.pk > 0).map((c) => c.name);
  if (sameColumns(primaryKey, ['id', 'created'])) return true;
  const indexes = db.pragma('index_list(encryption_key)') as { name: string; unique: number; partial?: number }[];
  return indexes.some((index) => {
    if (index.unique !== 1 || index.partial === 1) return false;
    const indexed = (db.pragma(`index_info(${JSON.stringify(index.name)})`) as { name: string }[]).map((c) => c.name);
    return sameColumns(indexed, ['id', 'created']);
  });
}

function sameColumns(actual: string[], expected: string[]): boolean {
  return actual.length === expected.length && expected.every((name) => actual.includes(name));
}

/** '9999-12-31 23:59:59': beyond it datetime() returns NULL, which INSERT OR IGNORE would silently skip. */
const MAX_CREATED = 253402300799;
const CREATED_TEXT = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/**
 * Created must be whole Unix seconds that datetime() can represent: a fraction would be silently truncated (and
 * match another second's row), and a value outside years 0000–9999 becomes NULL. Bound as a BigInt so that SQLite
 * sees an INTEGER, as the Rust binding binds its i64.
 */
export function checkCreated(created: number): bigint {
  if (isUnixSeconds(created) && created <= MAX_CREATED) return BigInt(created);
  throw new MetastoreError(
    `created must be an integer number of Unix seconds from 0 to ${MAX_CREATED} (the range of SQLite's ` +
      `datetime()), got ${describeCreated(created)}`,
  );
}

/**
 * The text datetime(seconds, 'unixepoch') gives, for the seconds a row can be stored under; undefined beyond them
 * (no row can be loaded by such a Created).
 */
export function createdText(seconds: number): string | undefined {
  if (!isUnixSeconds(seconds) || seconds > MAX_CREATED) return undefined;
  // Years 1970–9999, so toISOString gives 'YYYY-MM-DDTHH:MM:SS.000Z'.
  return new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

/** The seconds of 'YYYY-MM-DD HH:MM:SS' text (out-of-range fields roll over, as in Date.UTC), else undefined. */
export function parseCreatedText(text: string): number | undefined {
  const match = CREATED_TEXT.exec(text);
  if (match === null) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number);
  return Date.UTC(year, month - 1, day, hour, minute, second) / 1000;
}

/** The seconds of text that datetime() could have written, else undefined. */
export function secondsOfCreatedText(text: string): number | undefined {
  const seconds = parseCreatedText(text);
  if (seconds === undefined) return undefined;
  return createdText(seconds) === text ? seconds : undefined; // rejects '2026-02-30 25:00:00' and the like
}

export function describeShift(seconds: number): string {
  return `${Math.abs(seconds)} seconds ${seconds > 0 ? 'later' : 'earlier'}`;
}

// The kind of a bad timestamp, never its value (errors.ts: messages carry no record timestamps). Whole
// non-negative seconds are refused only for being past MAX_CREATED.
function describeCreated(value: number): string {
  return Number.isInteger(value) && value >= 0 ? 'a number beyond year 9999' : describeNumber(value);
}

/** "a system key row" / "an intermediate key row": what a message may say of a row without its id. */
export function describeRow(id: string): string {
  return id.startsWith('_SK_') ? 'a system key row' : id.startsWith('_IK_') ? 'an intermediate key row' : 'a row';
}
