/**
 * AWS KMS as Asherah's master key, in one or several regions (docs/wire-format.md §4.3; Go
 * `plugins/aws-v2/kms/kms.go`). The SK is never sent to KMS: it is AES-256-GCM encrypted under a fresh KMS data
 * key, and that data key is wrapped by the KMS key of every configured region, so any one region can unwrap it.
 * The bytes `encryptKey` returns (the SK record's Key, before the core's base64) are Go's envelope, UTF-8 JSON
 * (aws-kms-envelope.ts).
 *
 * encryptKey: GenerateDataKey(KeyId = ARN, KeySpec = AES_256) in the preferred region, then the next regions in
 * priority order until one succeeds (Go v2 `generateDataKey`); then, concurrently, Encrypt(data key) in every other
 * region. A region that fails is left out of kmsKeks (logged and counted; Go logs only), as long as one KEK
 * remains. Cost when healthy: 1 GenerateDataKey + (regions − 1) Encrypt.
 * decryptKey: the configured regions in priority order (Go v2, not Java's envelope order): find the KEK by region,
 * Decrypt(CiphertextBlob, KeyId = that region's ARN), then AES-GCM-decrypt encryptedKey. A KMS error or an AES error
 * moves on to the next region. Cost when healthy: 1 Decrypt.
 *
 * The adapter takes SDK v3 KMSClients (one per region) instead of making them, so the core never constructs an SDK
 * client; `kmsClientsFor` (aws-kms-clients.ts) builds them for the common case. The SDK is loaded lazily with a
 * require that bundlers leave alone, so this module (and the layer's index, which imports it) loads where @aws-sdk
 * is absent: the layer does not ship it, and the Lambda Node.js runtime provides it.
 *
 * Time: one region gets at most `regionTimeoutMs` (2 s) per operation, the SDK's retries included (an abort
 * signal), so a slow region costs that much before the next is tried, and the concurrent Encrypts of a new SK end
 * within it too (a region that has not answered by then is left out of the envelope, as a failed one is). A region
 * that failed goes last in the order for `skipFailedRegionMs` (60 s), so later calls go to a healthy region first.
 * A call's worst case is regions × regionTimeoutMs (docs/troubleshooting.md, "AWS KMS … timeouts").
 *
 * Metrics, through the optional hook, one increment per KMS API call (the SDK's own retries inside a call are not
 * counted again); the same names with `.error` appended count the calls that failed:
 *   kms.aws.generatedatakey.<region>   kms.aws.encrypt.<region>   kms.aws.decrypt.<region>
 * (Go records `ael.kms.aws.generatedatakey.<region>`, Java also `ael.kms.aws.encrypt|decrypt.<region>`.)
 */
import type { KMSClient } from '@aws-sdk/client-kms';
import { ConfigError } from '../../errors.js';
import type { Secret } from '../../securememory/secret.js';
import type { SecretFactory } from '../../securememory/secret-factory.js';
import * as aead from '../aead.js';
import { ClosedError, KmsError } from '../errors.js';
import { systemClock, type Clock, type KeyManagementService } from '../ports.js';
import { redactWith } from '../redact.js';
import { regionOrder } from '../config/region-map.js';
import { loadKmsSdk, type KmsSdk } from './aws-kms-clients.js';
import { describeError, errorName, isRegionFailure } from './aws-kms-errors.js';
import { encodeEnvelope, parseEnvelope, type RegionalKek } from './aws-kms-envelope.js';

// The client builders are part of this module's API (the layer's index takes them from here).
export { kmsClientsFor, type KmsClientOptions } from './aws-kms-clients.js';

/** Where region failures are reported (a region that fails is skipped, so this is the only trace of it). */
export interface AwsKmsLogger {
  warn(message: string, details?: Record<string, unknown>): void;
}

/** Receives the per-region call counts named in this module's comment. A `MetricsHook` fits. */
export interface AwsKmsMetricsHook {
  increment(name: string, by: number): void;
}

export interface AwsKmsOptions {
  /** Region → KMS key ARN (RegionMap). Insertion order is the fallback priority after the preferred region. */
  regionMap: Readonly<Record<string, string>>;
  /** Required when regionMap has more than one region (PreferredRegion). */
  preferredRegion?: string;
  /**
   * A KMSClient per region (yours: this adapter never destroys them), or a function that makes one per region,
   * called once per region here (those clients are this adapter's, destroyed by close()).
   */
  clients: Readonly<Record<string, KMSClient>> | ((region: string) => KMSClient);
  /** Secure memory for the transient data keys. */
  secrets: SecretFactory;
  logger?: AwsKmsLogger;
  metrics?: AwsKmsMetricsHook;
  /** The most one region may take for one operation, the SDK's retries included. Default 2000 ms. */
  regionTimeoutMs?: number;
  /** How long a region that failed goes last in the order. Default 60000 ms; 0 keeps the configured order. */
  skipFailedRegionMs?: number;
  /** For tests: when a region failed is read from here. */
  clock?: Clock;
}

export const DEFAULT_REGION_TIMEOUT_MS = 2_000;
export const DEFAULT_SKIP_FAILED_REGION_MS = 60_000;

interface RegionalKms {
  readonly region: string;
  readonly arn: string;
  readonly client: KMSClient;
}

interface DataKey {
  from: RegionalKms;
  /** The key ARN KMS reports (always the full ARN, even when configured as an alias or key id). */
  keyId: string | undefined;
  plaintext: Uint8Array;
  ciphertextBlob: Uint8Array;
}

type Operation = 'GenerateDataKey' | 'Encrypt' | 'Decrypt';

const DATA_KEY_BYTES = aead.KEY_SIZE;

export class AwsKms implements KeyManagementService {
  /** Priority order: the preferred region first, then the rest in regionMap order. */
  readonly #regionals: readonly RegionalKms[];
  readonly #sdk: KmsSdk;
  readonly #secrets: SecretFactory;
  readonly #ownedClients: KMSClient[] = [];
  readonly #logger: AwsKmsLogger | undefined;
  readonly #metricsHook: AwsKmsMetricsHook | undefined;
  readonly #regionTimeoutMs: number;
  readonly #skipFailedRegionMs: number;
  readonly #clock: Clock;
  /** When each region last failed (clock ms); a region goes last while that is recent. */
  readonly #failedAt = new Map<string, number>();
  #closed = false;

  constructor(options: AwsKmsOptions) {
    if (options === null || typeof options !== 'object') throw new ConfigError('AwsKms takes an options object');
    const order = regionOrder(options.regionMap, options.preferredRegion);
    const clients = options.clients;
    if (clients === null || (typeof clients !== 'object' && typeof clients !== 'function')) {
      throw new ConfigError('AwsKms needs clients: a KMSClient per region, or a function (region) => KMSClient');
    }
    if (options.secrets === null || typeof options.secrets !== 'object') {
      throw new ConfigError('AwsKms needs secrets: the SecretFactory that holds the transient data keys');
    }
    this.#regionTimeoutMs = checkMs(options.regionTimeoutMs, DEFAULT_REGION_TIMEOUT_MS, 'regionTimeoutMs', 1);
    this.#skipFailedRegionMs = checkMs(options.skipFailedRegionMs, DEFAULT_SKIP_FAILED_REGION_MS, 'skipFailedRegionMs', 0);
    this.#clock = options.clock ?? systemClock;
    this.#sdk = loadKmsSdk();
    this.#secrets = options.secrets;
    this.#logger = options.logger;
    this.#metricsHook = options.metrics;
    try {
      this.#regionals = order.map((region) => {
        const client =
          typeof clients === 'function'
            ? clients(region)
            : Object.prototype.hasOwnProperty.call(clients, region)
              ? clients[region]
              : undefined;
        if (client == null || typeof (client as { send?: unknown }).send !== 'function') {
          throw new ConfigError(`AwsKms has no KMSClient for region ${JSON.stringify(region)} of regionMap`);
        }
        if (typeof clients === 'function') this.#ownedClients.push(client);
        return { region, arn: options.regionMap[region], client };
      });
    } catch (err) {
      this.close(); // the clients made so far
      throw err;
    }
  }

  /** The regions in the order they are tried: the preferred region first. */
  get regions(): string[] {
    return this.#regionals.map((r) => r.region);
  }

  get preferredRegion(): string {
    return this.#regionals[0].region;
  }

  async encryptKey(systemKey: Secret): Promise<Buffer> {
    this.checkOpen();
    try {
      return await this.encryptWithKms(systemKey);
    } catch (err) {
      throw this.#closed ? this.closedError(err) : err;
    }
  }

  async decryptKey(encryptedKey: Uint8Array, secrets: SecretFactory): Promise<Secret> {
    this.checkOpen();
    try {
      return await this.decryptWithKms(encryptedKey, secrets);
    } catch (err) {
      throw this.#closed ? this.closedError(err) : err;
    }
  }

  /** Destroys the clients this adapter made (from a client function); clients passed in stay the caller's. */
  close(): void {
    this.#closed = true;
    for (const client of this.#ownedClients.splice(0)) client.destroy();
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  private checkOpen(): void {
    if (this.#closed) throw this.closedError();
  }

  private closedError(cause?: unknown): ClosedError {
    return new ClosedError(
      'the AwsKms was closed (its KMS clients destroyed) during or before this call; create a new AwsKms',
      cause === undefined ? undefined : { cause },
    );
  }

  // ---- steps ----------------------------------------------------------------------------------------------------

  private async encryptWithKms(systemKey: Secret): Promise<Buffer> {
    const dataKey = await this.generateDataKey();
    // The data key's plaintext has to be on the heap while the SDK serializes the Encrypt requests (it base64s it
    // into the request body, which cannot be wiped); it is zeroed as soon as every regional call has settled.
    try {
      const key = this.#secrets.createFrom(Buffer.from(dataKey.plaintext)); // the temporary copy is wiped
      let encryptedKey: Buffer;
      try {
        encryptedKey = aead.encryptKey(systemKey, key);
      } finally {
        key.close();
      }
      const keks = await this.wrapInEveryRegion(dataKey);
      if (keks.length === 0) {
        // Cannot happen while the generating region's blob is reused, but an SK that no region can unwrap must
        // never reach the metastore.
        throw new KmsError('AWS KMS produced no regional KEK for the new system key; nothing was stored');
      }
      return encodeEnvelope({ encryptedKey, kmsKeks: keks });
    } finally {
      dataKey.plaintext.fill(0);
    }
  }

  private async decryptWithKms(encryptedKey: Uint8Array, secrets: SecretFactory): Promise<Secret> {
    const envelope = parseEnvelope(encryptedKey);
    // Go builds a map, so for a region listed twice the last KEK wins.
    const keks = new Map<string, RegionalKek>();
    for (const kek of envelope.kmsKeks) keks.set(kek.region, kek);
    const failures: string[] = [];
    const causes: unknown[] = [];
    for (const regional of this.ordered()) {
      const kek = keks.get(regional.region);
      if (kek === undefined) {
        failures.push(`${regional.region}: the envelope has no KEK for this region`);
        continue;
      }
      this.count('decrypt', regional.region);
      let plaintext: Uint8Array | undefined;
      try {
        const command = new this.#sdk.DecryptCommand({ KeyId: regional.arn, CiphertextBlob: kek.encryptedKek });
        const out = await this.send(regional, (client, options) => client.send(command, options));
        plaintext = out.Plaintext;
        if (plaintext === undefined || plaintext.length !== DATA_KEY_BYTES) {
          throw new Error(`KMS Decrypt returned ${plaintext === undefined ? 'no' : `a ${plaintext.length}-byte`} plaintext, not a 32-byte data key`);
        }
        const key = this.#secrets.createFrom(plaintext); // wipes the SDK's copy
        try {
          return aead.decryptToSecret(envelope.encryptedKey, key, secrets);
        } finally {
          key.close();
        }
      } catch (err) {
        if (!isRegionFailure(err)) throw err;
        causes.push(err);
        failures.push(this.regionFailed('Decrypt', regional, err));
      } finally {
        plaintext?.fill(0);
      }
    }
    const held = [...keks.keys()].join(', ') || 'none';
    throw new KmsError(
      `decrypt failed in all regions: ${failures.join('; ')} (the envelope has KEKs for: ${held}); check that ` +
        'RegionMap names the regions and keys this system key was written with, and that this role may call ' +
        'kms:Decrypt on them',
      { cause: new AggregateError(causes, 'every region failed') },
    );
  }

  /** Go v2 `generateDataKey`: the regions in priority order, the first success wins. */
  private async generateDataKey(): Promise<DataKey> {
    const failures: string[] = [];
    const causes: unknown[] = [];
    for (const regional of this.ordered()) {
      this.count('generatedatakey', regional.region);
      try {
        const command = new this.#sdk.GenerateDataKeyCommand({ KeyId: regional.arn, KeySpec: 'AES_256' });
        const out = await this.send(regional, (client, options) => client.send(command, options));
        const plaintext = out.Plaintext;
        if (plaintext === undefined || plaintext.length !== DATA_KEY_BYTES || !out.CiphertextBlob?.length) {
          plaintext?.fill(0);
          throw new Error('KMS GenerateDataKey returned no 32-byte data key or no CiphertextBlob');
        }
        return { from: regional, keyId: out.KeyId, plaintext, ciphertextBlob: out.CiphertextBlob };
      } catch (err) {
        causes.push(err);
        failures.push(this.regionFailed('GenerateDataKey', regional, err));
      }
    }
    throw new KmsError(
      `generate data key failed in all regions: ${failures.join('; ')}; no system key was created or stored. ` +
        'Check the KMS key ARNs in RegionMap, network access to KMS, and that this role may call ' +
        'kms:GenerateDataKey and kms:Encrypt on them',
      { cause: new AggregateError(causes, 'every region failed') },
    );
  }

  /**
   * Go v2 `encryptRegionalKEKs`: the generating region reuses its CiphertextBlob, every other region Encrypts the
   * data key, concurrently. Go matches the blob by `arn == KeyId` only, so a region configured with an alias or a
   * bare key id pays an extra Encrypt there; matching the generating region as well gives the same envelope with
   * one call fewer. A failed region is left out; the KEKs come back in priority order.
   */
  private async wrapInEveryRegion(dataKey: DataKey): Promise<RegionalKek[]> {
    const keks = await Promise.all(
      this.#regionals.map(async (regional): Promise<RegionalKek | undefined> => {
        if (regional === dataKey.from || regional.arn === dataKey.keyId) {
          return { region: regional.region, arn: regional.arn, encryptedKek: Buffer.from(dataKey.ciphertextBlob) };
        }
        this.count('encrypt', regional.region);
        try {
          const command = new this.#sdk.EncryptCommand({ KeyId: regional.arn, Plaintext: dataKey.plaintext });
          const out = await this.send(regional, (client, options) => client.send(command, options));
          if (!out.CiphertextBlob?.length) throw new Error('KMS Encrypt returned no CiphertextBlob');
          return { region: regional.region, arn: regional.arn, encryptedKek: Buffer.from(out.CiphertextBlob) };
        } catch (err) {
          this.regionFailed('Encrypt', regional, err);
          return undefined;
        }
      }),
    );
    return keks.filter((kek): kek is RegionalKek => kek !== undefined);
  }

  /** The regions, healthy ones first (in priority order), then those that failed recently (in priority order). */
  private ordered(): readonly RegionalKms[] {
    if (this.#failedAt.size === 0) return this.#regionals;
    const now = this.#clock.now();
    const recent = (r: RegionalKms) => {
      const at = this.#failedAt.get(r.region);
      return at !== undefined && now - at < this.#skipFailedRegionMs;
    };
    return [...this.#regionals.filter((r) => !recent(r)), ...this.#regionals.filter(recent)];
  }

  /**
   * One KMS call in one region, aborted after regionTimeoutMs whatever the client's own timeouts and retries. A
   * failure marks the region, a success clears it.
   */
  private async send<O>(
    regional: RegionalKms,
    call: (client: KMSClient, options: { abortSignal: AbortSignal }) => Promise<O>,
  ): Promise<O> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.#regionTimeoutMs);
    timer.unref?.();
    try {
      const out = await call(regional.client, { abortSignal: controller.signal });
      this.#failedAt.delete(regional.region);
      return out;
    } catch (err) {
      this.#failedAt.set(regional.region, this.#clock.now());
      if (controller.signal.aborted) {
        throw new KmsError(`no answer within ${this.#regionTimeoutMs} ms (regionTimeoutMs)`, { cause: err });
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- reporting ------------------------------------------------------------------------------------------------

  private count(operation: 'generatedatakey' | 'encrypt' | 'decrypt', region: string, suffix = ''): void {
    this.#metricsHook?.increment(`kms.aws.${operation}.${region}${suffix}`, 1);
  }

  /** Logs and counts a failed regional call; returns "<region>: <reason>" for the all-regions-failed message. */
  private regionFailed(operation: Operation, regional: RegionalKms, err: unknown): string {
    const reason = describeError(err);
    this.count(operation.toLowerCase() as 'generatedatakey' | 'encrypt' | 'decrypt', regional.region, '.error');
    const consequence =
      operation === 'Encrypt'
        ? 'the new system key will not be decryptable in this region'
        : 'trying the next region, if any';
    this.#logger?.warn(`AWS KMS ${operation} failed in ${regional.region}: ${reason}; ${consequence}`, {
      operation,
      region: regional.region,
      keyArn: regional.arn,
      error: errorName(err),
    });
    return `${regional.region}: ${reason}`;
  }
}

redactWith(AwsKms, (k) => ({ regions: k.regions.join(', '), closed: k.isClosed }));

function checkMs(value: number | undefined, fallback: number, name: string, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 600_000) {
    const got = typeof value === 'number' ? String(value) : typeof value;
    throw new ConfigError(`AwsKms ${name} must be a whole number of milliseconds from ${min} to 600000, got ${got}`);
  }
  return value;
}
