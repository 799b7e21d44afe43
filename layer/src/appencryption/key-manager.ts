/**
 * The key lifecycle of docs/wire-format.md §1.4–1.6: find or create the latest SK and IK for writes, load the exact
 * SK and IK a record names for reads, settle creation races through the metastore's conditional store, and keep
 * every key in secure memory. All metastore and KMS calls are counted here, whatever the adapter.
 */
import type { Secret } from '../securememory/secret.js';
import type { SecretFactory } from '../securememory/secret-factory.js';
import * as aead from './aead.js';
import { CryptoKey } from './crypto-key.js';
import type { CryptoPolicy } from './config/crypto-policy.js';
import { InvalidRecordError, KeyNotFoundError } from './errors.js';
import { KeyCache } from './key-cache.js';
import type { Lifecycle } from './lifecycle.js';
import { checkKeyIdNames, intermediateKeyId, systemKeyId } from './key-ids.js';
import type { Metrics } from './metrics.js';
import type { Clock, KeyManagementService, Metastore } from './ports.js';
import type { EnvelopeKeyRecord, KeyMeta } from './record-codec.js';
import { redactWith } from './redact.js';

const KEY_BYTES = 32;

/** Key ids of one partition, computed once per session. */
export interface Partition {
  readonly id: string;
  readonly systemKeyId: string;
  readonly intermediateKeyId: string;
  /** The IK id without the region suffix: what decrypt checks records against. */
  readonly unsuffixedIntermediateKeyId: string;
  readonly suffix: string | undefined;
}

export interface KeyManagerDeps {
  serviceName: string;
  productId: string;
  metastore: Metastore;
  kms: KeyManagementService;
  policy: CryptoPolicy;
  secrets: SecretFactory;
  metrics: Metrics;
  clock: Clock;
  /** The owning factory's: no metastore or KMS call starts once it is closed. */
  lifecycle: Lifecycle;
  /** Accept names that can make key ids collide (key-ids.ts): only for deployments whose records use them. */
  legacyKeyIdNames?: boolean;
}

export class KeyManager {
  readonly serviceName: string;
  readonly productId: string;
  readonly secrets: SecretFactory;
  readonly policy: CryptoPolicy;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly lifecycle: Lifecycle;
  readonly #metastore: Metastore;
  readonly #kms: KeyManagementService;
  readonly #systemKeys: KeyCache;
  readonly #intermediateKeys: KeyCache;
  readonly #suffix: string | undefined;

  constructor(deps: KeyManagerDeps) {
    this.serviceName = deps.serviceName;
    this.productId = deps.productId;
    this.#metastore = deps.metastore;
    this.#kms = deps.kms;
    this.policy = deps.policy;
    this.secrets = deps.secrets;
    this.metrics = deps.metrics;
    this.clock = deps.clock;
    this.lifecycle = deps.lifecycle;
    const suffix = deps.metastore.regionSuffix?.();
    this.#suffix = suffix === '' ? undefined : suffix;
    const p = deps.policy;
    this.#systemKeys = new KeyCache('systemKey', p.cacheSystemKeys, p.systemKeyCacheMaxSize, p, deps.clock, deps.metrics);
    this.#intermediateKeys = new KeyCache(
      'intermediateKey',
      p.cacheIntermediateKeys,
      p.intermediateKeyCacheMaxSize,
      p,
      deps.clock,
      deps.metrics,
    );
    // Every name of the key ids is checked once, here, where service, product and suffix meet.
    checkKeyIdNames(this.serviceName, this.productId, this.#suffix, deps.legacyKeyIdNames === true);
    systemKeyId(this.serviceName, this.productId, this.#suffix); // its length, before any session or I/O
  }

  partition(id: string): Partition {
    return {
      id,
      systemKeyId: systemKeyId(this.serviceName, this.productId, this.#suffix),
      intermediateKeyId: intermediateKeyId(id, this.serviceName, this.productId, this.#suffix),
      unsuffixedIntermediateKeyId: intermediateKeyId(id, this.serviceName, this.productId),
      suffix: this.#suffix,
    };
  }

  // ---- writes ---------------------------------------------------------------------------------------------------

  /** The IK new records of this partition are written with (acquired: release it after use). */
  latestIntermediateKey(partition: Partition): CryptoKey | Promise<CryptoKey> {
    return this.#intermediateKeys.getOrLoadLatest(partition.intermediateKeyId, () =>
      this.loadLatestOrCreateIntermediateKey(partition),
    );
  }

  /** Go `loadLatestOrCreateIntermediateKey` (docs/wire-format.md §1.5). */
  private async loadLatestOrCreateIntermediateKey(partition: Partition): Promise<CryptoKey> {
    const record = await this.loadLatest(partition.intermediateKeyId);
    if (record !== undefined && this.isValidForWrites(record) && record.parentKeyMeta !== undefined) {
      let systemKey: CryptoKey | undefined;
      try {
        systemKey = await this.systemKey(record.parentKeyMeta);
      } catch {
        // Like Go: an IK whose SK cannot be loaded is replaced by a new IK under the latest SK.
      }
      if (systemKey !== undefined) {
        try {
          if (!systemKey.revoked && !this.policy.isExpired(systemKey.created, this.clock.now())) {
            return this.unwrapKey(partition.intermediateKeyId, record, systemKey);
          }
        } finally {
          systemKey.release();
        }
      }
    }
    return this.createIntermediateKey(partition);
  }

  private async createIntermediateKey(partition: Partition): Promise<CryptoKey> {
    const systemKey = await this.#systemKeys.getOrLoadLatest(partition.systemKeyId, () =>
      this.loadLatestOrCreateSystemKey(partition),
    );
    try {
      const id = partition.intermediateKeyId;
      const outcome = await this.storeNewKey(id, 'intermediate', async (secret, created) => ({
        created,
        encryptedKey: aead.encryptKey(secret, systemKey.secret),
        parentKeyMeta: { keyId: partition.systemKeyId, created: systemKey.created },
      }));
      return 'key' in outcome ? outcome.key : await this.intermediateKeyFromRecord(id, outcome.record, systemKey);
    } finally {
      systemKey.release();
    }
  }

  /**
   * Makes a key and stores its record unless (id, created) exists. If someone else stored that row first (racing
   * creators within the same minute, docs/wire-format.md §1.5), the latest row is loaded instead and returned for
   * the caller to unwrap: everyone ends up with the one key the metastore holds.
   */
  private async storeNewKey(
    id: string,
    kind: 'system' | 'intermediate',
    recordOf: (secret: Secret, created: number) => Promise<EnvelopeKeyRecord>,
  ): Promise<{ key: CryptoKey } | { record: EnvelopeKeyRecord }> {
    const created = this.policy.newKeyTimestamp(this.clock.now());
    const secret = this.secrets.createRandom(KEY_BYTES);
    let stored: boolean;
    try {
      stored = await this.store(id, created, await recordOf(secret, created));
    } catch (err) {
      secret.close();
      throw err;
    }
    if (stored) return { key: new CryptoKey(secret, created, false) };
    secret.close();
    const latest = await this.loadLatest(id);
    if (latest === undefined) {
      throw new KeyNotFoundError(
        `a new ${kind} key conflicted with an existing one, which then could not be read back; check that the ` +
          'metastore reads are strongly consistent, and retry',
      );
    }
    return { record: latest };
  }

  /** Go `intermediateKeyFromEKR`: the record may be under another SK than ours if the SK just rotated. */
  private async intermediateKeyFromRecord(id: string, record: EnvelopeKeyRecord, systemKey: CryptoKey): Promise<CryptoKey> {
    const parent = requireParent(record);
    if (parent.created === systemKey.created) return this.unwrapKey(id, record, systemKey);
    const actual = await this.systemKey(parent);
    try {
      return this.unwrapKey(id, record, actual);
    } finally {
      actual.release();
    }
  }

  /** Go `loadLatestOrCreateSystemKey`. */
  private async loadLatestOrCreateSystemKey(partition: Partition): Promise<CryptoKey> {
    const id = partition.systemKeyId;
    const record = await this.loadLatest(id);
    if (record !== undefined && this.isValidForWrites(record)) return this.decryptSystemKey(id, record);
    const outcome = await this.storeNewKey(id, 'system', async (secret, created) => {
      this.lifecycle.checkNotClosed();
      this.metrics.increment('kms.encryptKey');
      return { created, encryptedKey: await this.lifecycle.race(this.#kms.encryptKey(secret)) };
    });
    return 'key' in outcome ? outcome.key : this.decryptSystemKey(id, outcome.record);
  }

  // ---- reads ----------------------------------------------------------------------------------------------------

  /** The IK a record names (acquired). Decrypt never creates keys. */
  intermediateKey(meta: KeyMeta): CryptoKey | Promise<CryptoKey> {
    return this.#intermediateKeys.getOrLoad(meta.keyId, meta.created, async () => {
      const record = await this.load(meta.keyId, meta.created);
      if (record === undefined) {
        // The message names no key id: ids come from the record (a DRR key field) and hold partition ids.
        throw new KeyNotFoundError(
          'the intermediate key this record names is not in the metastore; the record was written to another ' +
            'metastore (a "memory" metastore lives only in the process that wrote it), or its keys were deleted',
        );
      }
      const parent = requireParent(record);
      const systemKey = await this.systemKey(parent);
      try {
        return this.unwrapKey(meta.keyId, record, systemKey);
      } finally {
        systemKey.release();
      }
    });
  }

  /** The SK a record names (acquired). */
  private systemKey(meta: KeyMeta): CryptoKey | Promise<CryptoKey> {
    return this.#systemKeys.getOrLoad(meta.keyId, meta.created, async () => {
      const record = await this.load(meta.keyId, meta.created);
      if (record === undefined) {
        throw new KeyNotFoundError(
          'the system key an intermediate key was encrypted under is not in the metastore; the keys were ' +
            'written to another metastore or deleted',
        );
      }
      return this.decryptSystemKey(meta.keyId, record);
    });
  }

  // ---- helpers --------------------------------------------------------------------------------------------------

  private async decryptSystemKey(id: string, record: EnvelopeKeyRecord): Promise<CryptoKey> {
    this.lifecycle.checkNotClosed();
    this.metrics.increment('kms.decryptKey');
    let secret: Secret;
    try {
      // A key that arrives after the factory closed is closed at once: nobody will use it.
      secret = await this.lifecycle.race(this.#kms.decryptKey(record.encryptedKey, this.secrets), (late) => late.close());
    } catch (err) {
      throw corruptRow(err, 'system key', id, record);
    }
    if (secret.length !== KEY_BYTES) {
      // A custom KeyManagementService may not check the size itself.
      secret.close();
      throw corruptRow(new InvalidRecordError(`it unwrapped to ${secret.length} bytes, not 32`), 'system key', id, record);
    }
    return new CryptoKey(secret, record.created, record.revoked === true);
  }

  private unwrapKey(id: string, record: EnvelopeKeyRecord, parent: CryptoKey): CryptoKey {
    try {
      const secret = aead.decryptToSecret(record.encryptedKey, parent.secret, this.secrets, 'it');
      return new CryptoKey(secret, record.created, record.revoked === true);
    } catch (err) {
      throw corruptRow(err, 'intermediate key', id, record);
    }
  }

  private isValidForWrites(record: EnvelopeKeyRecord): boolean {
    return record.revoked !== true && !this.policy.isExpired(record.created, this.clock.now());
  }

  // Each metastore call first checks that the factory is still open (a load that was waiting when it closed must
  // not go on to read, or create and store, keys nobody will use) and then races the close.
  private load(id: string, created: number): Promise<EnvelopeKeyRecord | undefined> {
    this.lifecycle.checkNotClosed();
    this.metrics.increment('metastore.load');
    return this.lifecycle.race(this.#metastore.load(id, created));
  }

  private loadLatest(id: string): Promise<EnvelopeKeyRecord | undefined> {
    this.lifecycle.checkNotClosed();
    this.metrics.increment('metastore.loadLatest');
    return this.lifecycle.race(this.#metastore.loadLatest(id));
  }

  private store(id: string, created: number, record: EnvelopeKeyRecord): Promise<boolean> {
    this.lifecycle.checkNotClosed();
    this.metrics.increment('metastore.store');
    return this.lifecycle.race(this.#metastore.store(id, created, record));
  }

  /** Wipes every cached key, even one an unfinished operation holds (it then fails with ClosedError). */
  close(): void {
    this.#intermediateKeys.close();
    this.#systemKeys.close();
  }
}

/**
 * A key row that authenticates but does not hold a key (the wrong size) is bad stored data: an InvalidRecordError
 * that names the row (its id and Created: the data to repair) and never its bytes. Other errors pass as they are.
 */
function corruptRow(err: unknown, kind: string, id: string, record: EnvelopeKeyRecord): unknown {
  if (!(err instanceof InvalidRecordError)) return err;
  return new InvalidRecordError(
    `the ${kind} ${id} (Created ${record.created}) in the metastore is not a valid key: ${err.message}; the row is ` +
      'corrupt or was not written by Asherah: restore it from a backup (records under it cannot be decrypted ' +
      'until then)',
    { cause: err },
  );
}

function requireParent(record: EnvelopeKeyRecord): KeyMeta {
  if (record.parentKeyMeta === undefined) {
    throw new KeyNotFoundError(
      'an intermediate key record has no ParentKeyMeta, so its system key cannot be found; the metastore row is corrupt',
    );
  }
  return record.parentKeyMeta;
}

redactWith(KeyManager, (m) => ({ serviceName: m.serviceName, productId: m.productId }));
