/**
 * Fuzzing the AWS KMS envelope parser (kms/aws-kms-envelope.ts): the JSON inside an AWS-KMS system key record,
 * read from the metastore. Arbitrary bytes, arbitrary JSON values and valid envelopes mutated as text all give an
 * Envelope or an InvalidRecordError whose message quotes nothing of the input; valid envelopes round-trip, whatever
 * the case (Go's folding) of their field names.
 */
// Runs in this file: 26,000 fast-check cases (see RUNS).
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { encodeEnvelope, parseEnvelope, type Envelope } from '../../layer/src/appencryption/kms/aws-kms-envelope';
import { anyValue, applyTextEdits, nameVariants, outcomeOf, safeJson, SEED, textEdit } from './fuzz-support';

const RUNS = { bytes: 6_000, values: 6_000, mutated: 10_000, roundTrip: 4_000 };
const ERRORS = ['InvalidRecordError'];

const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b));

// Plain objects (fc.record may make null-prototype ones), so that a round trip compares equal.
const envelope: fc.Arbitrary<Envelope> = fc
  .record({
    encryptedKey: bytes(1, 80),
    kmsKeks: fc.array(
      fc.record({ region: fc.string({ maxLength: 16 }), arn: fc.string({ maxLength: 40 }), encryptedKek: bytes(1, 200) }),
      { maxLength: 4 },
    ),
  })
  .map(({ encryptedKey, kmsKeks }) => ({ encryptedKey, kmsKeks: kmsKeks.map(({ region, arn, encryptedKek }) => ({ region, arn, encryptedKek })) }));

/** What must never appear in a message: the base64 of the key and the KEKs, and the regions and ARNs. */
function secretsOf(e: Envelope): string[] {
  return [e.encryptedKey.toString('base64'), ...e.kmsKeks.flatMap((k) => [k.encryptedKek.toString('base64'), k.region, k.arn])];
}

describe('AWS KMS envelope parser (fuzzed)', () => {
  test('arbitrary bytes give an envelope or an InvalidRecordError', () => {
    fc.assert(
      fc.property(bytes(0, 300), (input) => {
        outcomeOf(() => parseEnvelope(input), ERRORS);
      }),
      { seed: SEED, numRuns: RUNS.bytes },
    );
  });

  test('arbitrary JSON values give an envelope or an InvalidRecordError', () => {
    fc.assert(
      fc.property(anyValue, (value) => {
        outcomeOf(() => parseEnvelope(Buffer.from(safeJson(value), 'utf8')), ERRORS);
      }),
      { seed: SEED, numRuns: RUNS.values },
    );
  });

  test('valid envelopes mutated as text give an envelope or an InvalidRecordError that quotes none of it', () => {
    fc.assert(
      fc.property(envelope, fc.array(textEdit, { minLength: 1, maxLength: 4 }), (e, edits) => {
        const text = applyTextEdits(encodeEnvelope(e).toString('utf8'), edits);
        outcomeOf(() => parseEnvelope(Buffer.from(text, 'utf8')), ERRORS, secretsOf(e));
      }),
      { seed: SEED, numRuns: RUNS.mutated },
    );
  });

  test('a valid envelope round-trips, with its field names in any case Go accepts', () => {
    const names = ['encryptedKey', 'kmsKeks', 'region', 'arn', 'encryptedKek'];
    // nameVariants' first six are the spellings Go matches (case flips, and İ ı ſ Kelvin folds); the rest are near
    // misses, which must not match.
    const renaming = fc.tuple(...names.map((name) => fc.constantFrom(name, ...nameVariants(name).slice(0, 6))));
    fc.assert(
      fc.property(envelope, renaming, (e, variants) => {
        let text = encodeEnvelope(e).toString('utf8');
        names.forEach((name, i) => (text = text.replaceAll(`"${name}":`, `${JSON.stringify(variants[i])}:`)));
        const parsed = parseEnvelope(Buffer.from(text, 'utf8'));
        if (!isDeepStrictEqual(parsed, e)) throw new Error(`round trip changed the envelope: ${text}`);
      }),
      { seed: SEED, numRuns: RUNS.roundTrip },
    );
  });
});
