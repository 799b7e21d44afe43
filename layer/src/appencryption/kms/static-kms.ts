/**
 * A master key held in process memory (docs/wire-format.md §4.2): for development and tests, never for production
 * data. The SK is AES-256-GCM encrypted under the 32-byte master key, exactly as Go `kms.NewStatic` does.
 */
import { ConfigError } from '../../errors.js';
import type { Secret } from '../../securememory/secret.js';
import type { SecretFactory } from '../../securememory/secret-factory.js';
import * as aead from '../aead.js';
import { ClosedError, DecryptError, KmsError } from '../errors.js';
import type { KeyManagementService } from '../ports.js';
import { redactWith } from '../redact.js';

/** The public test key of every Asherah implementation: the ASCII bytes of `thisIsAStaticMasterKeyForTesting`. */
export const TEST_DEBUG_STATIC_MASTER_KEY_HEX = Buffer.from('thisIsAStaticMasterKeyForTesting', 'ascii').toString('hex');

export class StaticKms implements KeyManagementService {
  readonly #masterKey: Secret;
  #closed = false;

  /** `masterKeyHex`: 64 hex characters (32 bytes). The key is moved into secure memory at once. */
  constructor(masterKeyHex: string, secrets: SecretFactory) {
    if (typeof masterKeyHex !== 'string' || !/^[0-9a-fA-F]{64}$/.test(masterKeyHex)) {
      throw new ConfigError(
        'StaticMasterKeyHex must be 64 hexadecimal characters (a 32-byte key); generate one with ' +
          '`openssl rand -hex 32`',
      );
    }
    // A zero key is what an unset or wiped variable often turns into: it protects nothing.
    if (/^0{64}$/.test(masterKeyHex)) {
      throw new ConfigError(
        'StaticMasterKeyHex is all zeros, which is no secret; generate a key with `openssl rand -hex 32`',
      );
    }
    this.#masterKey = secrets.createFrom(Buffer.from(masterKeyHex, 'hex'));
  }

  async encryptKey(systemKey: Secret): Promise<Buffer> {
    this.checkOpen();
    return aead.encryptKey(systemKey, this.#masterKey);
  }

  async decryptKey(encryptedKey: Uint8Array, secrets: SecretFactory): Promise<Secret> {
    this.checkOpen();
    try {
      return aead.decryptToSecret(encryptedKey, this.#masterKey, secrets);
    } catch (err) {
      if (!(err instanceof DecryptError)) throw err; // e.g. secure memory closed by a concurrent shutdown
      throw new KmsError(
        'the static master key cannot decrypt this system key: it was encrypted under another master key ' +
          '(check StaticMasterKeyHex / the KMS setting) or the metastore row is corrupt',
        { cause: err },
      );
    }
  }

  /** Wipes the master key; later calls fail with ClosedError. */
  close(): void {
    this.#closed = true;
    this.#masterKey.close();
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  private checkOpen(): void {
    if (this.#closed) throw new ClosedError('the StaticKms was closed and its master key wiped; create a new StaticKms');
  }
}

redactWith(StaticKms, (k) => ({ closed: k.isClosed }));
