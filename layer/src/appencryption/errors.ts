import { AsherahError } from '../errors.js';

// Errors of the envelope-encryption core. Each keeps a stable `name` (what callers match on and what Lambda reports
// as `errorType`) and the original error as `cause`. Messages name fields and say what to do; they never contain
// key bytes, plaintext, or a DRR's key ids, timestamps or ciphertext. The one exception: a metastore row that holds
// something other than a 32-byte key is named by its id and Created, which an operator needs to restore it.

/** A DataRowRecord or EnvelopeKeyRecord is malformed (bad JSON, a missing field, a wrong type); the message names the field. */
export class InvalidRecordError extends AsherahError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidRecordError';
  }
}

/** AES-GCM authentication failed: the record was tampered with, truncated, or encrypted under another key. */
export class DecryptError extends AsherahError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DecryptError';
  }
}

/** A system or intermediate key a record refers to is not in the metastore, or belongs to another partition. */
export class KeyNotFoundError extends AsherahError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KeyNotFoundError';
  }
}

/** The KMS could not encrypt or decrypt a system key (every configured region failed, or the static key is wrong). */
export class KmsError extends AsherahError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KmsError';
  }
}

/** The metastore could not load or store a key record. */
export class MetastoreError extends AsherahError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MetastoreError';
  }
}

/** A Lambda event does not have the shape of Asherah's Go Lambda sample events; the message names the field. */
export class EventValidationError extends AsherahError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EventValidationError';
  }
}

/**
 * The object was closed: a SessionFactory (close(), or shutdown()/shutdownAsync() of the module functions) and
 * every session it made, a Session, or a KMS adapter. Keys it held were wiped. Operations started before an
 * awaited close() finish first (up to its timeout); what cannot finish fails with this error.
 */
export class ClosedError extends AsherahError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ClosedError';
  }
}
