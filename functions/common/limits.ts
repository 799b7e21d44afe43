/**
 * What both sample functions refuse in an event, in the same words: a Partition the key ids cannot carry, and an
 * encrypt whose response would not fit Lambda's synchronous invocation limit. Both are checked before any key is
 * loaded or made, so nothing is written for a refused event. The checks return the problem (or undefined) and
 * each function throws its EventValidationError: this module imports nothing, so that the ES module sample, which
 * reaches the layer through require (NODE_PATH), can share it.
 */

/** Lambda's synchronous invocation limit, for the request and for the response. */
export const SYNC_INVOKE_LIMIT_BYTES = 6 * 1024 * 1024;
/**
 * The largest Partition, in UTF-8 bytes. A key id holds it with the service and product names and must stay
 * within 2048 bytes (DynamoDB's partition-key limit), which leaves the names up to about a thousand.
 */
export const MAX_PARTITION_BYTES = 1024;
/** Room for the response's other fields: `{"DRR":…,"Metrics":{…}}` around the record (Metrics is under 400). */
export const RESPONSE_RESERVED_BYTES = 1024;

/** What is wrong with an event's Partition, or undefined if the functions accept it. */
export function partitionProblem(partition: unknown): string | undefined {
  if (typeof partition !== 'string' || partition === '') {
    return 'Partition must be a non-empty string: the id of the user or account the data belongs to';
  }
  const bytes = Buffer.byteLength(partition, 'utf8');
  if (bytes > MAX_PARTITION_BYTES) {
    return (
      `Partition is ${bytes} bytes as UTF-8; the limit is ${MAX_PARTITION_BYTES} (it becomes part of a key id); ` +
      'use a shorter id, e.g. a hash of a long one'
    );
  }
  // A lone surrogate half becomes U+FFFD when the DRR's KeyId goes through JSON, so the partition could encrypt
  // but never decrypt its records.
  if (!partition.isWellFormed()) {
    return 'Partition must be well-formed Unicode: it contains an unpaired UTF-16 surrogate (U+D800 to U+DFFF)';
  }
  return undefined;
}

/**
 * Most of a record besides its Data: the key fields with a key id of at most 2048 bytes, which JSON escaping can
 * make six times longer (a control character is `\u0001`).
 */
const RECORD_KEY_FIELDS_MAX_BYTES = 16 * 1024;

/**
 * What is wrong with encrypting `payloadBytes` bytes whose record takes `recordSize(payloadBytes)` bytes
 * (Session.recordSize), or undefined if the response fits Lambda's limit. The exact size is computed only for a
 * payload near the limit: every smaller one fits whatever its partition, and most events are far smaller.
 */
export function responseProblem(payloadBytes: number, recordSize: (plaintextBytes: number) => number): string | undefined {
  const dataBytes = 4 * Math.ceil((payloadBytes + 28) / 3);
  if (dataBytes + RECORD_KEY_FIELDS_MAX_BYTES + RESPONSE_RESERVED_BYTES <= SYNC_INVOKE_LIMIT_BYTES) return undefined;
  const responseBytes = recordSize(payloadBytes) + RESPONSE_RESERVED_BYTES;
  if (responseBytes <= SYNC_INVOKE_LIMIT_BYTES) return undefined;
  return (
    `the encrypted record of this ${payloadBytes}-byte Payload would make a response of up to ${responseBytes} ` +
    `bytes, over Lambda's ${SYNC_INVOKE_LIMIT_BYTES}-byte synchronous limit; send less data (or a shorter ` +
    'Partition, which the record carries JSON-escaped)'
  );
}
