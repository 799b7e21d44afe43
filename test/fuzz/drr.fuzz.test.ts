/**
 * Fuzzing the DataRowRecord and EnvelopeKeyRecord codec and decrypt: JSON text, UTF-8 bytes and objects,
 * arbitrary and mutated from a valid record. Every outcome is a value or a named AsherahError with a message that
 * names no key id, ciphertext or plaintext; a mutated record that still decrypts gives the original plaintext.
 */
// Runs in this file: 104,000 fast-check cases + 2 × (length of the valid DRR) exhaustive truncations (see RUNS).
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import {
  decodeDataRowRecord,
  decodeEnvelopeKeyRecord,
  decryptAsync,
  decryptStringAsync,
  encodeDataRowRecord,
  encodeEnvelopeKeyRecord,
  encryptStringAsync,
  getSessionFactory,
  InvalidRecordError,
  setup,
  shutdown,
  type DataRowRecord,
  type EnvelopeKeyRecord,
} from '../../layer/src/index';
import {
  anyValue,
  applyObjectEdits,
  applyTextEdits,
  asyncOutcomeOf,
  deeplyNestedText,
  hostileString,
  objectEdit,
  outcomeOf,
  SEED,
  textEdit,
  throwingGetter,
  revokedProxy,
  throwingProxy,
} from './fuzz-support';

const RUNS = {
  jsonText: 15_000,
  mutatedText: 20_000,
  objects: 15_000,
  mutatedObjects: 20_000,
  bytes: 8_000,
  envelopeKeyRecord: 12_000,
  decryptMutatedText: 6_000,
  decryptPartition: 1_000,
  encryptPartition: 1_000,
  sessionDecryptObjects: 6_000,
};

const PARTITION = 'partition';
const PLAINTEXT = 'the plaintext of the fuzzed record: ünïcödé and 🔐';
const CODEC_ERRORS = ['InvalidRecordError'];

let validText: string;
let validObject: object;
let secrets: string[];

beforeAll(async () => {
  setup({ ServiceName: 'service', ProductID: 'product', Metastore: 'memory', KMS: 'test-debug-static' });
  validText = await encryptStringAsync(PARTITION, PLAINTEXT);
  validObject = JSON.parse(validText) as object;
  const drr = decodeDataRowRecord(validText);
  // What no error message may contain: the key id, the ciphertext (any 12 characters of it), the plaintext.
  const keyB64 = drr.key.encryptedKey.toString('base64');
  const dataB64 = drr.data.toString('base64');
  secrets = [drr.key.parentKeyMeta!.keyId, keyB64.slice(4, 16), dataB64.slice(4, 16), PLAINTEXT, String(drr.key.created)];
});

afterAll(() => shutdown());

/** A decoded DRR has Buffers, a string key id and whole-second Created values, and re-encodes to itself. */
function checkDecoded(drr: DataRowRecord): void {
  const ok =
    Buffer.isBuffer(drr.data) &&
    Buffer.isBuffer(drr.key.encryptedKey) &&
    Number.isSafeInteger(drr.key.created) &&
    drr.key.created >= 0 &&
    !Object.is(drr.key.created, -0) &&
    drr.key.parentKeyMeta !== undefined &&
    typeof drr.key.parentKeyMeta.keyId === 'string' &&
    Number.isSafeInteger(drr.key.parentKeyMeta.created) &&
    drr.key.parentKeyMeta.created >= 0 &&
    (drr.key.revoked === undefined || drr.key.revoked === true);
  if (!ok) throw new Error('decoded DRR has a malformed field');
  if (!isDeepStrictEqual(decodeDataRowRecord(encodeDataRowRecord(drr)), drr)) throw new Error('DRR does not re-encode to itself');
}

function checkDecodedKey(ekr: EnvelopeKeyRecord): void {
  const parent = ekr.parentKeyMeta;
  const ok =
    Buffer.isBuffer(ekr.encryptedKey) &&
    Number.isSafeInteger(ekr.created) &&
    ekr.created >= 0 &&
    (parent === undefined || (typeof parent.keyId === 'string' && Number.isSafeInteger(parent.created) && parent.created >= 0));
  if (!ok) throw new Error('decoded EnvelopeKeyRecord has a malformed field');
  if (!isDeepStrictEqual(decodeEnvelopeKeyRecord(encodeEnvelopeKeyRecord(ekr)), ekr)) throw new Error('EKR does not re-encode');
}

function decodeChecked(input: unknown): void {
  const outcome = outcomeOf(() => decodeDataRowRecord(input as object), CODEC_ERRORS, secrets);
  if ('value' in outcome) checkDecoded(outcome.value);
}

const textEdits = fc.array(textEdit, { minLength: 1, maxLength: 4 });
const objectEdits = fc.array(objectEdit, { minLength: 1, maxLength: 3 });

describe('DataRowRecord codec', () => {
  test('decodes any JSON text or string to a record or an InvalidRecordError', () => {
    const text = fc.oneof(
      fc.json({ maxDepth: 4 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify({ Key: v, Data: 'AAAA' })),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify({ Key: { Created: 1, Key: 'AAAA', ParentKeyMeta: v }, Data: 'AAAA' })),
      hostileString(64),
      fc.nat(3_000).map((depth) => deeplyNestedText(depth, depth % 2 === 0)),
      fc.nat(3_000).map((depth) => '['.repeat(depth) + '{"Key":'.repeat(depth % 1000)),
    );
    fc.assert(fc.property(text, decodeChecked), { seed: SEED, numRuns: RUNS.jsonText });
  });

  test('decodes every truncation of a valid record to an InvalidRecordError (or, whole, the record)', () => {
    for (let at = 0; at <= validText.length; at++) decodeChecked(validText.slice(0, at));
    expect(() => decodeDataRowRecord(validText.slice(0, -1))).toThrow(InvalidRecordError);
  });

  test('decodes mutations of a valid record text (delete, insert junk, replace, truncate, duplicate, flip case)', () => {
    fc.assert(
      fc.property(textEdits, (edits) => decodeChecked(applyTextEdits(validText, edits))),
      { seed: SEED, numRuns: RUNS.mutatedText },
    );
  });

  test('decodes any value passed as the object form to a record or an InvalidRecordError', () => {
    fc.assert(
      fc.property(anyValue, (value) => {
        decodeChecked(value);
        decodeChecked({ Key: value, Data: 'AAAA' });
        decodeChecked({ Key: { Created: 1, Key: 'AAAA', ParentKeyMeta: value }, Data: value });
        decodeChecked({ Key: { Created: value, Key: 'AAAA', ParentKeyMeta: { KeyId: value, Created: value } }, Data: 'AAAA' });
      }),
      { seed: SEED, numRuns: RUNS.objects },
    );
  });

  test('decodes mutations of a valid record object (drop, retype, rename, duplicate by case, getters, Proxies)', () => {
    fc.assert(
      fc.property(objectEdits, (edits) => decodeChecked(applyObjectEdits(validObject, edits))),
      { seed: SEED, numRuns: RUNS.mutatedObjects },
    );
  });

  test('decodes any bytes, and byte-level mutations of a valid record, as UTF-8 JSON', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.tuple(fc.nat(), fc.nat(255), fc.nat(3)).map(([at, byte, kind]) => {
        const valid = Buffer.from(validText, 'utf8');
        const i = at % valid.length;
        if (kind === 0) valid[i] = byte; // replace a byte (invalid UTF-8 included)
        if (kind === 1) return valid.subarray(0, i); // truncate, possibly inside a multi-byte character
        if (kind === 2) return Buffer.concat([valid.subarray(0, i), Buffer.from([0xc3, byte]), valid.subarray(i)]);
        return new Uint8Array(valid.buffer, valid.byteOffset + i, valid.length - i); // a view with an offset
      }),
    );
    fc.assert(fc.property(bytes, decodeChecked), { seed: SEED, numRuns: RUNS.bytes });
  });

  test('decodes EnvelopeKeyRecord text and objects (SK and IK shapes, mutated and arbitrary)', () => {
    const sk = encodeEnvelopeKeyRecord({ created: 1795858140, encryptedKey: Buffer.alloc(60, 7), revoked: true });
    const ik = encodeEnvelopeKeyRecord({
      created: 1795858140,
      encryptedKey: Buffer.alloc(60, 9),
      parentKeyMeta: { keyId: '_SK_service_product', created: 1795858080 },
    });
    const input = fc.oneof(
      fc.tuple(fc.constantFrom(sk, ik), textEdits).map(([text, edits]) => applyTextEdits(text, edits)),
      fc.tuple(fc.constantFrom(sk, ik), objectEdits).map(([text, edits]) => applyObjectEdits(JSON.parse(text), edits)),
      fc.json({ maxDepth: 3 }),
      anyValue,
    );
    fc.assert(
      fc.property(input, (value) => {
        const outcome = outcomeOf(() => decodeEnvelopeKeyRecord(value as object), CODEC_ERRORS, ['_SK_service_product']);
        if ('value' in outcome) checkDecodedKey(outcome.value);
      }),
      { seed: SEED, numRuns: RUNS.envelopeKeyRecord },
    );
  });

  test('the cases the properties found stay fixed', () => {
    const valid = JSON.parse(JSON.stringify(validObject)) as { Key: Record<string, unknown>; Data: string };
    // A getter that throws, or a Proxy, was a bare Error/TypeError from inside the decoder.
    for (const bad of [
      throwingGetter('Key', { Data: 'AAAA' }),
      { ...valid, Key: throwingGetter('ParentKeyMeta', valid.Key) },
      { ...valid, Key: { ...valid.Key, ParentKeyMeta: throwingGetter('KeyId') } },
      throwingProxy(),
      { ...valid, Key: throwingProxy() },
      revokedProxy(),
      { ...valid, Key: { ...valid.Key, ParentKeyMeta: revokedProxy() } },
      new Proxy(new Uint8Array(Buffer.from(validText)), {}),
    ]) {
      expect(() => decodeDataRowRecord(bad)).toThrow(InvalidRecordError);
      expect(() => decodeDataRowRecord(bad)).toThrow(/could not be read/);
    }
    expect(() => decodeEnvelopeKeyRecord(throwingGetter('Created'))).toThrow(InvalidRecordError);
    // Nesting deep enough to overflow a recursive parser (the property stays under 3,000 levels, for time).
    decodeChecked(deeplyNestedText(1_000_000));
    decodeChecked(deeplyNestedText(1_000_000, true));
  });
});

describe('decrypt of fuzzed records (Metastore memory, KMS test-debug-static)', () => {
  test('every truncation of a valid record fails with a named error; only the whole record decrypts', async () => {
    for (let at = 0; at <= validText.length; at++) {
      const outcome = await asyncOutcomeOf(() => decryptStringAsync(PARTITION, validText.slice(0, at)), undefined, secrets);
      if ('value' in outcome) expect(outcome.value).toBe(PLAINTEXT);
    }
  });

  test('a mutated record text decrypts to the original plaintext or fails with a named error', async () => {
    await fc.assert(
      fc.asyncProperty(textEdits, fc.boolean(), async (edits, asBytes) => {
        const text = applyTextEdits(validText, edits);
        // decryptAsync also takes the DRR as UTF-8 bytes (decodeDataRowRecord does).
        const outcome = asBytes
          ? await asyncOutcomeOf(
              async () => (await decryptAsync(PARTITION, Buffer.from(text, 'utf8') as unknown as string)).toString('utf8'),
              undefined,
              secrets,
            )
          : await asyncOutcomeOf(() => decryptStringAsync(PARTITION, text), undefined, secrets);
        if ('value' in outcome && outcome.value !== PLAINTEXT) throw new Error('a mutated record decrypted to other plaintext');
      }),
      { seed: SEED, numRuns: RUNS.decryptMutatedText },
    );
  });

  test('a valid record decrypts only for its own partition; any other partition value is a named error', async () => {
    const partition = fc.oneof(anyValue, hostileString(16), fc.constantFrom('partition ', 'Partition', 'partition_service', '', 'p'));
    await fc.assert(
      fc.asyncProperty(partition, async (p) => {
        const outcome = await asyncOutcomeOf(() => decryptStringAsync(p as string, validText), undefined, secrets);
        if ('value' in outcome && (p !== PARTITION || outcome.value !== PLAINTEXT)) {
          throw new Error('a record decrypted for another partition');
        }
      }),
      { seed: SEED, numRuns: RUNS.decryptPartition },
    );
  });

  test('a record encrypted for any partition decrypts for that partition (or encrypt is a named error)', async () => {
    // Lone surrogates are left out: see the known defect below.
    const partition = fc.oneof(
      { weight: 4, arbitrary: hostileString(16).filter((p) => !/[\ud800-\udfff]/u.test(p)) },
      { weight: 1, arbitrary: anyValue.filter((p) => typeof p !== 'string' || !/[\ud800-\udfff]/u.test(p)) },
    );
    await fc.assert(
      fc.asyncProperty(partition, async (p) => {
        const drr = await asyncOutcomeOf(() => encryptStringAsync(p as string, PLAINTEXT), undefined, [PLAINTEXT]);
        if (!('value' in drr)) return;
        if ((await decryptStringAsync(p as string, drr.value)) !== PLAINTEXT) throw new Error('no round trip');
      }),
      { seed: SEED, numRuns: RUNS.encryptPartition },
    );
  });

  // The DRR's KeyId goes through JSON, where a lone surrogate becomes U+FFFD: such a partition is refused at once.
  test('a partition with an unpaired surrogate is refused with a ConfigError, before anything is encrypted', async () => {
    for (const p of ['\ud800', 'a\udc00', 'ab\ud83d']) {
      await expect(encryptStringAsync(p, PLAINTEXT)).rejects.toThrow(/partition id must be well-formed Unicode/);
    }
  });

  test('Session.decrypt(object) of arbitrary and mutated decoded records: the plaintext or a named error', async () => {
    const decoded = decodeDataRowRecord(validText);
    const input = fc.oneof(
      { weight: 3, arbitrary: objectEdits.map((edits) => applyObjectEdits(decoded, edits)) },
      { weight: 2, arbitrary: objectEdits.map((edits) => applyObjectEdits(validObject, edits)) }, // the JSON shape
      { weight: 2, arbitrary: anyValue },
      {
        weight: 1,
        arbitrary: anyValue.map((v) => ({ key: { parentKeyMeta: v, encryptedKey: decoded.key.encryptedKey, created: v }, data: v })),
      },
      { weight: 1, arbitrary: fc.constantFrom<unknown>({ key: { parentKeyMeta: null } }, { key: null }, {}, null, undefined) },
    );
    await fc.assert(
      fc.asyncProperty(input, async (value) => {
        const session = getSessionFactory()!.getSession(PARTITION);
        try {
          const outcome = await asyncOutcomeOf(() => session.decrypt(value as DataRowRecord), undefined, secrets);
          if ('value' in outcome && outcome.value.toString('utf8') !== PLAINTEXT) {
            throw new Error('Session.decrypt returned other plaintext');
          }
        } finally {
          session.close();
        }
      }),
      { seed: SEED, numRuns: RUNS.sessionDecryptObjects },
    );
    // A decoded record given back with a Symbol or BigInt in place of a field is refused, not crashed on.
    const session = getSessionFactory()!.getSession(PARTITION);
    for (const bad of [
      { key: { parentKeyMeta: null } },
      { ...decoded, key: { ...decoded.key, parentKeyMeta: { keyId: 7, created: decoded.key.parentKeyMeta!.created } } },
      { ...decoded, key: { ...decoded.key, parentKeyMeta: { keyId: decoded.key.parentKeyMeta!.keyId, created: Symbol('c') } } },
      { ...decoded, key: { ...decoded.key, parentKeyMeta: { keyId: decoded.key.parentKeyMeta!.keyId, created: 10n } } },
    ]) {
      await expect(session.decrypt(bad as unknown as DataRowRecord)).rejects.toThrow(InvalidRecordError);
    }
    session.close();
  });
});
