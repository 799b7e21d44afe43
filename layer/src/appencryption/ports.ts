/**
 * What the envelope-encryption core needs from the outside world, and nothing about AWS. Adapters (static and
 * AWS KMS; memory, SQLite and DynamoDB metastores) implement these; the core never imports an SDK.
 */
import type { Secret } from '../securememory/secret.js';
import type { SecretFactory } from '../securememory/secret-factory.js';
import type { EnvelopeKeyRecord } from './record-codec.js';

/**
 * Where SK and IK records live (docs/wire-format.md §3.4). Records are addressed by key id and Created (Unix seconds).
 * Errors are MetastoreError; "not found" is `undefined`, not an error.
 */
export interface Metastore {
  load(id: string, created: number): Promise<EnvelopeKeyRecord | undefined>;
  /** The record of `id` with the greatest Created, read with strong consistency. */
  loadLatest(id: string): Promise<EnvelopeKeyRecord | undefined>;
  /**
   * Stores a record only if (id, created) does not exist yet. `false` means someone else created it first (the
   * caller then loads the latest); any other failure is a MetastoreError, never `false`.
   */
  store(id: string, created: number, record: EnvelopeKeyRecord): Promise<boolean>;
  /** The region suffix appended to key ids (DynamoDB global tables), or undefined/'' for none. */
  regionSuffix?(): string | undefined;
  close?(): Promise<void> | void;
}

/**
 * The master key (docs/wire-format.md §4): wraps and unwraps system keys. The wrapped form is opaque bytes that the SK
 * record stores as its Key. Errors are KmsError.
 */
export interface KeyManagementService {
  /** Wraps the SK's bytes (read only inside `systemKey.withBytes`). */
  encryptKey(systemKey: Secret): Promise<Buffer>;
  /** Unwraps an SK straight into secure memory. */
  decryptKey(encryptedKey: Uint8Array, secrets: SecretFactory): Promise<Secret>;
  close?(): Promise<void> | void;
}

/** Time, injectable so that tests move it instead of sleeping. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
