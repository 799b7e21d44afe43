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
 * What is wrong with encrypting `payloadBytes` bytes whose record takes `recordBytes` (Session.recordSize), or
 * undefined if the response fits Lambda's limit.
 */
export function responseProblem(payloadBytes: number, recordBytes: number): string | undefined {
  const responseBytes = recordBytes + RESPONSE_RESERVED_BYTES;
  if (responseBytes <= SYNC_INVOKE_LIMIT_BYTES) return undefined;
  return (
    `the encrypted record of this ${payloadBytes}-byte Payload would make a response of up to ${responseBytes} ` +
    `bytes, over Lambda's ${SYNC_INVOKE_LIMIT_BYTES}-byte synchronous limit; send less data (or a shorter ` +
    'Partition, which the record carries JSON-escaped)'
  );
}
