import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { withKeyBytes, type Secret } from '../securememory/secret.js';
import type { SecretFactory } from '../securememory/secret-factory.js';
import { DecryptError, InvalidRecordError } from './errors.js';

// AES-256-GCM exactly as Asherah does it (docs/wire-format.md §2): a random 96-bit nonce per encryption, a 128-bit
// tag, no AAD, and the output laid out as `ciphertext || tag || nonce` (nonce LAST). Go `aead.aes256gcm` and Java
// `BouncyAes256GcmCrypto` produce the same bytes.

/** Every Asherah key (SK, IK, DRK) is a 32-byte AES-256 key (docs/wire-format.md §1.1). */
export const KEY_SIZE = 32;
const NONCE_SIZE = 12;
const TAG_SIZE = 16;
/** Bytes added to a plaintext: tag + nonce. An encrypted 32-byte key is therefore 60 bytes. */
export const OVERHEAD = TAG_SIZE + NONCE_SIZE;

const ALGORITHM = 'aes-256-gcm';
const GCM_OPTIONS = { authTagLength: TAG_SIZE } as const;

// Nonces are drawn from a pool because crypto.randomBytes costs about 5 µs per call whatever the size, which would
// dominate the per-record path. Each 12-byte slice is handed out once and the pool is refilled from the CSPRNG when
// used up, so a nonce is never reused. This is module state by necessity (encrypt is a free function), but it holds
// no secret and no behaviour: nonces are public (they are written into every ciphertext). Node's own
// crypto.randomUUID keeps a pool the same way. Lambda and Node never fork(), so no two processes share a pool.
const NONCES_PER_REFILL = 256;
const noncePool = Buffer.alloc(NONCE_SIZE * NONCES_PER_REFILL);
let nonceOffset = noncePool.length;

/** Writes a fresh random nonce into `out` at `offset`. */
function writeNonce(out: Buffer, offset: number): void {
  if (nonceOffset === noncePool.length) {
    randomFillSync(noncePool);
    nonceOffset = 0;
  }
  noncePool.copy(out, offset, nonceOffset, nonceOffset + NONCE_SIZE);
  nonceOffset += NONCE_SIZE;
}

/**
 * Encrypts `plaintext` under `key` (32 bytes). Returns `ciphertext || tag(16) || nonce(12)`, i.e.
 * `plaintext.length + 28` bytes; an empty plaintext gives 28 bytes.
 */
export function encrypt(plaintext: Uint8Array, key: Secret): Buffer {
  const length = plaintext.length;
  const out = Buffer.allocUnsafe(length + OVERHEAD);
  const nonceAt = length + TAG_SIZE;
  writeNonce(out, nonceAt);
  const nonce = out.subarray(nonceAt);
  // The key bytes are readable only inside withKeyBytes; they go straight to OpenSSL, which copies them into the
  // cipher context when the cipher is created, so nothing after this call touches the secret's pages.
  const cipher = withKeyBytes(key, (bytes) => {
    checkKeySize(bytes.length, 'encrypt');
    return createCipheriv(ALGORITHM, bytes, nonce, GCM_OPTIONS);
  });
  // GCM is a stream mode: update returns exactly `length` bytes and final() returns none.
  const ciphertext = cipher.update(plaintext);
  ciphertext.copy(out, 0);
  cipher.final();
  cipher.getAuthTag().copy(out, length);
  return out;
}

/**
 * Decrypts `ciphertext || tag || nonce` produced by `encrypt` (or by Asherah in any language). A failed
 * authentication or an input shorter than 28 bytes is a DecryptError. The caller owns the returned plaintext.
 */
export function decrypt(data: Uint8Array, key: Secret): Buffer {
  const length = data.length;
  if (length < OVERHEAD) {
    // Go fails below 12 bytes ("data length is shorter than nonce size") and in GCM Open below 28
    // (docs/wire-format.md §11.1).
    throw new DecryptError(
      `cannot decrypt: the encrypted data is ${length} bytes, shorter than the ${OVERHEAD}-byte tag and nonce; ` +
        'the record was truncated, tampered with or encrypted under another key',
    );
  }
  const ciphertextEnd = length - OVERHEAD;
  const nonce = data.subarray(length - NONCE_SIZE);
  const decipher = withKeyBytes(key, (bytes) => {
    checkKeySize(bytes.length, 'decrypt');
    return createDecipheriv(ALGORITHM, bytes, nonce, GCM_OPTIONS);
  });
  decipher.setAuthTag(data.subarray(ciphertextEnd, length - NONCE_SIZE));
  const plaintext = decipher.update(data.subarray(0, ciphertextEnd));
  try {
    decipher.final();
  } catch (err) {
    // GCM releases unauthenticated plaintext before the tag is checked: wipe it before anyone can see it.
    plaintext.fill(0);
    throw new DecryptError(
      'cannot decrypt: AES-GCM authentication failed; the record was tampered with or encrypted under another key',
      { cause: err },
    );
  }
  return plaintext;
}

/**
 * Wraps a key held in secure memory (an SK, IK or DRK) under another: `encrypt` of its bytes, which never leave
 * secure memory except into the cipher.
 */
export function encryptKey(key: Secret, wrappingKey: Secret): Buffer {
  return withKeyBytes(key, (bytes) => encrypt(bytes, wrappingKey));
}

/**
 * Unwraps an encrypted key (an SK, IK or DRK) straight into secure memory. Every Asherah key is 32 bytes: one
 * that authenticates but unwraps to another size (0, 16, 64, megabytes) is stored data that is not an Asherah key,
 * an InvalidRecordError (`what` names the key for the message), and never reaches secure memory. The transient
 * plaintext copy that Node's decipher returns is zeroed whether or not the secret could be created.
 */
export function decryptToSecret(data: Uint8Array, key: Secret, factory: SecretFactory, what = 'the key'): Secret {
  const plaintext = decrypt(data, key);
  try {
    if (plaintext.length !== KEY_SIZE) {
      throw new InvalidRecordError(
        `${what} unwrapped to ${plaintext.length} bytes, not the ${KEY_SIZE} bytes of an AES-256 key`,
      );
    }
    return factory.createFrom(plaintext); // copies into locked memory and zeroes `plaintext`
  } finally {
    plaintext.fill(0); // again, for the paths where createFrom did not run or threw before wiping
  }
}

function checkKeySize(size: number, operation: 'encrypt' | 'decrypt'): void {
  if (size === KEY_SIZE) return;
  const message = `cannot ${operation}: AES-256-GCM needs a ${KEY_SIZE}-byte key, got ${size} bytes`;
  // Every key the core makes is 32 bytes and the static KMS checks its master key, so a wrong size on encrypt
  // means a custom KeyManagementService returned a system key of the wrong size; on decrypt it can also be a key
  // record that unwrapped to something that is not an Asherah key.
  if (operation === 'encrypt') {
    throw new ConfigError(`${message}; a custom KeyManagementService must return 32-byte system keys`);
  }
  throw new DecryptError(`${message}; the key record is corrupt or the record was encrypted under another key`);
}
