// What Go's encoding/json does with the values Asherah stores, shared by the record codec (record-codec.ts), the
// metastores and the AWS KMS envelope (kms/aws-kms-envelope.ts): []byte fields as padded standard base64, Go's
// string escaping, and integer Created times (docs/wire-format.md §3.1–3.3, §3.6).

// ---------------------------------------------------------------------------------------------------------------
// Created

/** Whether `value` is a Created time as the wire format holds it: a non-negative integer number of Unix seconds. */
export function isUnixSeconds(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** The kind of a value, for messages. Never the value itself: it may be a key id or ciphertext. */
export function describe(value: unknown): string {
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

/** The kind of a value that should have been a number, for messages: describe's words, or `a <typeof>`. */
export function describeNumber(value: unknown): string {
  return typeof value === 'number' ? describe(value) : `a ${typeof value}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Base64

/** Padded standard base64, as Go's encoding/json and Java's Base64.getEncoder() write []byte. */
export function toBase64(bytes: Uint8Array): string {
  if (Buffer.isBuffer(bytes)) return bytes.toString('base64');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
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
export function decodeStdBase64(text: string): Buffer | undefined {
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

/**
 * Decodes `text` as Go's encoding/json decodes a []byte field: padded standard base64, where '\r' and '\n' are
 * skipped wherever they are ("New line characters are ignored"). Undefined if it is not; base64Problem says why.
 */
export function decodeGoBase64(text: string): Buffer | undefined {
  const bytes = decodeStdBase64(text);
  if (bytes !== undefined) return bytes;
  const stripped = text.replace(NEWLINES, '');
  if (stripped !== text && STD_BASE64.test(stripped) && stripped.length % 4 === 0) {
    return Buffer.from(stripped, 'base64');
  }
  return undefined;
}

/** Why decodeGoBase64 refused `text`, for a message (it never quotes the text). */
export function base64Problem(text: string): string {
  const stripped = text.replace(NEWLINES, '');
  const what = 'must be standard base64 with "=" padding (RFC 4648 §4)';
  if (/[-_]/.test(stripped)) return `${what}; it uses the URL-safe alphabet`;
  if (/[^A-Za-z0-9+/=]/.test(stripped)) return `${what}; it contains characters outside the base64 alphabet`;
  if (!STD_BASE64.test(stripped)) return `${what}; it has "=" padding in the wrong place`;
  return `${what}; it is not padded to a multiple of 4 characters`;
}

// ---------------------------------------------------------------------------------------------------------------
// Strings

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
export function quote(s: string): string {
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

/**
 * Go's encoding/json matches field names case-insensitively (docs/wire-format.md §3.6): since Go 1.21 it compares
 * `ToUpper(ToLower(r))` of every rune (foldName in src/encoding/json/fold.go). Our field names are ASCII, and the
 * only non-ASCII runes that fold to ASCII letters are U+0130 İ and U+0131 ı (to I), U+017F ſ (to S) and U+212A
 * Kelvin sign (to K); any other non-ASCII rune cannot match, so it is left as it is.
 */
export function foldName(name: string): string {
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

/**
 * Reads the fields `names` of a JSON object as Go's encoding/json fills a struct: each key goes to the field it
 * names exactly or under Go's case folding, in the object's key order, so the last of duplicates wins (`{"Key": a,
 * "key": b}` reads b). Made once per set of names; the read may throw where a getter or Proxy trap does.
 */
export function goFieldReader<N extends string>(names: readonly N[]): (object: object) => Partial<Record<N, unknown>> {
  const byFolded = new Map<string, N>(names.map((name) => [foldName(name), name]));
  return (object) => {
    const fields: Partial<Record<N, unknown>> = {};
    for (const key of Object.keys(object)) {
      const name = byFolded.get(foldName(key));
      if (name !== undefined) fields[name] = (object as Record<string, unknown>)[key];
    }
    return fields;
  };
}
