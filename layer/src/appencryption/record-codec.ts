import { InvalidRecordError } from './errors.js';
import { base64Problem, decodeGoBase64, describe, goFieldReader, isUnixSeconds, quote, toBase64 } from './go-json.js';

// DataRowRecord (DRR) and EnvelopeKeyRecord (EKR) and their JSON form (docs/wire-format.md §3.1–3.3, §3.6, §10).
//
// Encoding is byte-identical to Go `json.Marshal` of upstream's structs (go/appencryption/envelope.go), which is
// also what asherah-node returns (asherah-cobhan marshals the DRR with encoding/json, built with Go 1.24):
//   DRR  {"Key":{"Created":n,"Key":"b64","ParentKeyMeta":{"KeyId":"…","Created":n}},"Data":"b64"}
//   EKR  {"Revoked":true,"Created":n,"Key":"b64","ParentKeyMeta":{…}}   Revoked only when true, ParentKeyMeta
//        only when present (SKs have none)
// with padded standard base64, integer Created, and Go's string escaping (see `quote` in go-json.ts).
//
// Decoding accepts what upstream Go or Java accept (docs/wire-format.md §3.6, §10): field names in any case (Go
// matches them case-insensitively), unknown fields, fields in any order, "Revoked" anywhere and Java's explicit
// "Revoked":false, and any valid JSON string escaping (e.g. '<&>' raw, as the Rust implementation writes them, or
// Java's '\/'). It rejects, with an InvalidRecordError naming the field:
//   - base64 that is unpadded or URL-safe. Go rejects both (docs/wire-format.md §3.6). Java's Base64.getDecoder()
//     accepts missing padding (docs/wire-format.md §3.2), but no upstream encoder writes it, so we keep Go's
//     stricter rule.
//   - Created that is not a JSON integer in [0, 2^53): a string (Go rejects; Java's getLong would accept a
//     numeric string), negative, fractional, or too large to hold exactly. Missing Created is also rejected: Java
//     rejects it (getLong throws); Go would silently read 0, which no upstream encoder writes.
//   - a missing (or null) Key or Data, a DRR key without ParentKeyMeta (Go fails at decrypt with "parent key
//     cannot be empty", docs/wire-format.md §1.6), a ParentKeyMeta without a string KeyId, a non-boolean Revoked.
//   - anything that is not a JSON object, and text that is not JSON.
//   - an object form whose fields cannot be read: a getter or Proxy trap that throws (found by test/fuzz).

/** Identifies a stored key: its id (`_SK_…` / `_IK_…`) and its Created time in Unix seconds. */
export interface KeyMeta {
  keyId: string;
  created: number;
}

/**
 * An encrypted key with its metadata: a DRK inside a DataRowRecord, or an SK/IK record in the metastore. The key
 * id is not part of the record (Go `json:"-"`): the metastore keeps it in its own column or attribute.
 */
export interface EnvelopeKeyRecord {
  /** Unix seconds. */
  created: number;
  /** The wrapped key: AES-GCM output for a DRK or IK; for an SK, whatever the KMS produced. */
  encryptedKey: Buffer;
  /** The key that wrapped this one; absent for an SK (the KMS wrapped it). */
  parentKeyMeta?: KeyMeta;
  /** Set out of band to stop new writes with this key (docs/wire-format.md §1.4); revoked keys still decrypt. */
  revoked?: boolean;
}

/** What encrypt returns and decrypt takes: the wrapped data-row key and the encrypted data. */
export interface DataRowRecord {
  key: EnvelopeKeyRecord;
  data: Buffer;
}

/** The JSON shape (PascalCase, base64 strings) of a KeyMeta. */
export interface KeyMetaJson {
  KeyId: string;
  Created: number;
}

/** The JSON shape of an EnvelopeKeyRecord. */
export interface EnvelopeKeyRecordJson {
  Revoked?: true;
  Created: number;
  Key: string;
  ParentKeyMeta?: KeyMetaJson;
}

/** The JSON shape of a DataRowRecord, as it appears in Asherah's Lambda events and asherah-node's output. */
export interface DataRowRecordJson {
  Key: EnvelopeKeyRecordJson;
  Data: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding

/** The DRR as JSON text, byte-identical to Go `json.Marshal(drr)`. */
export function encodeDataRowRecord(drr: DataRowRecord): string {
  return `{"Key":${writeEnvelopeKeyRecord(drr.key, DRR_KEY_CREATED)},"Data":"${toBase64(drr.data)}"}`;
}

/** The EKR as JSON text, byte-identical to Go `json.Marshal(ekr)` (what Go's SQL metastore stores). */
export function encodeEnvelopeKeyRecord(ekr: EnvelopeKeyRecord): string {
  return writeEnvelopeKeyRecord(ekr, EKR_CREATED);
}

/**
 * The DRR as a plain object with PascalCase fields, for Lambda responses. Its key order is Go's, so
 * JSON.stringify gives Go's field order (but not Go's escaping of `<>&`; use encodeDataRowRecord for text).
 */
export function dataRowRecordToJsonObject(drr: DataRowRecord): DataRowRecordJson {
  return { Key: envelopeKeyRecordToJson(drr.key, DRR_KEY_CREATED), Data: toBase64(drr.data) };
}

/**
 * The EKR in its JSON shape, in Go's field order: Revoked only when true and ParentKeyMeta only when present (Go
 * `omitempty`; the decoder is what insists that a DRR key has one), Key as padded standard base64. Every Created
 * must be whole non-negative Unix seconds; `badCreated` makes the error for one that is not. The record encoders
 * here and the DynamoDB metastore's item encoder all write this one shape.
 */
export function envelopeKeyRecordToJson(ekr: EnvelopeKeyRecord, badCreated: BadCreated): EnvelopeKeyRecordJson {
  const created = ekr.created;
  if (!isUnixSeconds(created)) throw badCreated('Created', created);
  const json: EnvelopeKeyRecordJson =
    ekr.revoked === true
      ? { Revoked: true, Created: created, Key: toBase64(ekr.encryptedKey) }
      : { Created: created, Key: toBase64(ekr.encryptedKey) };
  const parent = ekr.parentKeyMeta;
  if (parent != null) {
    const keyId = parent.keyId;
    const parentCreated = parent.created;
    if (!isUnixSeconds(parentCreated)) throw badCreated('ParentKeyMeta.Created', parentCreated);
    json.ParentKeyMeta = { KeyId: keyId, Created: parentCreated };
  }
  return json;
}

function writeEnvelopeKeyRecord(ekr: EnvelopeKeyRecord, badCreated: BadCreated): string {
  const json = envelopeKeyRecordToJson(ekr, badCreated);
  let out = json.Revoked === true ? '{"Revoked":true,"Created":' : '{"Created":';
  out += json.Created;
  out += ',"Key":"';
  out += json.Key;
  out += '"';
  const parent = json.ParentKeyMeta;
  if (parent !== undefined) {
    out += ',"ParentKeyMeta":{"KeyId":';
    out += quote(parent.KeyId);
    out += ',"Created":';
    out += parent.Created;
    out += '}';
  }
  return out + '}';
}

/** Makes the error for a Created that is not whole non-negative Unix seconds, given its field and value. */
export type BadCreated = (field: 'Created' | 'ParentKeyMeta.Created', value: unknown) => Error;

const cannotEncode = (path: string): BadCreated => (field, value) =>
  new InvalidRecordError(
    `cannot encode the record: ${path}.${field} must be a non-negative integer (Unix seconds), got ${describe(value)}`,
  );
const DRR_KEY_CREATED = cannotEncode('DataRowRecord.Key');
const EKR_CREATED = cannotEncode('EnvelopeKeyRecord');

// ---------------------------------------------------------------------------------------------------------------
// Decoding

type JsonObject = Record<string, unknown>;
type RecordKind = 'DataRowRecord' | 'EnvelopeKeyRecord';

// Field names matched as Go matches them, the last duplicate winning (docs/wire-format.md §3.6).
const readDrrFields = goFieldReader(['Key', 'Data']);
const readEkrFields = goFieldReader(['Revoked', 'Created', 'Key', 'ParentKeyMeta']);
const readKeyMetaFields = goFieldReader(['KeyId', 'Created']);

/**
 * Reads a DRR from JSON text, UTF-8 JSON bytes, or an already-parsed object (Lambda events carry the DRR as an
 * object). Throws InvalidRecordError naming the field for anything malformed.
 */
export function decodeDataRowRecord(input: string | Uint8Array | object): DataRowRecord {
  const root = toJsonObject(input, 'DataRowRecord');
  let key: unknown;
  let data: unknown;
  try {
    ({ Key: key, Data: data } = readDrrFields(root));
  } catch (err) {
    throw unreadable('DataRowRecord', '', err);
  }
  if (key == null) throw invalid('DataRowRecord', 'Key', 'is missing');
  return {
    key: readEnvelopeKeyRecord(key, 'DataRowRecord', 'Key.', true),
    data: readBytes(data, 'DataRowRecord', 'Data'),
  };
}

/** Reads an EKR (a metastore's SK/IK record) from JSON text, UTF-8 JSON bytes, or an already-parsed object. */
export function decodeEnvelopeKeyRecord(input: string | Uint8Array | object): EnvelopeKeyRecord {
  return readEnvelopeKeyRecord(toJsonObject(input, 'EnvelopeKeyRecord'), 'EnvelopeKeyRecord', '', false);
}

function readEnvelopeKeyRecord(value: unknown, kind: RecordKind, prefix: string, needsParent: boolean): EnvelopeKeyRecord {
  const object = asObject(value, kind, prefix.slice(0, -1));
  let revoked: unknown;
  let created: unknown;
  let key: unknown;
  let parent: unknown;
  try {
    ({ Revoked: revoked, Created: created, Key: key, ParentKeyMeta: parent } = readEkrFields(object));
  } catch (err) {
    throw unreadable(kind, prefix.slice(0, -1), err);
  }
  const record: EnvelopeKeyRecord = {
    created: readCreated(created, kind, `${prefix}Created`),
    encryptedKey: readBytes(key, kind, `${prefix}Key`),
  };
  if (parent != null) {
    record.parentKeyMeta = readKeyMeta(parent, kind, `${prefix}ParentKeyMeta`);
  } else if (needsParent) {
    throw invalid(kind, `${prefix}ParentKeyMeta`, 'is missing; it names the intermediate key the record was encrypted under');
  }
  // null reads as false, like Go; Java writes an explicit false (docs/wire-format.md §3.2).
  if (revoked != null && typeof revoked !== 'boolean') {
    throw invalid(kind, `${prefix}Revoked`, `must be true or false, got ${describe(revoked)}`);
  }
  if (revoked === true) record.revoked = true;
  return record;
}

function readKeyMeta(value: unknown, kind: RecordKind, path: string): KeyMeta {
  const object = asObject(value, kind, path);
  let keyId: unknown;
  let created: unknown;
  try {
    ({ KeyId: keyId, Created: created } = readKeyMetaFields(object));
  } catch (err) {
    throw unreadable(kind, path, err);
  }
  if (keyId == null) throw invalid(kind, `${path}.KeyId`, 'is missing');
  if (typeof keyId !== 'string') throw invalid(kind, `${path}.KeyId`, `must be a string, got ${describe(keyId)}`);
  // Lone surrogates (from a `\ud800` escape) become U+FFFD, as in Go, whose strings hold UTF-8.
  return { keyId: keyId.toWellFormed(), created: readCreated(created, kind, `${path}.Created`) };
}

function readCreated(value: unknown, kind: RecordKind, path: string): number {
  if (isUnixSeconds(value)) return value === 0 ? 0 : value; // no -0
  if (value == null) throw invalid(kind, path, 'is missing');
  throw invalid(kind, path, `must be a non-negative integer (Unix seconds), got ${describe(value)}`);
}

function readBytes(value: unknown, kind: RecordKind, path: string): Buffer {
  if (value == null) throw invalid(kind, path, 'is missing');
  if (typeof value !== 'string') throw invalid(kind, path, `must be a base64 string, got ${describe(value)}`);
  const bytes = decodeGoBase64(value);
  if (bytes !== undefined) return bytes;
  throw invalid(kind, path, base64Problem(value));
}

function toJsonObject(input: string | Uint8Array | object, kind: RecordKind): JsonObject {
  let value: unknown = input;
  if (typeof input === 'string' || isBytes(input, kind, '')) {
    // Invalid UTF-8 becomes U+FFFD, as in Go's decoder; inside JSON syntax that is then a parse error.
    let text: string;
    try {
      text = typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
    } catch (err) {
      // A Proxy of a Uint8Array, or a typed array whose buffer getter throws.
      throw unreadable(kind, '', err);
    }
    try {
      value = JSON.parse(text);
    } catch (err) {
      // The SyntaxError is deliberately not kept as `cause`: V8 quotes a slice of the input in its message, and a
      // record's key ids and ciphertext must not reach logs. The position is enough to find the fault.
      throw new InvalidRecordError(`invalid ${kind}: not valid JSON${syntaxErrorDetail(err)}; ${HINTS[kind]}`);
    }
  }
  return asObject(value, kind, '');
}

// Only the parts of V8's message that cannot contain input text: its "Unexpected token" messages quote the input.
function syntaxErrorDetail(err: unknown): string {
  const message = err instanceof Error ? err.message : '';
  const position = /at position (\d+)/.exec(message);
  if (position) return ` (error at position ${position[1]})`;
  if (message.startsWith('Unexpected end of JSON input')) return ' (the text ends too early)';
  return '';
}

function asObject(value: unknown, kind: RecordKind, path: string): JsonObject {
  if (typeof value === 'object' && value !== null && !isArray(value, kind, path) && !isBytes(value, kind, path)) {
    return value as JsonObject;
  }
  if (path === '') {
    throw new InvalidRecordError(`invalid ${kind}: expected a JSON object, got ${describe(value)}; ${HINTS[kind]}`);
  }
  throw invalid(kind, path, `must be a JSON object, got ${describe(value)}`);
}

// Array.isArray and instanceof throw a TypeError for a revoked Proxy (and instanceof runs a Proxy's getPrototypeOf).
function isArray(value: object, kind: RecordKind, path: string): boolean {
  try {
    return Array.isArray(value);
  } catch (err) {
    throw unreadable(kind, path, err);
  }
}

function isBytes(value: object, kind: RecordKind, path: string): value is Uint8Array {
  try {
    return value instanceof Uint8Array;
  } catch (err) {
    throw unreadable(kind, path, err);
  }
}

/**
 * An object form whose fields cannot be read: a getter or a Proxy trap threw. The caller's own error is kept as
 * `cause` (it is not record data); records from JSON.parse never get here.
 */
function unreadable(kind: RecordKind, path: string, err: unknown): InvalidRecordError {
  const what = path === '' ? 'the object' : path;
  return new InvalidRecordError(
    `invalid ${kind}: ${what} could not be read (a property getter or Proxy threw); pass a plain object as ` +
      `JSON.parse returns it; ${HINTS[kind]}`,
    { cause: err },
  );
}

const HINTS: Record<RecordKind, string> = {
  DataRowRecord: 'pass the record unmodified, exactly as encrypt returned it',
  EnvelopeKeyRecord: 'the key record in the metastore is corrupt or was not written by Asherah',
};

function invalid(kind: RecordKind, path: string, problem: string): InvalidRecordError {
  return new InvalidRecordError(`invalid ${kind}: ${path} ${problem}; ${HINTS[kind]}`);
}
