/**
 * A Lambda function written as an ES module in TypeScript that uses the layer: the pattern docs/using-the-layer.md
 * describes. Bundled with esbuild to one handler.mjs (format esm, `asherah-layer` and `@aws-sdk/*` external); its
 * handler setting is `handler.handler`. Events as the starter function's, without its limits and metrics:
 * `{ Partition, Payload }` (base64) encrypts to `{ DRR }`, `{ Partition, DRR }` decrypts to `{ Payload }`.
 */
import { createRequire } from 'node:module';
import type { DataRowRecordJson } from 'asherah-layer';
import { partitionProblem, responseProblem } from '../common/limits.js';

// Not `import … from 'asherah-layer'`. Lambda makes the layer's /opt/nodejs/node_modules reachable through
// NODE_PATH, which only CommonJS resolution reads: Node's ES module resolver ignores it, so the bare import fails
// with ERR_MODULE_NOT_FOUND (in Node, in aws-lambda-ric, in local tools). A require() made for this module
// resolves as CommonJS does, NODE_PATH included, and returns the one instance every other user of the package in
// the process shares. The cast types it from the package's declarations; the bundle keeps only the require call.
const requireFromNodePath = createRequire(import.meta.url);
const layer = requireFromNodePath('asherah-layer') as typeof import('asherah-layer');

// Module scope: the factory and the keys it caches outlive the invocation, so warm invocations make no KMS or
// metastore call. fromEnv reads the ASHERAH_* variables and makes the DynamoDB and KMS clients (the runtime's
// @aws-sdk); a bad variable is a ConfigError, which fails INIT with its class.
const factory = layer.SessionFactory.fromEnv();

// Top-level await: Lambda's INIT lasts until this module has finished evaluating, so the keys of
// ASHERAH_PREWARM_PARTITIONS are loaded before the first event, not during it.
await factory.prewarm(layer.partitionsToPrewarm());

export type Response = { DRR: DataRowRecordJson } | { Payload: string };

export async function handler(event: unknown): Promise<Response> {
  const { Partition: rawPartition, Payload: payload, DRR: drr } = (event ?? {}) as Record<string, unknown>;
  const partitionIssue = partitionProblem(rawPartition);
  if (partitionIssue !== undefined) throw new layer.EventValidationError(partitionIssue);
  const session = factory.getSession(rawPartition as string);
  try {
    if (typeof payload === 'string' && drr === undefined) {
      const bytes = Buffer.from(payload, 'base64');
      // Buffer.from skips what is not base64; re-encoding shows whether anything was.
      if (bytes.toString('base64') !== payload) throw new layer.EventValidationError('Payload must be standard base64');
      const tooLarge = responseProblem(bytes.length, (n) => session.recordSize(n));
      if (tooLarge !== undefined) throw new layer.EventValidationError(tooLarge);
      return { DRR: layer.dataRowRecordToJsonObject(await session.encrypt(bytes)) };
    }
    if (typeof drr === 'object' && drr !== null && payload === undefined) {
      return { Payload: (await session.decrypt(layer.decodeDataRowRecord(drr))).toString('base64') };
    }
    throw new layer.EventValidationError('send { Partition, Payload } to encrypt or { Partition, DRR } to decrypt');
  } finally {
    session.close();
  }
}
