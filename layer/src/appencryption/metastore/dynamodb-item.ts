// A key record as a DynamoDB item and back (docs/wire-format.md §3.4), for DynamoDbMetastore
// (dynamodb-metastore.ts):
//   item   {Id: S, Created: N, KeyRecord: M{Revoked?: BOOL, Created: N, Key: S, ParentKeyMeta?: M{KeyId: S, Created: N}}}
// The KeyRecord map is the record codec's JSON shape (envelopeKeyRecordToJson) as attribute values, and is read back
// through the codec's decoder, so both sides follow the codec's rules.
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { InvalidRecordError, MetastoreError } from '../errors.js';
import { describeNumber, isUnixSeconds } from '../go-json.js';
import { envelopeKeyRecordToJson, type EnvelopeKeyRecord } from '../record-codec.js';

export type Item = Record<string, AttributeValue>;

/** The Created range key (N) of an item stored under `created`. */
export function checkCreated(created: number): string {
  if (isUnixSeconds(created)) return String(created);
  // The kind of a bad timestamp, never its value (errors.ts).
  throw new MetastoreError(`created must be a non-negative integer number of Unix seconds, got ${describeNumber(created)}`);
}

/** The KeyRecord map as Go's attributevalue marshals its `envelope` struct (docs/wire-format.md §3.4). */
export function encodeKeyRecord(record: EnvelopeKeyRecord): Item {
  const json = envelopeKeyRecordToJson(
    record,
    (field, value) =>
      new InvalidRecordError(
        `cannot store the key record: ${field} must be a non-negative integer (Unix seconds), got ${describeNumber(value)}`,
      ),
  );
  const map: Item = {};
  if (json.Revoked === true) map.Revoked = { BOOL: true };
  map.Created = { N: String(json.Created) };
  map.Key = { S: json.Key };
  const parent = json.ParentKeyMeta;
  if (parent !== undefined) {
    map.ParentKeyMeta = { M: { KeyId: { S: parent.KeyId }, Created: { N: String(parent.Created) } } };
  }
  return map;
}

/**
 * An attribute value as the JSON-like value the record codec validates: S → string, N → number, BOOL → boolean,
 * NULL → null, M → object, L → array. Binary and set types become values the codec rejects with a message naming
 * the field (a Uint8Array, an array), so no value is ever accepted for the wrong reason.
 */
function toPlain(value: AttributeValue): unknown {
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return numberOf(value.N);
  if (value.BOOL !== undefined) return value.BOOL;
  if (value.NULL !== undefined) return null;
  if (value.M !== undefined) return mapToPlain(value.M);
  if (value.L !== undefined) return value.L.map(toPlain);
  if (value.B !== undefined) return value.B;
  return value.SS ?? value.NS ?? value.BS ?? [];
}

export function mapToPlain(map: Item): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(map)) out[name] = toPlain(value);
  return out;
}

/**
 * N is a decimal string (DynamoDB normalizes it: no exponent, no trailing zeros). An integer beyond 2^53 becomes an
 * unsafe number and a fraction a fractional one, both of which the codec rejects; anything unparseable stays a
 * string, which it rejects too.
 */
function numberOf(text: string): number | string {
  const value = Number(text);
  return text.trim() !== '' && Number.isFinite(value) ? value : text;
}

export function attributeType(value: AttributeValue): string {
  const type = Object.keys(value).find((name) => (value as unknown as Record<string, unknown>)[name] !== undefined);
  return type ?? 'empty';
}

/** "a system key item" / "an intermediate key item": what a message may say of an item without its id. */
export function describeItem(id: string): string {
  return id.startsWith('_SK_') ? 'a system key item' : id.startsWith('_IK_') ? 'an intermediate key item' : 'an item';
}
