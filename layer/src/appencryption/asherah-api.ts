/**
 * The asherah-node-compatible module functions: `setup` once, then `encryptAsync`/`decryptAsync` with partition
 * ids and DRR JSON text, `shutdown` at the end. Same PascalCase config keys as Asherah's other bindings.
 */
import { ConfigError } from '../errors.js';
import type { AsherahConfig } from './config/config.js';
import { decodeDataRowRecord, encodeDataRowRecord } from './record-codec.js';
import { SessionFactory, type CloseOptions } from './session-factory.js';

// asherah-node's API is module-level by design (setup once per process), so this one piece of module state
// holds the factory those functions share. It is built by SessionFactory.fromConfig, so its close() also closes
// the KMS, the metastore, their SDK clients and its SecretFactory.
let current: SessionFactory | undefined;

export function setup(config: AsherahConfig): void {
  if (current !== undefined) {
    throw new ConfigError('setup() was already called; call shutdown() first to change the configuration');
  }
  current = SessionFactory.fromConfig(config);
}

export async function setupAsync(config: AsherahConfig): Promise<void> {
  setup(config);
}

export async function encryptAsync(partitionId: string, data: Uint8Array): Promise<string> {
  const session = configured().getSession(partitionId);
  try {
    return encodeDataRowRecord(await session.encrypt(data));
  } finally {
    session.close();
  }
}

export async function decryptAsync(partitionId: string, drrJson: string): Promise<Buffer> {
  const drr = decodeDataRowRecord(drrJson);
  const session = configured().getSession(partitionId);
  try {
    return await session.decrypt(drr);
  } finally {
    session.close();
  }
}

export async function encryptStringAsync(partitionId: string, text: string): Promise<string> {
  if (typeof text !== 'string') throw new ConfigError('encryptStringAsync takes a string');
  return encryptAsync(partitionId, Buffer.from(text, 'utf8'));
}

export async function decryptStringAsync(partitionId: string, drrJson: string): Promise<string> {
  return (await decryptAsync(partitionId, drrJson)).toString('utf8');
}

/**
 * Wipes every key and closes the KMS and metastore, at once: encrypts and decrypts still running fail with
 * ClosedError. Safe to call when not set up. Prefer `await shutdownAsync()`, which lets them finish first.
 */
export function shutdown(): void {
  const was = current;
  current = undefined;
  void was?.close({ timeoutMs: 0 }); // wipes and closes synchronously
}

/**
 * Lets encrypts and decrypts already started finish (up to `timeoutMs`, default 5000), then wipes every key and
 * closes the KMS and metastore; what is still running then fails with ClosedError. New calls fail at once.
 */
export async function shutdownAsync(options: CloseOptions = {}): Promise<void> {
  const was = current;
  current = undefined;
  if (was === undefined) return;
  try {
    await was.close(options);
  } catch (err) {
    // E.g. a bad timeoutMs: the factory is no longer reachable, so it must not stay open.
    await was.close({ timeoutMs: 0 }).catch(() => undefined);
    throw err;
  }
}

/** The factory behind the module functions (for metrics), if set up. */
export function getSessionFactory(): SessionFactory | undefined {
  return current;
}

function configured(): SessionFactory {
  if (current === undefined) throw new ConfigError('setup() has not been called; call setup(config) first');
  return current;
}
