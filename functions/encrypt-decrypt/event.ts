/**
 * The events of Asherah's Go Lambda sample (asherah-spec §7), checked where they enter: an encrypt carries a
 * base64 `Payload`, a decrypt a `DRR` object, both a `Partition`. Anything else is an EventValidationError that
 * says what is wrong, before any key is touched, so nothing is written for a rejected event.
 */
import { decodeDataRowRecord, EventValidationError, type DataRowRecord } from 'asherah-layer';

/** Lambda's synchronous invocation limit, for the request and for the response. */
export const SYNC_INVOKE_LIMIT_BYTES = 6 * 1024 * 1024;
/**
 * The largest payload whose encrypt response still fits the limit: the DRR carries the data base64-encoded
 * (4/3) with 28 bytes of tag and nonce, plus the DRR's key fields and the Metrics (under 2 KiB).
 */
export const MAX_PAYLOAD_BYTES = Math.floor(((SYNC_INVOKE_LIMIT_BYTES - 2048) * 3) / 4) - 28;

export type Request =
  | { kind: 'encrypt'; name?: string; partition: string; payload: Buffer }
  | { kind: 'decrypt'; name?: string; partition: string; drr: DataRowRecord };

// Linear (no nested quantifiers, so no backtracking on megabytes); the length is checked separately.
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function parseEvent(event: unknown, maxPartitionLength: number): Request {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    throw new EventValidationError(
      'the event must be a JSON object: {"Partition": "...", "Payload": "<base64>"} to encrypt, ' +
        '{"Partition": "...", "DRR": {...}} to decrypt',
    );
  }
  const e = event as Record<string, unknown>;
  const name = e.Name ?? undefined;
  if (name !== undefined && typeof name !== 'string') throw new EventValidationError('Name, when present, must be a string');
  const partition = e.Partition;
  if (typeof partition !== 'string' || partition === '') {
    throw new EventValidationError('Partition must be a non-empty string: the id of the user or account the data belongs to');
  }
  if (partition.length > maxPartitionLength) {
    throw new EventValidationError(
      `Partition is ${partition.length} characters; the limit is ${maxPartitionLength} (it becomes part of a key id)`,
    );
  }
  const hasPayload = e.Payload !== undefined && e.Payload !== null;
  const hasDrr = e.DRR !== undefined && e.DRR !== null;
  if (hasPayload === hasDrr) {
    throw new EventValidationError(
      hasPayload
        ? 'the event has both Payload and DRR; send Payload to encrypt or DRR to decrypt, not both'
        : 'the event must contain a Payload (for encryption) or a DRR (for decryption)',
    );
  }
  const base = name === undefined ? { partition } : { name, partition };
  if (hasPayload) {
    const payload = e.Payload;
    if (typeof payload !== 'string' || payload.length % 4 !== 0 || !BASE64.test(payload)) {
      throw new EventValidationError('Payload must be standard base64 with "=" padding (RFC 4648 §4)');
    }
    const size = (payload.length / 4) * 3 - (payload.endsWith('==') ? 2 : payload.endsWith('=') ? 1 : 0);
    if (size > MAX_PAYLOAD_BYTES) {
      throw new EventValidationError(
        `Payload is ${size} bytes; the largest that fits Lambda's ${SYNC_INVOKE_LIMIT_BYTES}-byte synchronous ` +
          `response once encrypted is ${MAX_PAYLOAD_BYTES} bytes; split the data or store large objects elsewhere`,
      );
    }
    const bytes = Buffer.from(payload, 'base64');
    return { kind: 'encrypt', ...base, payload: bytes };
  }
  if (typeof e.DRR !== 'object' || Array.isArray(e.DRR)) {
    throw new EventValidationError('DRR must be the DataRowRecord object an encrypt returned ({"Key": {...}, "Data": "..."})');
  }
  // A malformed DRR is an InvalidRecordError naming the field.
  return { kind: 'decrypt', ...base, drr: decodeDataRowRecord(e.DRR as object) };
}
