// The bytes AwsKms.encryptKey returns (an SK record's Key, before the core's base64): Go's AWS KMS envelope
// (docs/wire-format.md §4.3; Go `plugins/aws-v2/kms/kms.go`), UTF-8 JSON:
//
//   {"encryptedKey":"<b64 AES-GCM(SK, dataKey)>","kmsKeks":[{"region":"…","arn":"…","encryptedKek":"<b64 blob>"}…]}
import { InvalidRecordError } from '../errors.js';
import { decodeStdBase64, goFieldReader } from '../go-json.js';

/** The data key wrapped by one region's KMS key. */
export interface RegionalKek {
  region: string;
  arn: string;
  encryptedKek: Buffer;
}

export interface Envelope {
  encryptedKey: Buffer;
  kmsKeks: RegionalKek[];
}

/** The envelope as UTF-8 JSON, in Go's field order, byte fields as padded standard base64. */
export function encodeEnvelope(envelope: Envelope): Buffer {
  const json = {
    encryptedKey: envelope.encryptedKey.toString('base64'),
    kmsKeks: envelope.kmsKeks.map((kek) => ({ region: kek.region, arn: kek.arn, encryptedKek: kek.encryptedKek.toString('base64') })),
  };
  return Buffer.from(JSON.stringify(json), 'utf8');
}

const ENVELOPE_HINT =
  'the system key record is not an AWS KMS envelope: it was written with another KMS (e.g. static) or is corrupt';

/**
 * Parses Go's envelope. Like Go's encoding/json, field names match case-insensitively and unknown fields are
 * ignored; byte fields must be padded standard base64 (docs/wire-format.md §3.6). Messages never quote the input.
 */
export function parseEnvelope(bytes: Uint8Array): Envelope {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    // No cause: V8's SyntaxError quotes a slice of the input (record-codec.ts does the same).
    throw new InvalidRecordError(`${ENVELOPE_HINT} (not valid JSON)`);
  }
  const root = readEnvelopeFields(asObject(value, 'the envelope'));
  const encryptedKey = readBase64(root.encryptedKey, 'encryptedKey');
  const list = root.kmsKeks;
  if (list != null && !Array.isArray(list)) throw invalidEnvelope('kmsKeks must be an array');
  const kmsKeks = ((list ?? []) as unknown[]).map((item, i): RegionalKek => {
    const kek = readKekFields(asObject(item, `kmsKeks[${i}]`));
    const region = kek.region;
    const arn = kek.arn ?? '';
    if (typeof region !== 'string') throw invalidEnvelope(`kmsKeks[${i}].region must be a string`);
    if (typeof arn !== 'string') throw invalidEnvelope(`kmsKeks[${i}].arn must be a string`);
    return { region, arn, encryptedKek: readBase64(kek.encryptedKek, `kmsKeks[${i}].encryptedKek`) };
  });
  return { encryptedKey, kmsKeks };
}

// Field names matched as Go's encoding/json matches them, the last duplicate winning (go-json.ts).
const readEnvelopeFields = goFieldReader(['encryptedKey', 'kmsKeks']);
const readKekFields = goFieldReader(['region', 'arn', 'encryptedKek']);

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  throw invalidEnvelope(`${what} must be a JSON object`);
}

function readBase64(value: unknown, path: string): Buffer {
  if (typeof value !== 'string' || value === '') throw invalidEnvelope(`${path} must be a non-empty base64 string`);
  const bytes = decodeStdBase64(value);
  if (bytes === undefined) throw invalidEnvelope(`${path} must be standard base64 with "=" padding`);
  return bytes;
}

function invalidEnvelope(detail: string): InvalidRecordError {
  return new InvalidRecordError(`${ENVELOPE_HINT} (${detail})`);
}
