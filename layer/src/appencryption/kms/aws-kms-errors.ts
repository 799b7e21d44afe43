// How AwsKms (aws-kms.ts) treats a failed regional KMS call: whether the next region may succeed where this one
// failed, and how the failure is named in its log lines and messages.
import { ConfigError } from '../../errors.js';
import { SecureMemoryError } from '../../securememory/errors.js';

/**
 * KMS and network errors (any SDK error), a wrong data key and AES-GCM failures move on to the next region, as in
 * Go v2. Secure-memory and configuration errors are this host's, not the region's: every region would fail alike.
 */
export function isRegionFailure(err: unknown): boolean {
  return !(err instanceof SecureMemoryError || err instanceof ConfigError);
}

export function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}

/** "<name>: <message>", short: SDK messages come from KMS and name keys and causes, never key material. */
export function describeError(err: unknown): string {
  const name = errorName(err);
  const message = err instanceof Error ? err.message : String(err);
  const text = message === '' || message === name ? name : `${name}: ${message}`;
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
