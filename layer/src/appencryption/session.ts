/**
 * Encrypts and decrypts the records of one partition (a user, an account). Cheap: a session holds key ids
 * only; keys live in the factory's caches, so sessions of one partition share them.
 */
import { ConfigError } from '../errors.js';
import * as aead from './aead.js';
import type { CryptoKey } from './crypto-key.js';
import { ClosedError, DecryptError, InvalidRecordError } from './errors.js';
import { acceptsIntermediateKeyId } from './key-ids.js';
import type { KeyManager, Partition } from './key-manager.js';
import { encodeDataRowRecord, type DataRowRecord, type KeyMeta } from './record-codec.js';
import { redactWith } from './redact.js';

const DATA_ROW_KEY_BYTES = 32;
/** AES-256-GCM adds a 16-byte tag and a 12-byte nonce to what it encrypts (docs/wire-format.md §2). */
const AEAD_OVERHEAD_BYTES = 28;

export class Session {
  // Private (#): nothing that enumerates a session (a logger, JSON.stringify, structuredClone) reaches the keys.
  readonly #keys: KeyManager;
  #closed = false;
  /** @internal The partition's key ids. */
  readonly partition: Partition;

  /** @internal Made by SessionFactory.getSession. */
  constructor(keys: KeyManager, partition: Partition) {
    this.#keys = keys;
    this.partition = partition;
  }

  /** Encrypts `data` (bytes, or a string as UTF-8) into a DataRowRecord. Creates the IK/SK on first use. */
  async encrypt(data: Uint8Array | string): Promise<DataRowRecord> {
    this.checkOpen();
    const plaintext = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (!(plaintext instanceof Uint8Array)) {
      throw new ConfigError('encrypt takes a Buffer, Uint8Array or string');
    }
    return this.withKey(() => this.#keys.latestIntermediateKey(this.partition), (ik) => this.seal(plaintext, ik));
  }

  /**
   * The one sequence of encrypt and decrypt: counted as an operation of the factory, the IK acquired (loaded if
   * cold), used once the factory is known to be still open, released; a failure caused by a close is ClosedError.
   */
  private async withKey<T>(acquire: () => CryptoKey | Promise<CryptoKey>, use: (ik: CryptoKey) => T): Promise<T> {
    const life = this.#keys.lifecycle;
    life.begin();
    try {
      const pending = acquire();
      // Warm keys come back synchronously: nothing is awaited on the per-record path then.
      const ik = pending instanceof Promise ? await pending : pending;
      try {
        life.checkNotClosed(); // the factory may have been closed while the key loaded
        return use(ik);
      } finally {
        ik.release();
      }
    } catch (err) {
      throw life.failure(err);
    } finally {
      life.end();
    }
  }

  private seal(plaintext: Uint8Array, ik: CryptoKey): DataRowRecord {
    // DRK Created is not truncated (docs/wire-format.md §1.3).
    const created = Math.floor(this.#keys.clock.now() / 1000);
    const drk = this.#keys.secrets.createRandom(DATA_ROW_KEY_BYTES);
    try {
      const data = aead.encrypt(plaintext, drk);
      const encryptedKey = aead.encryptKey(drk, ik.secret);
      this.#keys.metrics.increment('encrypt');
      return {
        key: { created, encryptedKey, parentKeyMeta: { keyId: this.partition.intermediateKeyId, created: ik.created } },
        data,
      };
    } finally {
      drk.close();
    }
  }

  /**
   * At least as many bytes as the DataRowRecord JSON (encodeDataRowRecord, UTF-8) that encrypting
   * `plaintextBytes` bytes makes in this session, computed without I/O or keys: refuse data whose record would
   * not fit where it goes (a Lambda response, a DynamoDB item) before anything is created. JSON.stringify of
   * dataRowRecordToJsonObject is never longer (it does not escape `<>&`).
   */
  recordSize(plaintextBytes: number): number {
    // Up to 2^48 bytes (256 TiB), so the size stays an exact integer.
    if (!Number.isSafeInteger(plaintextBytes) || plaintextBytes < 0 || plaintextBytes > 2 ** 48) {
      const got = typeof plaintextBytes === 'number' ? String(plaintextBytes) : typeof plaintextBytes;
      throw new ConfigError(`recordSize takes a byte count (an integer from 0 to 2^48), got ${got}`);
    }
    // The largest Created until the year 2286 (10 digits), and empty Data: its base64 is added below.
    const created = 9_999_999_999;
    const skeleton = encodeDataRowRecord({
      key: {
        created,
        encryptedKey: Buffer.alloc(DATA_ROW_KEY_BYTES + AEAD_OVERHEAD_BYTES),
        parentKeyMeta: { keyId: this.partition.intermediateKeyId, created },
      },
      data: Buffer.alloc(0),
    });
    return Buffer.byteLength(skeleton, 'utf8') + 4 * Math.ceil((plaintextBytes + AEAD_OVERHEAD_BYTES) / 3);
  }

  /** Decrypts a DataRowRecord of this partition. Decrypt never creates keys. */
  async decrypt(drr: DataRowRecord): Promise<Buffer> {
    this.checkOpen();
    const { meta, encryptedKey, data } = checkDecoded(drr);
    const p = this.partition;
    if (!acceptsIntermediateKeyId(meta.keyId, p.unsuffixedIntermediateKeyId, p.suffix)) {
      // Go: "unable to decrypt record" (docs/wire-format.md §1.2).
      throw new DecryptError(
        'cannot decrypt: the record belongs to another partition, service or product than this session; ' +
          'decrypt it with the partition it was encrypted for',
      );
    }
    return this.withKey(() => this.#keys.intermediateKey(meta), (ik) => this.open(encryptedKey, data, ik));
  }

  private open(encryptedKey: Uint8Array, data: Uint8Array, ik: CryptoKey): Buffer {
    const drk = aead.decryptToSecret(encryptedKey, ik.secret, this.#keys.secrets, "the record's data row key (Key.Key)");
    try {
      const plaintext = aead.decrypt(data, drk);
      this.#keys.metrics.increment('decrypt');
      return plaintext;
    } finally {
      drk.close();
    }
  }

  /** Ends this session; with session caching, the cached session lives on for other callers. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  private checkOpen(): void {
    if (this.#closed) throw new ClosedError('this session is closed; get a new one from the SessionFactory');
    this.#keys.lifecycle.checkNotClosed();
  }
}

redactWith(Session, (s) => ({ closed: s.isClosed }));

/** The fields decrypt reads, read once (a getter cannot change them between the check and the use). */
interface DecodedFields {
  meta: KeyMeta;
  encryptedKey: Uint8Array;
  data: Uint8Array;
}

/**
 * The fields of a record that has the shape decodeDataRowRecord gives. Anything else (JSON not decoded, null or
 * mistyped fields, a getter that throws) is an InvalidRecordError, never a TypeError.
 */
function checkDecoded(drr: DataRowRecord): DecodedFields {
  let fields: DecodedFields | undefined;
  try {
    const key = drr.key;
    const data = drr.data;
    const encryptedKey = key.encryptedKey;
    const meta = key.parentKeyMeta;
    const keyId = meta?.keyId;
    const created = meta?.created;
    if (
      data instanceof Uint8Array &&
      encryptedKey instanceof Uint8Array &&
      typeof keyId === 'string' &&
      Number.isSafeInteger(created) &&
      (created as number) >= 0
    ) {
      fields = { meta: { keyId, created: created as number }, encryptedKey, data };
    }
  } catch {
    // Not a decoded record (e.g. null, or a getter that throws): the error below says what decrypt takes.
  }
  if (fields === undefined) {
    throw new InvalidRecordError(
      'decrypt takes a DataRowRecord object with key.encryptedKey, key.parentKeyMeta {keyId, created} and data; ' +
        'decode DRR JSON (Key, Key.ParentKeyMeta, Data) with decodeDataRowRecord first',
    );
  }
  return fields;
}
