import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  dataRowRecordToJsonObject,
  decodeDataRowRecord,
  decodeEnvelopeKeyRecord,
  encodeDataRowRecord,
  encodeEnvelopeKeyRecord,
  type DataRowRecord,
} from '../../../layer/src/appencryption/record-codec';
import { InvalidRecordError } from '../../../layer/src/appencryption/errors';

// Upstream Go's known-answer vectors, vendored in test/vectors (see its README).
const VECTORS_DIR = path.resolve(__dirname, '../../vectors');

interface VectorCase {
  metastore_rows: { id: string; created: number; key_record: string }[];
  drr: string;
}

const vectorCases: [string, VectorCase][] = readdirSync(VECTORS_DIR)
  .filter((name) => name.endsWith('.json'))
  .flatMap((name) => {
    const file = JSON.parse(readFileSync(path.join(VECTORS_DIR, name), 'utf8')) as { cases: VectorCase[] };
    return file.cases.map((c, i): [string, VectorCase] => [`${name}#${i}`, c]);
  });

const GO_DRR = vectorCases[0][1].drr;
const IK_ID = '_IK_partition_service_product';

function expectInvalid(fn: () => unknown, field?: RegExp): InvalidRecordError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidRecordError);
    expect((err as Error).name).toBe('InvalidRecordError');
    if (field) expect((err as Error).message).toMatch(field);
    return err as InvalidRecordError;
  }
  throw new Error('expected an InvalidRecordError, but nothing was thrown');
}

// The tests write values of every wrong type into records, so the mutable record object is deliberately untyped.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;

/** A DRR as a mutable plain object, to build variants of the Go vector. */
function goDrrObject(): Loose {
  return JSON.parse(GO_DRR);
}

function drrWithKeyId(keyId: string): DataRowRecord {
  return {
    key: {
      created: 1795858178,
      encryptedKey: Buffer.from('00112233', 'hex'),
      parentKeyMeta: { keyId, created: 1795858140 },
    },
    data: Buffer.from('hello'),
  };
}

/** Independent oracle for Go's string escaping: JSON.stringify escapes what Go does except <>& and U+2028/9. */
function goQuote(s: string): string {
  return JSON.stringify(s)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** Deterministic PRNG (mulberry32), so a failing fuzz case can be reproduced. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('record codec: the upstream Go vectors', () => {
  it.each(vectorCases)('%s: the DRR re-encodes byte-identically after decode', (_name, c) => {
    expect(encodeDataRowRecord(decodeDataRowRecord(c.drr))).toBe(c.drr);
  });

  it.each(vectorCases)('%s: every key_record re-encodes byte-identically after decode', (_name, c) => {
    for (const row of c.metastore_rows) {
      expect(encodeEnvelopeKeyRecord(decodeEnvelopeKeyRecord(row.key_record))).toBe(row.key_record);
    }
  });

  it('decodes the fields of a Go DRR (docs/wire-format.md §8.3.1)', () => {
    const drr = decodeDataRowRecord(GO_DRR);
    expect(drr.key.created).toBe(1795858178);
    expect(drr.key.encryptedKey.length).toBe(60);
    expect(drr.key.parentKeyMeta).toEqual({ keyId: IK_ID, created: 1795858140 });
    expect(drr.key.revoked).toBeUndefined();
    expect(drr.data.length).toBe('mySuperSecretPayload'.length + 28);
  });

  it('decodes an SK record without ParentKeyMeta and an IK record with one', () => {
    const [sk, ik] = vectorCases[0][1].metastore_rows.map((row) => decodeEnvelopeKeyRecord(row.key_record));
    expect(sk.parentKeyMeta).toBeUndefined();
    expect(sk.encryptedKey.length).toBe(60);
    expect(ik.parentKeyMeta).toEqual({ keyId: '_SK_service_product', created: 1795858140 });
  });

  it('decodes the same DRR from text, UTF-8 bytes and an already-parsed object', () => {
    const fromText = decodeDataRowRecord(GO_DRR);
    expect(decodeDataRowRecord(Buffer.from(GO_DRR, 'utf8'))).toEqual(fromText);
    expect(decodeDataRowRecord(new TextEncoder().encode(GO_DRR))).toEqual(fromText);
    expect(decodeDataRowRecord(JSON.parse(GO_DRR))).toEqual(fromText);
  });

  it('gives the PascalCase object of a DRR in Go field order, for Lambda responses', () => {
    const object = dataRowRecordToJsonObject(decodeDataRowRecord(GO_DRR));
    expect(object).toEqual(JSON.parse(GO_DRR));
    expect(JSON.stringify(object)).toBe(GO_DRR);
    expect(decodeDataRowRecord(object)).toEqual(decodeDataRowRecord(GO_DRR));
  });
});

describe('record codec: encoding like Go json.Marshal', () => {
  it('escapes <, > and & as \\u003c, \\u003e and \\u0026 (docs/wire-format.md §3.1)', () => {
    const json = encodeDataRowRecord(drrWithKeyId('_IK_user<&>42_service_product'));
    expect(json).toContain('"KeyId":"_IK_user\\u003c\\u0026\\u003e42_service_product"');
    expect(decodeDataRowRecord(json).key.parentKeyMeta!.keyId).toBe('_IK_user<&>42_service_product');
  });

  it('escapes U+2028 and U+2029', () => {
    const json = encodeDataRowRecord(drrWithKeyId('a\u2028b\u2029c'));
    expect(json).toContain('"KeyId":"a\\u2028b\\u2029c"');
  });

  it('escapes control characters with Go 1.22+ short forms and lower-case \\u00xx for the rest', () => {
    const controls = Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)).join('');
    const expected =
      '\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f' +
      '\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f';
    expect(encodeDataRowRecord(drrWithKeyId(controls))).toContain(`"KeyId":"${expected}"`);
  });

  it('escapes quote and backslash, and writes DEL, non-ASCII and astral characters raw', () => {
    const json = encodeDataRowRecord(drrWithKeyId('q"b\\d\u007fé€😀'));
    expect(json).toContain('"KeyId":"q\\"b\\\\d\u007fé€😀"');
  });

  it('writes a lone surrogate as U+FFFD, as Go does with the UTF-8 that Node produces from it', () => {
    const json = encodeDataRowRecord(drrWithKeyId('a\ud800b\udc00c'));
    expect(json).toContain('"KeyId":"a\ufffdb\ufffdc"');
    expect(decodeDataRowRecord(json).key.parentKeyMeta!.keyId).toBe('a\ufffdb\ufffdc');
  });

  it('escapes any string exactly as the JSON.stringify-based oracle of Go escaping (fuzz)', () => {
    const random = prng(2028);
    const alphabet = ['<', '>', '&', '"', '\\', '\u2028', '\u2029', '\u007f', 'é', '😀', 'a', '_', '/', "'"];
    for (let n = 0; n < 2000; n++) {
      let s = '';
      const length = Math.floor(random() * 12);
      for (let i = 0; i < length; i++) {
        s += random() < 0.4 ? String.fromCharCode(Math.floor(random() * 0x80)) : alphabet[Math.floor(random() * alphabet.length)];
      }
      expect(encodeDataRowRecord(drrWithKeyId(s))).toContain(`"KeyId":${goQuote(s)},`);
      expect(decodeDataRowRecord(encodeDataRowRecord(drrWithKeyId(s))).key.parentKeyMeta!.keyId).toBe(s);
    }
  });

  it('writes Revoked first and only when true, and ParentKeyMeta only when present', () => {
    const key = Buffer.from([1, 2, 3]);
    expect(encodeEnvelopeKeyRecord({ created: 60, encryptedKey: key })).toBe('{"Created":60,"Key":"AQID"}');
    expect(encodeEnvelopeKeyRecord({ created: 60, encryptedKey: key, revoked: false })).toBe('{"Created":60,"Key":"AQID"}');
    expect(
      encodeEnvelopeKeyRecord({
        created: 120,
        encryptedKey: key,
        revoked: true,
        parentKeyMeta: { keyId: '_SK_s_p', created: 60 },
      }),
    ).toBe('{"Revoked":true,"Created":120,"Key":"AQID","ParentKeyMeta":{"KeyId":"_SK_s_p","Created":60}}');
  });

  it('writes padded standard base64 for any length, including empty', () => {
    const drr = drrWithKeyId('k');
    for (const [bytes, b64] of [
      [[], ''],
      [[0xfb], '+w=='],
      [[0xfb, 0xff], '+/8='],
      [[0xfb, 0xff, 0xbf], '+/+/'],
    ] as const) {
      drr.data = Buffer.from(bytes);
      expect(encodeDataRowRecord(drr)).toMatch(new RegExp(`"Data":"${b64.replace(/[+/]/g, '\\$&')}"}$`));
    }
    drr.data = new Uint8Array([0xfb, 0xff]) as Buffer; // a plain Uint8Array works too
    expect(encodeDataRowRecord(drr)).toMatch(/"Data":"\+\/8="}$/);
  });

  it('refuses to encode a Created that is not a non-negative integer', () => {
    for (const created of [-1, 1.5, Number.NaN, 2 ** 53]) {
      const drr = drrWithKeyId('k');
      drr.key.created = created;
      expectInvalid(() => encodeDataRowRecord(drr), /Key\.Created/);
      expectInvalid(() => dataRowRecordToJsonObject(drr), /Key\.Created/);
    }
  });
});

describe('record codec: decoding what upstream Go or Java accept (docs/wire-format.md §3.6, §10)', () => {
  const expected = decodeDataRowRecord(GO_DRR);

  it('accepts lower-case field names, as Go matches names case-insensitively', () => {
    const lower = GO_DRR.replace(/"(Key|Data|Created|ParentKeyMeta|KeyId)":/g, (_m, name: string) => `"${name.toLowerCase()}":`);
    expect(lower).toContain('"parentkeymeta":{"keyid"');
    expect(decodeDataRowRecord(lower)).toEqual(expected);
  });

  it('accepts mixed-case names and the Unicode runes Go folds to ASCII (Kelvin sign, dotless i)', () => {
    const odd = GO_DRR.replace('"ParentKeyMeta"', '"pArEnT\u212AeYmEtA"').replace('"KeyId"', '"keY\u0131D"');
    expect(decodeDataRowRecord(odd)).toEqual(expected);
  });

  it('accepts <, > and & unescaped (Rust) and escaped (Go)', () => {
    const raw = GO_DRR.replace(IK_ID, '_IK_a<&>b_service_product');
    const escaped = GO_DRR.replace(IK_ID, '_IK_a\\u003c\\u0026\\u003eb_service_product');
    expect(decodeDataRowRecord(raw).key.parentKeyMeta!.keyId).toBe('_IK_a<&>b_service_product');
    expect(decodeDataRowRecord(escaped)).toEqual(decodeDataRowRecord(raw));
    // Whatever the input escaping, re-encoding gives Go's bytes.
    expect(encodeDataRowRecord(decodeDataRowRecord(raw))).toBe(GO_DRR.replace(IK_ID, '_IK_a\\u003c\\u0026\\u003eb_service_product'));
  });

  it("accepts Java-style records: \"Revoked\":false, any key order, escaped '/' and whitespace", () => {
    const o = goDrrObject();
    const javaStyle =
      `{ "Data" : ${JSON.stringify(o.Data).replace(/\//g, '\\/')},\n  "Key": { "ParentKeyMeta": { "Created": 1795858140, ` +
      `"KeyId": "${IK_ID}" }, "Revoked": false, "Key": ${JSON.stringify(o.Key.Key).replace(/\//g, '\\/')}, ` +
      `"Created": 1795858178 } }`;
    expect(decodeDataRowRecord(javaStyle)).toEqual(expected);
  });

  it('accepts the Java-written metastore record shape with "Revoked":false first (docs/wire-format.md §3.3)', () => {
    const java =
      '{"Revoked":false,"ParentKeyMeta": {"KeyId":"_SK_api_ecomm","Created":1551980040},' +
      '"Key":"WXSRYxyx6YJgv/gCLuYmZo+tCILhPp+Fklx8rZPBH+56zu2hVoI8N8TVDyvi9u+H7akWLD6cYBvAtO5Z","Created":1551980041}';
    const ekr = decodeEnvelopeKeyRecord(java);
    expect(ekr).toEqual({
      created: 1551980041,
      encryptedKey: Buffer.from('WXSRYxyx6YJgv/gCLuYmZo+tCILhPp+Fklx8rZPBH+56zu2hVoI8N8TVDyvi9u+H7akWLD6cYBvAtO5Z', 'base64'),
      parentKeyMeta: { keyId: '_SK_api_ecomm', created: 1551980040 },
    });
    expect(encodeEnvelopeKeyRecord(ekr)).toBe(
      '{"Created":1551980041,"Key":"WXSRYxyx6YJgv/gCLuYmZo+tCILhPp+Fklx8rZPBH+56zu2hVoI8N8TVDyvi9u+H7akWLD6cYBvAtO5Z",' +
        '"ParentKeyMeta":{"KeyId":"_SK_api_ecomm","Created":1551980040}}',
    );
  });

  it('reads "Revoked":true anywhere in a key record, and null as not revoked', () => {
    const last = decodeEnvelopeKeyRecord('{"Created":60,"Key":"AQID","Revoked":true}');
    expect(last.revoked).toBe(true);
    expect(encodeEnvelopeKeyRecord(last)).toBe('{"Revoked":true,"Created":60,"Key":"AQID"}');
    expect(decodeEnvelopeKeyRecord('{"revoked":null,"Created":60,"Key":"AQID"}').revoked).toBeUndefined();
  });

  it('ignores unknown fields, including an ID field (Go json:"-")', () => {
    const o = goDrrObject();
    o.Extra = { nested: [1, 2, 3] };
    o.Key.ID = '_IK_other';
    o.Key.Revoked = false;
    o.Key.ParentKeyMeta.Comment = 'x';
    expect(decodeDataRowRecord(JSON.stringify(o))).toEqual(expected);
  });

  it('takes the later of two fields whose names differ only in case, as Go does', () => {
    const o = goDrrObject();
    const json = JSON.stringify(o).replace('"Data":', '"data":"AAAA","Data":');
    expect(decodeDataRowRecord(json).data).toEqual(expected.data);
  });

  it('accepts integral numbers written with a fraction or exponent (Java getLong does)', () => {
    const json = GO_DRR.replace('"Created":1795858178', '"Created":1795858178.0').replace('"Created":1795858140}', '"Created":1.79585814e9}');
    expect(decodeDataRowRecord(json)).toEqual(expected);
  });

  it('ignores newlines inside base64, as Go encoding/base64 does', () => {
    const o = goDrrObject();
    o.Data = `${o.Data.slice(0, 20)}\r\n${o.Data.slice(20)}\n`;
    expect(decodeDataRowRecord(o)).toEqual(expected);
  });

  it('decodes large base64 data exactly, and rejects a single bad character anywhere in it', () => {
    const o = goDrrObject();
    const big = Buffer.alloc(300_001, 0xa5);
    o.Data = big.toString('base64');
    expect(decodeDataRowRecord(o).data.equals(big)).toBe(true);
    for (const bad of ['-', '_', '*', ' ', '\u0141', '=']) {
      const at = 1000 + bad.charCodeAt(0);
      const p = goDrrObject();
      p.Data = o.Data.slice(0, at) + bad + o.Data.slice(at + 1);
      expectInvalid(() => decodeDataRowRecord(p), /Data must be standard base64/);
    }
  });

  it('accepts empty base64 data (decrypt, not decode, rejects it)', () => {
    const o = goDrrObject();
    o.Data = '';
    expect(decodeDataRowRecord(o).data.length).toBe(0);
  });

  it('turns a lone-surrogate escape in KeyId into U+FFFD, as Go does', () => {
    const json = GO_DRR.replace(IK_ID, '_IK_\\ud800_x');
    expect(decodeDataRowRecord(json).key.parentKeyMeta!.keyId).toBe('_IK_\ufffd_x');
  });
});

describe('record codec: rejecting malformed records with InvalidRecordError', () => {
  type Mutate = (o: Loose) => void;
  const drrCases: [string, Mutate, RegExp][] = [
    ['Data without padding', (o) => (o.Data = 'AQI'), /Data .*not padded to a multiple of 4/],
    ['Data cut short', (o) => (o.Data = o.Data.slice(0, -1)), /Data .*not padded to a multiple of 4/],
    ['Data in the URL-safe alphabet', (o) => (o.Data = o.Data.replace(/\+/g, '-').replace(/\//g, '_')), /Data .*URL-safe/],
    ['Key.Key with characters outside base64', (o) => (o.Key.Key = `*${o.Key.Key.slice(1)}`), /Key\.Key .*outside the base64/],
    // Buffer.from(…, 'base64') reads only the low byte of U+0141 and would take it for 'A'.
    ['Data with a non-ASCII character', (o) => (o.Data = `${o.Data.slice(0, -1)}\u0141`), /Data .*outside the base64/],
    ['Data with a space', (o) => (o.Data = `${o.Data.slice(0, 4)} ${o.Data.slice(5)}`), /Data .*outside the base64/],
    ['Data with a NUL', (o) => (o.Data = `${o.Data.slice(0, -1)}\u0000`), /Data .*outside the base64/],
    ['Data with too much padding', (o) => (o.Data = 'A==='), /Data .*padding in the wrong place/],
    ['Data with padding in the middle', (o) => (o.Data = `AA==${o.Data}`), /Data .*padding in the wrong place/],
    ['Data as a number', (o) => (o.Data = 12), /Data must be a base64 string, got a number/],
    ['Data as an array of bytes', (o) => (o.Data = [1, 2]), /Data must be a base64 string, got an array/],
    ['Key.Created as a string', (o) => (o.Key.Created = '1795858178'), /Key\.Created must be .* got a string/],
    ['ParentKeyMeta.Created as a string', (o) => (o.Key.ParentKeyMeta.Created = '1795858140'), /Key\.ParentKeyMeta\.Created .*string/],
    ['a negative Created', (o) => (o.Key.Created = -60), /Key\.Created .*negative/],
    ['a fractional Created', (o) => (o.Key.Created = 1.5), /Key\.Created .*fractional/],
    ['a Created beyond 2^53', (o) => (o.Key.Created = 2 ** 60), /Key\.Created .*too large/],
    ['a missing Key.Created', (o) => delete o.Key.Created, /Key\.Created is missing/],
    ['a missing ParentKeyMeta.Created', (o) => delete o.Key.ParentKeyMeta.Created, /ParentKeyMeta\.Created is missing/],
    ['a missing Key', (o) => delete o.Key, /Key is missing/],
    ['a null Key', (o) => (o.Key = null), /Key is missing/],
    ['Key as a string', (o) => (o.Key = 'abc'), /Key must be a JSON object, got a string/],
    ['Key as an array', (o) => (o.Key = []), /Key must be a JSON object, got an array/],
    ['a missing Data', (o) => delete o.Data, /Data is missing/],
    ['a null Data', (o) => (o.Data = null), /Data is missing/],
    ['a missing Key.Key', (o) => delete o.Key.Key, /Key\.Key is missing/],
    ['a missing ParentKeyMeta', (o) => delete o.Key.ParentKeyMeta, /Key\.ParentKeyMeta is missing/],
    ['a null ParentKeyMeta', (o) => (o.Key.ParentKeyMeta = null), /Key\.ParentKeyMeta is missing/],
    ['ParentKeyMeta as a string', (o) => (o.Key.ParentKeyMeta = 'x'), /Key\.ParentKeyMeta must be a JSON object/],
    ['a missing KeyId', (o) => delete o.Key.ParentKeyMeta.KeyId, /ParentKeyMeta\.KeyId is missing/],
    ['KeyId as a number', (o) => (o.Key.ParentKeyMeta.KeyId = 7), /ParentKeyMeta\.KeyId must be a string/],
    ['Revoked as a string', (o) => (o.Key.Revoked = 'true'), /Key\.Revoked must be true or false/],
  ];

  it.each(drrCases)('rejects %s, naming the field', (_name, mutate, field) => {
    const o = goDrrObject();
    mutate(o);
    expectInvalid(() => decodeDataRowRecord(JSON.stringify(o)), field);
    expectInvalid(() => decodeDataRowRecord(o), field); // the already-parsed (Lambda event) path too
  });

  it.each([
    ['an array', '[]', /expected a JSON object, got an array/],
    ['a string', '"drr"', /expected a JSON object, got a string/],
    ['a number', '42', /expected a JSON object, got a number/],
    ['null', 'null', /expected a JSON object, got null/],
    ['a boolean', 'true', /expected a JSON object, got a boolean/],
    ['empty text', '', /not valid JSON \(the text ends too early\)/],
    ['truncated JSON', GO_DRR.slice(0, 40), /not valid JSON/],
    ['an unexpected token', '{"Key":}', /not valid JSON; /],
    ['an unterminated object', '{"Key":1', /not valid JSON \(error at position 8\)/],
    ['a leading byte-order mark', `\ufeff${GO_DRR}`, /not valid JSON/],
  ])('rejects %s as a record', (_name, text, message) => {
    expectInvalid(() => decodeDataRowRecord(text), message);
    expectInvalid(() => decodeEnvelopeKeyRecord(text), message);
  });

  it('rejects inputs of the wrong type without a TypeError', () => {
    for (const input of [null, undefined, 42, true, [], ['{}']]) {
      expectInvalid(() => decodeDataRowRecord(input as unknown as object), /DataRowRecord: expected a JSON object/);
      expectInvalid(() => decodeEnvelopeKeyRecord(input as unknown as object), /EnvelopeKeyRecord: expected a JSON object/);
    }
  });

  it('rejects key records without Key or Created, or with a malformed ParentKeyMeta', () => {
    expectInvalid(() => decodeEnvelopeKeyRecord('{"Created":60}'), /EnvelopeKeyRecord: Key is missing/);
    expectInvalid(() => decodeEnvelopeKeyRecord('{"Key":"AQID"}'), /EnvelopeKeyRecord: Created is missing/);
    expectInvalid(() => decodeEnvelopeKeyRecord('{"Created":60,"Key":"AQ"}'), /Key .*not padded/);
    expectInvalid(() => decodeEnvelopeKeyRecord('{"Created":60,"Key":"AQID","ParentKeyMeta":{"Created":1}}'), /ParentKeyMeta\.KeyId is missing/);
    expectInvalid(() => decodeEnvelopeKeyRecord('{"Created":60,"Key":"AQID","Revoked":1}'), /Revoked must be true or false/);
  });

  it('never puts key ids or ciphertext from the record in its messages', () => {
    const secretId = '_IK_alice@example.com_service_product';
    const o = goDrrObject();
    o.Key.ParentKeyMeta.KeyId = secretId;
    const texts = [
      JSON.stringify({ ...o, Data: o.Data.slice(1) }),
      JSON.stringify(o).replace('"Created":1795858178', '"Created":"1795858178"'),
      JSON.stringify(o).slice(0, -2),
      JSON.stringify(o).replace(secretId, `${secretId}\u0000`).replace('{', '{{'),
    ];
    for (const text of texts) {
      const err = expectInvalid(() => decodeDataRowRecord(text));
      expect(err.message).not.toContain('alice');
      expect(err.message).not.toContain(o.Data.slice(1, 20));
      expect(err.message).not.toContain('1795858178');
      expect(err.cause === undefined || !String(err.cause).includes('alice')).toBe(true);
    }
  });
});

describe('record codec: fuzzing', () => {
  const isExpected = (fn: () => unknown): boolean => {
    try {
      fn();
      return true;
    } catch (err) {
      return err instanceof InvalidRecordError;
    }
  };

  it('1,000 random text mutations of a valid DRR never throw anything but InvalidRecordError', () => {
    const random = prng(42);
    const pick = (s: string) => Math.floor(random() * s.length);
    const junk = ['{', '}', '[', ']', '"', ':', ',', '\\', '=', '-', '_', '0', '1e999', 'null', 'true', ' ', '\u0000', 'é', '\ud800'];
    let failures = 0;
    for (let n = 0; n < 1000; n++) {
      let s = GO_DRR;
      const edits = 1 + Math.floor(random() * 3);
      for (let e = 0; e < edits; e++) {
        const at = pick(s);
        switch (Math.floor(random() * 5)) {
          case 0: s = s.slice(0, at) + s.slice(at + 1); break; // delete a character
          case 1: s = s.slice(0, at) + junk[Math.floor(random() * junk.length)] + s.slice(at); break; // insert
          case 2: s = s.slice(0, at) + String.fromCharCode(Math.floor(random() * 0x80)) + s.slice(at + 1); break; // replace
          case 3: s = s.slice(0, at); break; // truncate
          default: { const from = pick(s); s = s.slice(0, at) + s.slice(from, from + 8) + s.slice(at); } // duplicate a span
        }
      }
      const ok = isExpected(() => {
        const drr = decodeDataRowRecord(s);
        decodeDataRowRecord(encodeDataRowRecord(drr)); // whatever decodes must re-encode and decode again
      });
      if (!ok) failures++;
    }
    expect(failures).toBe(0);
  });

  it('1,000 random value substitutions in a parsed DRR never throw anything but InvalidRecordError', () => {
    const random = prng(7);
    const values: unknown[] = [null, undefined, 0, -1, 1.5, 2 ** 64, NaN, '', 'AQID', 'AQ', '1795858140', true, false, [], {}, [1], { Created: 1 }];
    const paths = [['Key'], ['Data'], ['Key', 'Created'], ['Key', 'Key'], ['Key', 'ParentKeyMeta'], ['Key', 'Revoked'],
      ['Key', 'ParentKeyMeta', 'KeyId'], ['Key', 'ParentKeyMeta', 'Created']];
    let failures = 0;
    for (let n = 0; n < 1000; n++) {
      const o = goDrrObject();
      for (let e = 0; e < 1 + Math.floor(random() * 2); e++) {
        const p = paths[Math.floor(random() * paths.length)];
        let target: Loose = o;
        for (const step of p.slice(0, -1)) target = target && typeof target === 'object' ? target[step] : undefined;
        if (target && typeof target === 'object') target[p[p.length - 1]] = values[Math.floor(random() * values.length)];
      }
      if (!isExpected(() => decodeDataRowRecord(o))) failures++;
      if (!isExpected(() => decodeDataRowRecord(JSON.stringify(o) ?? 'undefined'))) failures++;
    }
    expect(failures).toBe(0);
  });
});
