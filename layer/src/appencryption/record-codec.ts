import { InvalidRecordError } from './errors.js';

// DataRowRecord (DRR) and EnvelopeKeyRecord (EKR) and their JSON form (docs/wire-format.md §3.1–3.3, §3.6, §10).
//
// Encoding is byte-identical to Go `json.Marshal` of upstream's structs (go/appencryption/envelope.go), which is
// also what asherah-node returns (asherah-cobhan marshals the DRR with encoding/json, built with Go 1.24):
//   DRR  {"Key":{"Created":n,"Key":"b64","ParentKeyMeta":{"KeyId":"…","Created":n}},"Data":"b64"}
//   EKR  {"Revoked":true,"Created":n,"Key":"b64","ParentKeyMeta":{…}}   Revoked only when true, ParentKeyMeta
//        only when present (SKs have none)
// with padded standard base64, integer Created, and Go's string escaping (see `quote`).
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
  return `{"Key":${writeEnvelopeKeyRecord(drr.key, 'DataRowRecord.Key')},"Data":"${toBase64(drr.data)}"}`;
}

/** The EKR as JSON text, byte-identical to Go `json.Marshal(ekr)` (what Go's SQL metastore stores). */
export function encodeEnvelopeKeyRecord(ekr: EnvelopeKeyRecord): string {
  return writeEnvelopeKeyRecord(ekr, 'EnvelopeKeyRecord');
}

/**
 * The DRR as a plain object with PascalCase fields, for Lambda responses. Its key order is Go's, so
 * JSON.stringify gives Go's field order (but not Go's escaping of `<>&`; use encodeDataRowRecord for text).
 */
export function dataRowRecordToJsonObject(drr: DataRowRecord): DataRowRecordJson {
  const ekr = drr.key;
  const created = checkedCreated(ekr.created, 'DataRowRecord.Key.Created');
  const key: EnvelopeKeyRecordJson =
    ekr.revoked === true
      ? { Revoked: true, Created: created, Key: toBase64(ekr.encryptedKey) }
      : { Created: created, Key: toBase64(ekr.encryptedKey) };
  const parent = ekr.parentKeyMeta;
  if (parent != null) {
    key.ParentKeyMeta = {
      KeyId: parent.keyId,
      Created: checkedCreated(parent.created, 'DataRowRecord.Key.ParentKeyMeta.Created'),
    };
  }
  return { Key: key, Data: toBase64(drr.data) };
}

function writeEnvelopeKeyRecord(ekr: EnvelopeKeyRecord, path: string): string {
  let out = ekr.revoked === true ? '{"Revoked":true,"Created":' : '{"Created":';
  out += checkedCreated(ekr.created, `${path}.Created`);
  out += ',"Key":"';
  out += toBase64(ekr.encryptedKey);
  out += '"';
  const parent = ekr.parentKeyMeta;
  // Go omits a nil ParentKeyMeta (omitempty); the decoder is what insists that a DRR key has one.
  if (parent != null) {
    out += ',"ParentKeyMeta":{"KeyId":';
    out += quote(parent.keyId);
    out += ',"Created":';
    out += checkedCreated(parent.created, `${path}.ParentKeyMeta.Created`);
    out += '}';
  }
  return out + '}';
}

function checkedCreated(value: number, path: string): number {
  if (Number.isSafeInteger(value) && value >= 0) return value;
  throw new InvalidRecordError(
    `cannot encode the record: ${path} must be a non-negative integer (Unix seconds), got ${describe(value)}`,
  );
}

function toBase64(bytes: Uint8Array): string {
  // Standard alphabet with '=' padding, as Go's encoding/json and Java's Base64.getEncoder() write []byte.
  if (Buffer.isBuffer(bytes)) return bytes.toString('base64');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

// ASCII characters Go's encoding/json writes as they are (its htmlSafeSet): printable ASCII and DEL, except
// '"', '\\', '<', '>' and '&'.
const SAFE_ASCII = new Uint8Array(128);
for (let c = 0x20; c < 0x80; c++) SAFE_ASCII[c] = 1;
for (const c of '"\\<>&') SAFE_ASCII[c.charCodeAt(0)] = 0;

/**
 * A JSON string literal exactly as Go's encoding/json writes it (Go 1.22+ `appendString` with escapeHTML, in
 * src/encoding/json/encode.go): `"` and `\` backslash-escaped; \b \f \n \r \t as short escapes (Go before 1.22
 * wrote \u0008 and \u000c; asherah-cobhan, hence asherah-node, is built with Go 1.24); other control characters
 * as \u00xx in lower-case hex; `<` `>` `&` as \u003c \u003e \u0026; U+2028 and U+2029 as \u2028 \u2029;
 * everything else raw, DEL included.
 */
function quote(s: string): string {
  const length = s.length;
  for (let i = 0; i < length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80 ? SAFE_ASCII[c] === 0 : c === 0x2028 || c === 0x2029 || (c >= 0xd800 && c <= 0xdfff)) {
      return quoteFrom(s, i);
    }
  }
  return `"${s}"`; // the common case: key ids need no escaping
}

const HEX = '0123456789abcdef';

function quoteFrom(s: string, first: number): string {
  const length = s.length;
  let out = '"' + s.slice(0, first);
  let start = first; // first character not yet copied to `out`
  for (let i = first; i < length; i++) {
    const c = s.charCodeAt(i);
    let escape: string;
    if (c < 0x80) {
      if (SAFE_ASCII[c] === 1) continue;
      switch (c) {
        case 0x22: escape = '\\"'; break;
        case 0x5c: escape = '\\\\'; break;
        case 0x08: escape = '\\b'; break;
        case 0x0c: escape = '\\f'; break;
        case 0x0a: escape = '\\n'; break;
        case 0x0d: escape = '\\r'; break;
        case 0x09: escape = '\\t'; break;
        default: escape = '\\u00' + HEX[c >> 4] + HEX[c & 0xf]; // other controls, and < > &
      }
    } else if (c === 0x2028 || c === 0x2029) {
      escape = c === 0x2028 ? '\\u2028' : '\\u2029';
    } else if (c >= 0xd800 && c <= 0xdfff) {
      if (c <= 0xdbff && i + 1 < length) {
        const next = s.charCodeAt(i + 1);
        if (next >= 0xdc00 && next <= 0xdfff) {
          i++; // a valid surrogate pair: one astral character, written raw
          continue;
        }
      }
      // A lone surrogate cannot be encoded as UTF-8. Node (Buffer, TextEncoder, N-API) turns it into U+FFFD
      // before Go ever sees the string, and Go writes a valid U+FFFD raw, so we do the same. (Go writes the
      // escape \ufffd only for invalid UTF-8 bytes, which a JS string cannot hold.)
      escape = '\ufffd';
    } else {
      continue;
    }
    out += s.slice(start, i) + escape;
    start = i + 1;
  }
  return out + s.slice(start) + '"';
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

type JsonObject = Record<string, unknown>;
type RecordKind = 'DataRowRecord' | 'EnvelopeKeyRecord';

/**
 * Reads a DRR from JSON text, UTF-8 JSON bytes, or an already-parsed object (Lambda events carry the DRR as an
 * object). Throws InvalidRecordError naming the field for anything malformed.
 */
export function decodeDataRowRecord(input: string | Uint8Array | object): DataRowRecord {
  const root = toJsonObject(input, 'DataRowRecord');
  let key: unknown;
  let data: unknown;
  try {
    for (const name of Object.keys(root)) {
      // Later duplicates win, as in Go.
      switch (foldName(name)) {
        case 'KEY': key = root[name]; break;
        case 'DATA': data = root[name]; break;
      }
    }
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
    for (const name of Object.keys(object)) {
      switch (foldName(name)) {
        case 'REVOKED': revoked = object[name]; break;
        case 'CREATED': created = object[name]; break;
        case 'KEY': key = object[name]; break;
        case 'PARENTKEYMETA': parent = object[name]; break;
      }
    }
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
    for (const name of Object.keys(object)) {
      switch (foldName(name)) {
        case 'KEYID': keyId = object[name]; break;
        case 'CREATED': created = object[name]; break;
      }
    }
  } catch (err) {
    throw unreadable(kind, path, err);
  }
  if (keyId == null) throw invalid(kind, `${path}.KeyId`, 'is missing');
  if (typeof keyId !== 'string') throw invalid(kind, `${path}.KeyId`, `must be a string, got ${describe(keyId)}`);
  // Lone surrogates (from a `\ud800` escape) become U+FFFD, as in Go, whose strings hold UTF-8.
  return { keyId: keyId.toWellFormed(), created: readCreated(created, kind, `${path}.Created`) };
}

function readCreated(value: unknown, kind: RecordKind, path: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value === 0 ? 0 : value; // no -0
  if (value == null) throw invalid(kind, path, 'is missing');
  throw invalid(kind, path, `must be a non-negative integer (Unix seconds), got ${describe(value)}`);
}

function readBytes(value: unknown, kind: RecordKind, path: string): Buffer {
  if (value == null) throw invalid(kind, path, 'is missing');
  if (typeof value !== 'string') throw invalid(kind, path, `must be a base64 string, got ${describe(value)}`);
  const bytes = decodeStdBase64(value);
  if (bytes !== undefined) return bytes;
  // Go's base64 decoder skips '\r' and '\n' wherever they are ("New line characters are ignored").
  const stripped = value.replace(NEWLINES, '');
  if (stripped !== value && STD_BASE64.test(stripped) && stripped.length % 4 === 0) {
    return Buffer.from(stripped, 'base64');
  }
  throw invalid(kind, path, base64Problem(stripped));
}

// Standard alphabet, '=' padding only at the end; the length is checked separately.
const STD_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const NEWLINES = /[\r\n]/g;

/**
 * Decodes `text` if it is padded standard base64 (RFC 4648 §4, as Go requires), else returns undefined. This avoids
 * a regex scan, which costs about three times the decode itself on a large record. Buffer.from(…, 'base64') is
 * lenient in three ways that are ruled out first: it takes the URL-safe '-' and '_', it reads only the low byte
 * of a non-ASCII UTF-16 unit ('Ł', U+0141, decodes as 'A'), and it stops at '='. Any other character outside the
 * alphabet is skipped by the decoder, so the output is then shorter than a valid string of this length must give.
 */
function decodeStdBase64(text: string): Buffer | undefined {
  const length = text.length;
  if (length % 4 !== 0) return undefined;
  let padding = 0;
  const firstEquals = text.indexOf('=');
  if (firstEquals !== -1) {
    padding = length - firstEquals;
    if (padding > 2 || (padding === 2 && text.charCodeAt(length - 1) !== 0x3d)) return undefined;
  }
  if (text.indexOf('-') !== -1 || text.indexOf('_') !== -1) return undefined;
  if (Buffer.byteLength(text, 'utf8') !== length) return undefined; // some character is not ASCII
  const bytes = Buffer.from(text, 'base64');
  return bytes.length === (length / 4) * 3 - padding ? bytes : undefined;
}

function base64Problem(text: string): string {
  const what = 'must be standard base64 with "=" padding (RFC 4648 §4)';
  if (/[-_]/.test(text)) return `${what}; it uses the URL-safe alphabet`;
  if (/[^A-Za-z0-9+/=]/.test(text)) return `${what}; it contains characters outside the base64 alphabet`;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return `${what}; it has "=" padding in the wrong place`;
  return `${what}; it is not padded to a multiple of 4 characters`;
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

/**
 * Go's encoding/json matches field names case-insensitively (docs/wire-format.md §3.6): since Go 1.21 it compares
 * `ToUpper(ToLower(r))` of every rune (foldName in src/encoding/json/fold.go). Our field names are ASCII, and the
 * only non-ASCII runes that fold to ASCII letters are U+0130 İ and U+0131 ı (to I), U+017F ſ (to S) and U+212A
 * Kelvin sign (to K); any other non-ASCII rune cannot match, so it is left as it is.
 */
function foldName(name: string): string {
  // Fast path: the names upstream encoders write.
  switch (name) {
    case 'Key': return 'KEY';
    case 'Data': return 'DATA';
    case 'Created': return 'CREATED';
    case 'ParentKeyMeta': return 'PARENTKEYMETA';
    case 'KeyId': return 'KEYID';
    case 'Revoked': return 'REVOKED';
  }
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) out += String.fromCharCode(c - 0x20);
    else if (c === 0x130 || c === 0x131) out += 'I';
    else if (c === 0x17f) out += 'S';
    else if (c === 0x212a) out += 'K';
    else out += name[i];
  }
  return out;
}

const HINTS: Record<RecordKind, string> = {
  DataRowRecord: 'pass the record unmodified, exactly as encrypt returned it',
  EnvelopeKeyRecord: 'the key record in the metastore is corrupt or was not written by Asherah',
};

function invalid(kind: RecordKind, path: string, problem: string): InvalidRecordError {
  return new InvalidRecordError(`invalid ${kind}: ${path} ${problem}; ${HINTS[kind]}`);
}

/** The kind of a value, for messages. Never the value itself: it may be a key id or ciphertext. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'number':
      if (!Number.isFinite(value)) return 'a non-finite number';
      if (!Number.isInteger(value)) return 'a fractional number';
      if (value < 0) return 'a negative number';
      return Number.isSafeInteger(value) ? 'a number' : 'an integer too large to represent exactly';
    case 'string':
      return 'a string';
    case 'boolean':
      return 'a boolean';
    case 'object':
      return 'an object';
    default:
      return `a ${typeof value}`;
  }
}
