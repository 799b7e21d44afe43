/**
 * The AWS KMS adapter (docs/wire-format.md §4.3) through the real AWS SDK v3 over HTTP, against KMS-protocol servers
 * (one per region, scripts/local-aws/kms-server.ts) with real AES-GCM and injected faults: envelope format, region fallback
 * on both paths, all-regions-down, recovery, SDK retries, timeouts, single-region configs, configuration errors, and
 * the KMS calls each cold and warm operation costs.
 */
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  AsherahError,
  ClosedError,
  ConfigError,
  InvalidRecordError,
  KmsError,
  MemoryMetastore,
  SecretFactory,
  SessionFactory,
  StaticKms,
  TEST_DEBUG_STATIC_MASTER_KEY_HEX,
  encodeEnvelopeKeyRecord,
  type CryptoPolicyOptions,
  type DataRowRecord,
  type EnvelopeKeyRecord,
} from '../../layer/src/index';
import { AwsKms, kmsClientsFor, type AwsKmsOptions } from '../../layer/src/appencryption/kms/aws-kms';
import { TestClock } from '../support/envelope';
import { KmsServer, keyArn } from '../../scripts/local-aws/kms-server';
import { runWithoutAwsSdk } from '../support/without-aws-sdk';

const WEST = 'us-west-2';
const EAST = 'us-east-1';
const EU = 'eu-west-1';
const REGIONS = [WEST, EAST, EU];
const ARNS: Record<string, string> = Object.fromEntries(REGIONS.map((r) => [r, keyArn(r)]));
const CREDENTIALS = { accessKeyId: 'AKIDTESTTESTTESTTEST', secretAccessKey: 'test-secret' };
/** Per attempt; the servers answer in about a millisecond. */
const TIMEOUT_MS = 200;

const mapOf = (...regions: string[]): Record<string, string> => Object.fromEntries(regions.map((r) => [r, ARNS[r]]));

class RecordingLogger {
  readonly lines: string[] = [];
  warn(message: string): void {
    this.lines.push(message);
  }
}

class RecordingMetrics {
  readonly counts: Record<string, number> = {};
  increment(name: string, by: number): void {
    this.counts[name] = (this.counts[name] ?? 0) + by;
  }
}

describe('AwsKms against KMS-protocol servers (one per region)', () => {
  const servers: Record<string, KmsServer> = {};
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    for (const region of REGIONS) servers[region] = await KmsServer.start({ keys: [ARNS[region]], label: region });
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    for (const server of Object.values(servers)) {
      server.clear();
      server.resetCounts();
    }
  });
  afterAll(async () => {
    for (const server of Object.values(servers)) await server.close();
  });

  /** SDK clients pointed at the servers: dummy credentials, short timeouts, a 5 ms fixed retry backoff. */
  function clients(regionMap: Record<string, string>, maxAttempts = 3, requestTimeoutMs = TIMEOUT_MS) {
    const made = kmsClientsFor(regionMap, (region) => ({
      endpoint: servers[region].endpoint,
      credentials: CREDENTIALS,
      maxAttempts,
      retryStrategy: new ConfiguredRetryStrategy(maxAttempts, 5),
      requestHandler: { connectionTimeout: TIMEOUT_MS, requestTimeout: requestTimeoutMs, throwOnRequestTimeout: true },
    }));
    cleanups.push(() => Object.values(made).forEach((client) => client.destroy()));
    return made;
  }

  interface Setup {
    regions?: string[];
    preferredRegion?: string | null;
    metastore?: MemoryMetastore;
    maxAttempts?: number;
    clock?: TestClock;
    policy?: CryptoPolicyOptions;
    requestTimeoutMs?: number;
    kms?: Partial<AwsKmsOptions>;
  }

  /** A SessionFactory on AwsKms. `preferredRegion: null` leaves it out; by default it is the first region. */
  function setup(options: Setup = {}) {
    const regions = options.regions ?? REGIONS;
    const regionMap = mapOf(...regions);
    const secrets = new SecretFactory();
    const logger = new RecordingLogger();
    const metrics = new RecordingMetrics();
    const kmsOptions: AwsKmsOptions = {
      regionMap,
      clients: clients(regionMap, options.maxAttempts, options.requestTimeoutMs),
      secrets,
      logger,
      metrics,
      ...options.kms,
    };
    if (options.preferredRegion !== null) kmsOptions.preferredRegion = options.preferredRegion ?? regions[0];
    const kms = new AwsKms(kmsOptions);
    const metastore = options.metastore ?? new MemoryMetastore();
    const factory = SessionFactory.create({
      serviceName: 'service',
      productId: 'product',
      metastore,
      kms,
      secrets,
      clock: options.clock,
      policy: options.policy,
    });
    cleanups.push(async () => {
      await factory.close();
      kms.close();
      secrets.close();
    });
    return { factory, kms, metastore, logger, metrics, secrets };
  }

  const encrypt = async (factory: SessionFactory, partition: string, text: string) => {
    const session = factory.getSession(partition);
    try {
      return await session.encrypt(Buffer.from(text));
    } finally {
      session.close();
    }
  };
  const decrypt = async (factory: SessionFactory, partition: string, drr: DataRowRecord) => {
    const session = factory.getSession(partition);
    try {
      return (await session.decrypt(drr)).toString();
    } finally {
      session.close();
    }
  };

  const calls = () =>
    Object.fromEntries(
      REGIONS.map((r) => [r, { ...servers[r].requests }]),
    ) as Record<string, Record<'GenerateDataKey' | 'Encrypt' | 'Decrypt', number>>;
  const total = () => REGIONS.reduce((sum, r) => sum + servers[r].totalRequests, 0);

  const skRows = (metastore: MemoryMetastore) => metastore.rows().filter((row) => row.id.startsWith('_SK_'));

  interface EnvelopeJson {
    encryptedKey: string;
    kmsKeks: { region: string; arn: string; encryptedKek: string }[];
  }
  /** The envelope inside an SK record, via the record's stored JSON form (Key = base64 of the envelope text). */
  const envelopeText = (record: EnvelopeKeyRecord) => {
    const stored = JSON.parse(encodeEnvelopeKeyRecord(record)) as { Key: string };
    return Buffer.from(stored.Key, 'base64').toString('utf8');
  };
  const envelopeOf = (record: EnvelopeKeyRecord) => JSON.parse(envelopeText(record)) as EnvelopeJson;

  /** Copies a metastore, with the SK records passed through `edit`. */
  async function copyWithSkEdited(source: MemoryMetastore, edit: (envelope: EnvelopeJson) => Promise<EnvelopeJson>) {
    const copy = new MemoryMetastore();
    for (const row of source.rows()) {
      const record = row.id.startsWith('_SK_')
        ? { ...row.record, encryptedKey: Buffer.from(JSON.stringify(await edit(envelopeOf(row.record)))) }
        : row.record;
      await copy.store(row.id, row.created, record);
    }
    return copy;
  }

  // ---- format and round trip --------------------------------------------------------------------------------------

  it('round trip over three regions stores base64 of Go\'s envelope JSON with one KEK per region', async () => {
    const { factory, metastore, metrics } = setup();
    const drr = await encrypt(factory, 'p1', 'hello multi-region');
    expect(await decrypt(factory, 'p1', drr)).toBe('hello multi-region');

    const [sk] = skRows(metastore);
    expect(skRows(metastore)).toHaveLength(1);
    const text = envelopeText(sk.record);
    const b64 = '[A-Za-z0-9+/]+={0,2}';
    const kek = `\\{"region":"[a-z0-9-]+","arn":"[^"]+","encryptedKek":"${b64}"\\}`;
    expect(text).toMatch(new RegExp(`^\\{"encryptedKey":"${b64}","kmsKeks":\\[${kek}(,${kek}){2}\\]\\}$`));
    const envelope = JSON.parse(text) as EnvelopeJson;
    expect(envelope.kmsKeks.map((k) => [k.region, k.arn])).toEqual(REGIONS.map((r) => [r, ARNS[r]]));
    // AES-256-GCM of a 32-byte SK: 32 + 16 (tag) + 12 (nonce).
    expect(Buffer.from(envelope.encryptedKey, 'base64')).toHaveLength(60);

    // Cold encrypt: GenerateDataKey in the preferred region, Encrypt in each other one; the decrypt was warm.
    expect(calls()).toEqual({
      [WEST]: { GenerateDataKey: 1, Encrypt: 0, Decrypt: 0 },
      [EAST]: { GenerateDataKey: 0, Encrypt: 1, Decrypt: 0 },
      [EU]: { GenerateDataKey: 0, Encrypt: 1, Decrypt: 0 },
    });
    expect(metrics.counts).toEqual({
      [`kms.aws.generatedatakey.${WEST}`]: 1,
      [`kms.aws.encrypt.${EAST}`]: 1,
      [`kms.aws.encrypt.${EU}`]: 1,
    });
  });

  it('every regional KEK alone unwraps the system key (a single-region config per region)', async () => {
    const writer = setup();
    const drr = await encrypt(writer.factory, 'p1', 'any region will do');
    for (const region of REGIONS) {
      const reader = setup({ regions: [region], preferredRegion: null, metastore: writer.metastore });
      expect(await decrypt(reader.factory, 'p1', drr)).toBe('any region will do');
      expect(servers[region].requests.Decrypt).toBe(1);
    }
  });

  it('a single-region config (one ARN, no PreferredRegion) writes a one-KEK envelope with one KMS call', async () => {
    const { factory, metastore, kms } = setup({ regions: [EAST], preferredRegion: null });
    expect(kms.regions).toEqual([EAST]);
    const drr = await encrypt(factory, 'p1', 'single');
    expect(await decrypt(factory, 'p1', drr)).toBe('single');
    const envelope = envelopeOf(skRows(metastore)[0].record);
    expect(envelope.kmsKeks.map((k) => k.region)).toEqual([EAST]);
    expect(total()).toBe(1);
    expect(servers[EAST].requests.GenerateDataKey).toBe(1);
  });

  it('a region configured by bare key id reuses its GenerateDataKey blob (Go would Encrypt there as well)', async () => {
    const regionMap = { [WEST]: 'mrk-test-us-west-2', [EAST]: ARNS[EAST] };
    const secrets = new SecretFactory();
    const kms = new AwsKms({ regionMap, preferredRegion: WEST, clients: clients(regionMap), secrets });
    const metastore = new MemoryMetastore();
    const factory = SessionFactory.create({ serviceName: 'service', productId: 'product', metastore, kms, secrets });
    cleanups.push(async () => {
      await factory.close();
      secrets.close();
    });
    const drr = await encrypt(factory, 'p1', 'bare key id');
    expect(calls()[WEST]).toEqual({ GenerateDataKey: 1, Encrypt: 0, Decrypt: 0 });
    expect(calls()[EAST]).toEqual({ GenerateDataKey: 0, Encrypt: 1, Decrypt: 0 });
    // The envelope records the configured key id, as Go does; Decrypt passes it as KeyId.
    expect(envelopeOf(skRows(metastore)[0].record).kmsKeks.map((k) => k.arn)).toEqual(['mrk-test-us-west-2', ARNS[EAST]]);
    const reader = setup({ regions: [WEST], preferredRegion: null, metastore });
    expect(await decrypt(reader.factory, 'p1', drr)).toBe('bare key id');
  });

  // ---- calls per cold and warm operation ------------------------------------------------------------------------

  it('a cold factory pays exactly one KMS Decrypt per system key, a warm one none', async () => {
    const clock = new TestClock();
    const policy = { expireAfterSeconds: 3600 };
    const writer = setup({ clock, policy });
    const first = await encrypt(writer.factory, 'p1', 'under SK 1');
    expect(total()).toBe(3); // cold encrypt, new SK: 1 GenerateDataKey + 2 Encrypt
    await encrypt(writer.factory, 'p1', 'warm');
    await encrypt(writer.factory, 'p2', 'warm, new IK, same SK');
    expect(total()).toBe(3); // warm encrypts: no KMS call
    clock.advanceSeconds(7200); // the SK and IK expire: the next write makes new ones
    const second = await encrypt(writer.factory, 'p1', 'under SK 2');
    expect(total()).toBe(6);
    expect(skRows(writer.metastore)).toHaveLength(2);

    for (const server of Object.values(servers)) server.resetCounts();
    const reader = setup({ clock, policy, metastore: writer.metastore });
    // Concurrent cold decrypts share one unwrap per SK (the key cache's single flight).
    const texts = await Promise.all(Array.from({ length: 8 }, (_, i) => decrypt(reader.factory, 'p1', i % 2 ? second : first)));
    expect(new Set(texts)).toEqual(new Set(['under SK 1', 'under SK 2']));
    expect(calls()[WEST]).toEqual({ GenerateDataKey: 0, Encrypt: 0, Decrypt: 2 });
    expect(total()).toBe(2);
    expect(reader.factory.metrics()).toMatchObject({ kmsDecryptKeyCalls: 2, kmsEncryptKeyCalls: 0 });

    await decrypt(reader.factory, 'p1', first);
    await decrypt(reader.factory, 'p1', second);
    await encrypt(reader.factory, 'p1', 'warm encrypt under the cached SK 2');
    expect(total()).toBe(2);
    expect(reader.factory.metrics()).toMatchObject({ kmsDecryptKeyCalls: 2, kmsEncryptKeyCalls: 0 });

    // A cold factory whose first operation is an encrypt loads the existing SK: one Decrypt, no new SK.
    for (const server of Object.values(servers)) server.resetCounts();
    const third = setup({ clock, policy, metastore: writer.metastore });
    await encrypt(third.factory, 'p3', 'cold encrypt, SK exists');
    expect(calls()[WEST]).toEqual({ GenerateDataKey: 0, Encrypt: 0, Decrypt: 1 });
    expect(total()).toBe(1);
  });

  // ---- fallback -------------------------------------------------------------------------------------------------

  it('with the preferred region down, decrypt uses the next region', async () => {
    const writer = setup();
    const drr = await encrypt(writer.factory, 'p1', 'fallback');
    servers[WEST].down();
    servers[WEST].resetCounts();

    const reader = setup({ metastore: writer.metastore, maxAttempts: 2 });
    expect(await decrypt(reader.factory, 'p1', drr)).toBe('fallback');
    expect(servers[EAST].requests.Decrypt).toBe(1);
    expect(servers[EU].requests.Decrypt).toBe(0);
    expect(servers[WEST].droppedConnections).toBeGreaterThanOrEqual(1);
    expect(reader.metrics.counts).toMatchObject({
      [`kms.aws.decrypt.${WEST}`]: 1,
      [`kms.aws.decrypt.${WEST}.error`]: 1,
      [`kms.aws.decrypt.${EAST}`]: 1,
    });
    expect(reader.logger.lines).toEqual([expect.stringMatching(/^AWS KMS Decrypt failed in us-west-2: .*trying the next region/)]);
  });

  it('with the preferred region down, encrypt generates the data key in the next region and leaves the down one out', async () => {
    servers[WEST].down();
    const { factory, metastore, logger, metrics } = setup({ maxAttempts: 2 });
    const drr = await encrypt(factory, 'p1', 'written while us-west-2 is down');
    expect(calls()[EAST]).toEqual({ GenerateDataKey: 1, Encrypt: 0, Decrypt: 0 });
    expect(calls()[EU]).toEqual({ GenerateDataKey: 0, Encrypt: 1, Decrypt: 0 });
    const envelope = envelopeOf(skRows(metastore)[0].record);
    expect(envelope.kmsKeks.map((k) => k.region)).toEqual([EAST, EU]);
    expect(metrics.counts).toMatchObject({
      [`kms.aws.generatedatakey.${WEST}.error`]: 1,
      [`kms.aws.encrypt.${WEST}.error`]: 1,
    });
    expect(logger.lines).toEqual([
      expect.stringMatching(/^AWS KMS GenerateDataKey failed in us-west-2: /),
      expect.stringMatching(/^AWS KMS Encrypt failed in us-west-2: .*not be decryptable in this region/),
    ]);

    // Once us-west-2 is back, a cold reader skips it (no KEK there) without calling it.
    servers[WEST].clear();
    for (const server of Object.values(servers)) server.resetCounts();
    const reader = setup({ metastore });
    expect(await decrypt(reader.factory, 'p1', drr)).toBe('written while us-west-2 is down');
    expect(servers[WEST].totalRequests).toBe(0);
    expect(servers[EAST].requests.Decrypt).toBe(1);
  });

  it('a KEK that unwraps to the wrong data key (AES-GCM fails) moves on to the next region, as Go v2 does', async () => {
    const writer = setup();
    const drr = await encrypt(writer.factory, 'p1', 'aes fallback');
    // Replace us-west-2's KEK with a valid KMS ciphertext of some other 32-byte key.
    const westClient = clients(mapOf(WEST))[WEST];
    const other = await westClient.send(
      new EncryptCommand({ KeyId: ARNS[WEST], Plaintext: Buffer.alloc(32, 7) }),
    );
    const tampered = await copyWithSkEdited(writer.metastore, async (envelope) => ({
      ...envelope,
      kmsKeks: envelope.kmsKeks.map((k) =>
        k.region === WEST ? { ...k, encryptedKek: Buffer.from(other.CiphertextBlob!).toString('base64') } : k,
      ),
    }));
    for (const server of Object.values(servers)) server.resetCounts();
    const reader = setup({ metastore: tampered });
    expect(await decrypt(reader.factory, 'p1', drr)).toBe('aes fallback');
    expect(servers[WEST].requests.Decrypt).toBe(1);
    expect(servers[EAST].requests.Decrypt).toBe(1);
    expect(reader.logger.lines).toEqual([expect.stringMatching(/^AWS KMS Decrypt failed in us-west-2: DecryptError: /)]);
  });

  // ---- every region down, and recovery --------------------------------------------------------------------------

  it('with every region down, encrypt throws a KmsError and writes nothing; it works once a region recovers', async () => {
    for (const region of REGIONS) servers[region].down();
    const { factory, metastore } = setup({ maxAttempts: 1 });
    const error = await encrypt(factory, 'p1', 'nowhere to go').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(KmsError);
    expect(error).toBeInstanceOf(AsherahError);
    expect((error as Error).name).toBe('KmsError');
    expect((error as Error).message).toMatch(
      /^generate data key failed in all regions: us-west-2: .+; us-east-1: .+; eu-west-1: .+; no system key was created or stored/,
    );
    expect(metastore.rows()).toEqual([]);

    servers[EU].clear(); // one region back is enough
    const drr = await encrypt(factory, 'p1', 'recovered');
    expect(await decrypt(factory, 'p1', drr)).toBe('recovered');
    expect(envelopeOf(skRows(metastore)[0].record).kmsKeks.map((k) => k.region)).toEqual([EU]);
    expect(metastore.rows().map((row) => row.id)).toEqual(['_IK_p1_service_product', '_SK_service_product']);
  });

  it('with every region down, a cold decrypt throws a KmsError naming each region, and succeeds after recovery', async () => {
    const writer = setup();
    const drr = await encrypt(writer.factory, 'p1', 'wait for it');
    for (const region of REGIONS) servers[region].down();
    const reader = setup({ metastore: writer.metastore, maxAttempts: 1 });
    const rowsBefore = writer.metastore.rows().length;

    const error = await decrypt(reader.factory, 'p1', drr).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(KmsError);
    const message = (error as Error).message;
    expect(message).toMatch(/^decrypt failed in all regions: us-west-2: .+; us-east-1: .+; eu-west-1: .+ \(the envelope has KEKs for: us-west-2, us-east-1, eu-west-1\)/);
    const envelope = envelopeOf(skRows(writer.metastore)[0].record);
    for (const secretPart of [envelope.encryptedKey, ...envelope.kmsKeks.map((k) => k.encryptedKek)]) {
      expect(message).not.toContain(secretPart);
    }
    expect(writer.metastore.rows()).toHaveLength(rowsBefore);

    servers[EAST].clear();
    expect(await decrypt(reader.factory, 'p1', drr)).toBe('wait for it'); // failures are not cached
  });

  // ---- SDK retries and timeouts ---------------------------------------------------------------------------------

  it('the SDK retries throttling: throttle(2) with maxAttempts 3 succeeds in the preferred region', async () => {
    const writer = setup();
    const drr = await encrypt(writer.factory, 'p1', 'throttled');
    for (const server of Object.values(servers)) server.resetCounts();
    servers[WEST].throttle(2);
    const reader = setup({ metastore: writer.metastore, maxAttempts: 3 });
    expect(await decrypt(reader.factory, 'p1', drr)).toBe('throttled');
    expect(servers[WEST].requests.Decrypt).toBe(3);
    expect(servers[EAST].totalRequests).toBe(0);
    expect(reader.metrics.counts).toEqual({ [`kms.aws.decrypt.${WEST}`]: 1 }); // one API call, retried inside the SDK
    expect(reader.logger.lines).toEqual([]);
  });

  it('throttling beyond maxAttempts fails the region over to the next one', async () => {
    const writer = setup();
    const drr = await encrypt(writer.factory, 'p1', 'throttled out');
    for (const server of Object.values(servers)) server.resetCounts();
    servers[WEST].throttle(3);
    const reader = setup({ metastore: writer.metastore, maxAttempts: 3 });
    expect(await decrypt(reader.factory, 'p1', drr)).toBe('throttled out');
    expect(servers[WEST].requests.Decrypt).toBe(3);
    expect(servers[EAST].requests.Decrypt).toBe(1);
    expect(reader.logger.lines).toEqual([expect.stringMatching(/failed in us-west-2: ThrottlingException: /)]);
  });

  it('a region slower than the request timeout behaves like a region that is down', async () => {
    const writer = setup();
    const drr = await encrypt(writer.factory, 'p1', 'too slow');
    for (const server of Object.values(servers)) server.resetCounts();
    servers[WEST].slow(TIMEOUT_MS * 5);
    const reader = setup({ metastore: writer.metastore, maxAttempts: 2 });
    const started = Date.now();
    expect(await decrypt(reader.factory, 'p1', drr)).toBe('too slow');
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS * 5);
    expect(servers[WEST].requests.Decrypt).toBe(2); // each attempt timed out
    expect(servers[EAST].requests.Decrypt).toBe(1);
    expect(reader.logger.lines).toEqual([expect.stringMatching(/failed in us-west-2: TimeoutError: .*requestTimeout/)]);
  });

  it('a slow preferred region costs one regionTimeoutMs per operation (no retries), not attempts × request timeout', async () => {
    const clock = new TestClock();
    // Slower than the budget, faster than the client's request timeout: the SDK alone would wait it out.
    servers[WEST].slow(1_500);
    const { factory, kms, metastore, logger, secrets } = setup({
      maxAttempts: 3,
      requestTimeoutMs: 5_000,
      kms: { regionTimeoutMs: 150, clock },
    });
    const drr = await encrypt(factory, 'p1', 'west is slow');
    // us-west-2: one GenerateDataKey and one Encrypt, each aborted at the budget and not retried.
    expect(calls()[WEST]).toEqual({ GenerateDataKey: 1, Encrypt: 1, Decrypt: 0 });
    expect(calls()[EAST]).toEqual({ GenerateDataKey: 1, Encrypt: 0, Decrypt: 0 });
    expect(envelopeOf(skRows(metastore)[0].record).kmsKeks.map((k) => k.region)).toEqual([EAST, EU]);
    expect(logger.lines).toEqual([
      expect.stringMatching(/^AWS KMS GenerateDataKey failed in us-west-2: KmsError: no answer within 150 ms \(regionTimeoutMs\)/),
      expect.stringMatching(/^AWS KMS Encrypt failed in us-west-2: KmsError: no answer within 150 ms/),
    ]);
    expect(await decrypt(factory, 'p1', drr)).toBe('west is slow');

    // For skipFailedRegionMs (60 s) us-west-2 goes last: the next system key is generated in us-east-1 at once.
    const sk = secrets.createRandom(32);
    await kms.encryptKey(sk);
    expect(calls()[WEST].GenerateDataKey).toBe(1);
    expect(calls()[EAST].GenerateDataKey).toBe(2);
    // After that, us-west-2 is tried first again (and is fast again).
    servers[WEST].clear();
    clock.advanceSeconds(61);
    await kms.encryptKey(sk);
    expect(calls()[WEST].GenerateDataKey).toBe(2);
    expect(calls()[EAST].GenerateDataKey).toBe(2);
    sk.close();
  });

  it('a cold decrypt skips a slow preferred region after one budget, and later decrypts go to the healthy one first', async () => {
    const writer = setup();
    const drr = await encrypt(writer.factory, 'p1', 'read me');
    for (const server of Object.values(servers)) server.resetCounts();
    servers[WEST].slow(1_500);
    const reader = setup({ metastore: writer.metastore, requestTimeoutMs: 5_000, kms: { regionTimeoutMs: 150 } });
    expect(await decrypt(reader.factory, 'p1', drr)).toBe('read me');
    expect(calls()[WEST].Decrypt).toBe(1);
    expect(calls()[EAST].Decrypt).toBe(1);
    // A second cold reader on the same AwsKms (another factory): us-east-1 first, us-west-2 not asked.
    const again = SessionFactory.create({ serviceName: 'service', productId: 'product', metastore: writer.metastore, kms: reader.kms, secrets: reader.secrets });
    expect(await decrypt(again, 'p1', drr)).toBe('read me');
    await again.close();
    expect(calls()[WEST].Decrypt).toBe(1);
    expect(calls()[EAST].Decrypt).toBe(2);
  });

  it('regionTimeoutMs and skipFailedRegionMs are checked', () => {
    const secrets = new SecretFactory();
    try {
      const regionMap = mapOf(WEST);
      expect(() => new AwsKms({ regionMap, clients: clients(regionMap), secrets, regionTimeoutMs: 0 })).toThrow(
        'AwsKms regionTimeoutMs must be a whole number of milliseconds from 1 to 600000, got 0',
      );
      expect(() => new AwsKms({ regionMap, clients: clients(regionMap), secrets, skipFailedRegionMs: -1 })).toThrow(/skipFailedRegionMs/);
    } finally {
      secrets.close();
    }
  });

  it('a non-retryable KMS error (AccessDenied) fails over at once, a 500 after the SDK\'s retries', async () => {
    const writer = setup();
    const drr = await encrypt(writer.factory, 'p1', 'errors');
    for (const server of Object.values(servers)) server.resetCounts();
    servers[WEST].failNext(Infinity, 'AccessDeniedException');
    servers[EAST].failNext(Infinity, 'KMSInternalException');
    const reader = setup({ metastore: writer.metastore, maxAttempts: 2 });
    expect(await decrypt(reader.factory, 'p1', drr)).toBe('errors');
    expect([servers[WEST], servers[EAST], servers[EU]].map((s) => s.requests.Decrypt)).toEqual([1, 2, 1]);
    expect(reader.logger.lines).toEqual([
      expect.stringMatching(/us-west-2: AccessDeniedException: /),
      expect.stringMatching(/us-east-1: KMSInternalException: /),
    ]);
  });

  // ---- envelope parsing -----------------------------------------------------------------------------------------

  it('a record that is not an envelope is an InvalidRecordError; an envelope without usable KEKs a KmsError', async () => {
    const { kms, secrets } = setup();
    const rejects = (bytes: string | Buffer) =>
      kms.decryptKey(typeof bytes === 'string' ? Buffer.from(bytes) : bytes, secrets).catch((err: unknown) => err);

    for (const bad of [
      'not json',
      Buffer.alloc(60, 1), // a static-KMS SK: AES-GCM bytes, not JSON
      '[]',
      '{"kmsKeks":[]}',
      '{"encryptedKey":"AAA","kmsKeks":[]}',
      '{"encryptedKey":"AA-_","kmsKeks":[]}',
      '{"encryptedKey":"AAAA","kmsKeks":{}}',
      '{"encryptedKey":"AAAA","kmsKeks":[{"arn":"x","encryptedKek":"AAAA"}]}',
    ]) {
      const error = await rejects(bad);
      expect(error).toBeInstanceOf(InvalidRecordError);
      expect((error as Error).message).toMatch(/^the system key record is not an AWS KMS envelope/);
    }
    const noKeks = await rejects('{"encryptedKey":"AAAA","kmsKeks":[{"region":"ap-south-1","arn":"x","encryptedKek":"AAAA"}]}');
    expect(noKeks).toBeInstanceOf(KmsError);
    expect((noKeks as Error).message).toMatch(
      /^decrypt failed in all regions: us-west-2: the envelope has no KEK for this region; .*\(the envelope has KEKs for: ap-south-1\)/,
    );
    expect(total()).toBe(0);
  });

  it('reads field names in any case, as Go does', async () => {
    const writer = setup();
    const drr = await encrypt(writer.factory, 'p1', 'Go is case-insensitive');
    const upper = new MemoryMetastore();
    for (const row of writer.metastore.rows()) {
      const record = row.id.startsWith('_SK_')
        ? {
            ...row.record,
            encryptedKey: Buffer.from(
              envelopeText(row.record)
                .replace('"encryptedKey"', '"EncryptedKey"')
                .replace('"kmsKeks"', '"KMSKeks"')
                .replace(/"region"/g, '"Region"'),
            ),
          }
        : row.record;
      await upper.store(row.id, row.created, record);
    }
    const reader = setup({ metastore: upper });
    expect(await decrypt(reader.factory, 'p1', drr)).toBe('Go is case-insensitive');
  });

  it('folds field names as Go does, beyond ASCII case: U+017F ſ matches s, U+212A (Kelvin) matches k', async () => {
    const writer = setup();
    const drr = await encrypt(writer.factory, 'p1', 'Go folds runes');
    const folded = new MemoryMetastore();
    for (const row of writer.metastore.rows()) {
      const record = row.id.startsWith('_SK_')
        ? {
            ...row.record,
            encryptedKey: Buffer.from(
              envelopeText(row.record).replace('"kmsKeks"', '"\u212Am\u017FKeks"').replace(/"arn"/g, '"ARN"'),
            ),
          }
        : row.record;
      await folded.store(row.id, row.created, record);
    }
    const reader = setup({ metastore: folded });
    expect(await decrypt(reader.factory, 'p1', drr)).toBe('Go folds runes');
  });

  it('an SK written by the static KMS is not readable with AWS KMS: InvalidRecordError, no KMS call', async () => {
    const metastore = new MemoryMetastore();
    const staticSecrets = new SecretFactory();
    const staticFactory = SessionFactory.create({
      serviceName: 'service',
      productId: 'product',
      metastore,
      kms: new StaticKms(TEST_DEBUG_STATIC_MASTER_KEY_HEX, staticSecrets),
      secrets: staticSecrets,
    });
    cleanups.push(async () => {
      await staticFactory.close();
      staticSecrets.close();
    });
    const drr = await encrypt(staticFactory, 'p1', 'static');
    const { factory } = setup({ metastore });
    await expect(decrypt(factory, 'p1', drr)).rejects.toThrow(InvalidRecordError);
    expect(total()).toBe(0);
  });

  // ---- configuration --------------------------------------------------------------------------------------------

  describe('configuration', () => {
    const secrets = new SecretFactory();
    afterAll(() => secrets.close());
    const build = (options: Partial<AwsKmsOptions>) => () =>
      new AwsKms({ regionMap: mapOf(WEST, EAST), clients: () => new KMSClient({ region: 'us-west-2' }), secrets, ...options });

    it('PreferredRegion is required with more than one region', () => {
      expect(build({})).toThrow(ConfigError);
      expect(build({})).toThrow(/^PreferredRegion \(preferredRegion\) must be set when RegionMap has more than one region \(us-west-2, us-east-1\)/);
    });

    it('PreferredRegion must be a region of RegionMap', () => {
      expect(build({ preferredRegion: EU })).toThrow(ConfigError);
      expect(build({ preferredRegion: EU })).toThrow(/"eu-west-1" is not a region of RegionMap \(us-west-2, us-east-1\)/);
    });

    it('RegionMap must not be empty, and its ARNs must be strings', () => {
      expect(build({ regionMap: {} })).toThrow(/^RegionMap \(regionMap\) is empty/);
      expect(build({ regionMap: { [WEST]: '' }, preferredRegion: WEST })).toThrow(ConfigError);
      expect(build({ regionMap: { [WEST]: 42 as unknown as string } })).toThrow(/must be a non-empty KMS key ARN string/);
      expect(() => kmsClientsFor({})).toThrow(ConfigError);
    });

    it('every region needs a client', () => {
      const only = new KMSClient({ region: WEST });
      cleanups.push(() => only.destroy());
      expect(build({ preferredRegion: WEST, clients: { [WEST]: only } })).toThrow(
        /^AwsKms has no KMSClient for region "us-east-1" of regionMap/,
      );
    });

    it('the preferred region comes first, then the rest in RegionMap order', () => {
      const kms = build({ regionMap: mapOf(WEST, EAST, EU), preferredRegion: EAST })();
      cleanups.push(() => kms.close());
      expect(kms.regions).toEqual([EAST, WEST, EU]);
      expect(kms.preferredRegion).toBe(EAST);
    });
  });

  it('used after its own close(), or closed while a call is in flight, fails with ClosedError', async () => {
    const secrets = new SecretFactory();
    cleanups.push(() => secrets.close());
    // Clients made by a function are the adapter's own: close() destroys them, cutting the call in flight.
    const kms = new AwsKms({
      regionMap: mapOf(WEST),
      preferredRegion: WEST,
      clients: (region) =>
        new KMSClient({ region, endpoint: servers[region].endpoint, credentials: CREDENTIALS, maxAttempts: 1 }),
      secrets,
    });
    const sk = secrets.createRandom(32);
    const wrapped = await kms.encryptKey(sk);
    servers[WEST].slow(200);
    const inFlight = kms.decryptKey(wrapped, secrets);
    await new Promise((resolve) => setTimeout(resolve, 50));
    kms.close();
    await expect(inFlight).rejects.toThrow(ClosedError);
    await expect(kms.encryptKey(sk)).rejects.toThrow(/the AwsKms was closed/);
    await expect(kms.decryptKey(wrapped, secrets)).rejects.toThrow(ClosedError);
    sk.close();
  });

  it('works with KMSClients the caller builds and injects', async () => {
    const regionMap = mapOf(WEST, EAST);
    const injected = Object.fromEntries(
      [WEST, EAST].map((region) => [
        region,
        new KMSClient({ region, endpoint: servers[region].endpoint, credentials: CREDENTIALS, maxAttempts: 1 }),
      ]),
    );
    cleanups.push(() => Object.values(injected).forEach((client) => client.destroy()));
    const secrets = new SecretFactory();
    cleanups.push(() => secrets.close());
    const kms = new AwsKms({ regionMap, preferredRegion: WEST, clients: injected, secrets });
    const systemKey = secrets.createRandom(32);
    cleanups.push(() => systemKey.close());
    const envelope = await kms.encryptKey(systemKey);
    const unwrapped = await kms.decryptKey(envelope, secrets);
    try {
      expect(unwrapped.withBytes((a) => systemKey.withBytes((b) => Buffer.compare(a, b)))).toBe(0);
    } finally {
      unwrapped.close();
    }
    expect(secrets.stats().factorySecretsInUse).toBe(1); // only the SK: the data keys were closed
  });
});

describe('AwsKms without @aws-sdk installed', () => {
  it('the module loads, and constructing the adapter is a ConfigError that says what to install', () => {
    const out = runWithoutAwsSdk(`
      const { AwsKms, kmsClientsFor } = require('./layer/src/appencryption/kms/aws-kms.ts');
      const { SecretFactory } = require('./layer/src/index.ts');
      const out = { sdkLoaded: Object.keys(require.cache).some((f) => f.includes('@aws-sdk')) };
      for (const [name, attempt] of [
        ['AwsKms', () => new AwsKms({ regionMap: { 'us-west-2': 'arn' }, clients: {}, secrets: new SecretFactory() })],
        ['kmsClientsFor', () => kmsClientsFor({ 'us-west-2': 'arn' })],
      ]) {
        try { attempt(); out[name] = 'no error'; } catch (err) { out[name] = err.name + ': ' + err.message; }
      }
      console.log(JSON.stringify(out));
    `);
    expect(out.sdkLoaded).toBe(false);
    for (const name of ['AwsKms', 'kmsClientsFor']) {
      expect(out[name]).toMatch(/^ConfigError: KMS "aws" needs the package @aws-sdk\/client-kms/);
    }
  });
});
