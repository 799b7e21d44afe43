/**
 * The events of Asherah's Go Lambda sample (docs/wire-format.md §7), checked where they enter: an encrypt carries a
 * base64 `Payload`, a decrypt a `DRR` object, both a `Partition`. Anything else is an EventValidationError that
 * says what is wrong, before any key is touched, so nothing is written for a rejected event.
 */
import { decodeDataRowRecord, EventValidationError, type DataRowRecord } from 'asherah-layer';
import { partitionProblem, SYNC_INVOKE_LIMIT_BYTES } from '../common/limits';

/**
 * The largest payload whose encrypt response can fit the limit: the DRR carries the data base64-encoded (4/3)
 * with 28 bytes of tag and nonce. The handler checks the whole response (responseProblem) once it has the
 * partition's key id.
 */
export const MAX_PAYLOAD_BYTES = Math.floor((SYNC_INVOKE_LIMIT_BYTES * 3) / 4) - 28;

export type Request =
  | { kind: 'encrypt'; name?: string; partition: string; payload: Buffer }
  | { kind: 'decrypt'; name?: string; partition: string; drr: DataRowRecord };

// Linear (no nested quantifiers, so no backtracking on megabytes); the length is checked separately.
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function parseEvent(event: unknown): Request {
  const { Name: name, Partition: rawPartition, Payload: payload, DRR: drr } = readFields(event);
  if (name !== undefined && name !== null && typeof name !== 'string') {
    throw new EventValidationError('Name, when present, must be a string');
  }
  const problem = partitionProblem(rawPartition);
  if (problem !== undefined) throw new EventValidationError(problem);
  const partition = rawPartition as string;
  const hasPayload = payload !== undefined && payload !== null;
  const hasDrr = drr !== undefined && drr !== null;
  if (hasPayload === hasDrr) {
    throw new EventValidationError(
      hasPayload
        ? 'the event has both Payload and DRR; send Payload to encrypt or DRR to decrypt, not both'
        : 'the event must contain a Payload (for encryption) or a DRR (for decryption)',
    );
  }
  const base = typeof name === 'string' ? { name, partition } : { partition };
  if (hasPayload) {
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
  // Bytes are refused like text: Lambda delivers the DRR as a JSON object, and decodeDataRowRecord would parse them.
  if (typeof drr !== 'object' || drr === null || isArrayOrBytes(drr)) {
    throw new EventValidationError('DRR must be the DataRowRecord object an encrypt returned ({"Key": {...}, "Data": "..."})');
  }
  // A malformed DRR is an InvalidRecordError naming the field.
  return { kind: 'decrypt', ...base, drr: decodeDataRowRecord(drr as object) };
}

interface EventFields {
  Name?: unknown;
  Partition?: unknown;
  Payload?: unknown;
  DRR?: unknown;
}

/**
 * The event's fields, each read once: a getter cannot answer differently between the check and the use. Lambda
 * passes JSON.parse output; anything whose fields cannot be read (a getter or Proxy that throws) is refused.
 */
function readFields(event: unknown): EventFields {
  if (event === null || typeof event !== 'object' || isArrayOrBytes(event)) {
    throw new EventValidationError(
      'the event must be a JSON object: {"Partition": "...", "Payload": "<base64>"} to encrypt, ' +
        '{"Partition": "...", "DRR": {...}} to decrypt',
    );
  }
  try {
    const e = event as EventFields;
    return { Name: e.Name, Partition: e.Partition, Payload: e.Payload, DRR: e.DRR };
  } catch (err) {
    throw unreadable(err);
  }
}

function isArrayOrBytes(value: object): boolean {
  try {
    return Array.isArray(value) || ArrayBuffer.isView(value);
  } catch (err) {
    throw unreadable(err); // a revoked Proxy
  }
}

function unreadable(err: unknown): EventValidationError {
  return new EventValidationError(
    'the event could not be read (a property getter or Proxy threw); pass the event as a plain JSON object',
    { cause: err },
  );
}
