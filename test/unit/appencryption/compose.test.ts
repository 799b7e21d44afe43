/**
 * SessionFactory.fromConfig, the one builder (compose.ts): what it makes, what its close() closes (what it made,
 * never what was passed in), one logger and one metrics hook for every part, setup() built on it, and the one
 * region-map validation shared by AsherahConfig, the environment and AwsKms's options. No request leaves the
 * process: AWS clients are fakes, or real ones that are never used.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import {
  AwsKms,
  checkRegionMap,
  ClosedError,
  ConfigError,
  DynamoDbMetastore,
  getSessionFactory,
  MemoryMetastore,
  SecretFactory,
  SessionFactory,
  setup,
  shutdown,
  shutdownAsync,
  SqliteMetastore,
  StaticKms,
  type AsherahConfig,
} from '../../../layer/src/index';
// Internals of the one region-map check, tested here by path on purpose.
import { REGION_MAP_SOURCES, regionOrder } from '../../../layer/src/appencryption/config/region-map';

const BASE: AsherahConfig = { ServiceName: 'service', ProductID: 'product', Metastore: 'memory', KMS: 'test-debug-static' };
const WEST = 'us-west-2';
const EAST = 'us-east-1';
const ARNS = { [WEST]: 'arn:aws:kms:us-west-2:111122223333:key/w', [EAST]: 'arn:aws:kms:us-east-1:111122223333:key/e' };
const AWS: AsherahConfig = {
  ...BASE,
  Metastore: 'dynamodb',
  DynamoDBRegion: WEST,
  DynamoDBEndpoint: 'http://127.0.0.1:9',
  KMS: 'aws',
  RegionMap: ARNS,
  PreferredRegion: WEST,
};

type Command = { constructor: { name: string }; input: Record<string, Uint8Array | string> };

/** A KMSClient stand-in: the "KEK" is the data key itself, which is all AwsKms needs to round-trip. */
function fakeKmsClient(options: { failing?: boolean } = {}) {
  const send = jest.fn(async (command: Command) => {
    if (options.failing) throw Object.assign(new Error('region down'), { name: 'KMSInternalException' });
    switch (command.constructor.name) {
      case 'GenerateDataKeyCommand': {
        const key = randomBytes(32);
        return { Plaintext: new Uint8Array(key), CiphertextBlob: new Uint8Array(key), KeyId: command.input.KeyId };
      }
      case 'EncryptCommand':
        return { CiphertextBlob: new Uint8Array(command.input.Plaintext as Uint8Array) };
      default:
        return { Plaintext: new Uint8Array(command.input.CiphertextBlob as Uint8Array) };
    }
  });
  return { send, destroy: jest.fn() } as unknown as KMSClient & { send: jest.Mock; destroy: jest.Mock };
}

describe('SessionFactory.fromConfig', () => {
  test('builds the adapters the config names, from an object or its JSON text, and round-trips', async () => {
    for (const config of [BASE, JSON.stringify(BASE)]) {
      const factory = SessionFactory.fromConfig(config);
      try {
        expect(factory.adapters.metastore).toBeInstanceOf(MemoryMetastore);
        expect(factory.adapters.kms).toBeInstanceOf(StaticKms);
        const session = factory.getSession('p');
        expect((await session.decrypt(await session.encrypt('x'))).toString()).toBe('x');
      } finally {
        await factory.close();
      }
      expect((factory.adapters.kms as StaticKms).isClosed).toBe(true);
      expect(() => factory.getSession('p')).toThrow(ClosedError);
    }
  });

  test('close() closes what it made: SDK clients, KMS, SQLite, SecretFactory', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'compose-'));
    const destroyKms = jest.spyOn(KMSClient.prototype, 'destroy');
    const destroyDynamo = jest.spyOn(DynamoDBClient.prototype, 'destroy');
    const closeSecrets = jest.spyOn(SecretFactory.prototype, 'close');
    try {
      const aws = SessionFactory.fromConfig(AWS);
      expect(aws.adapters.kms).toBeInstanceOf(AwsKms);
      expect(aws.adapters.metastore).toBeInstanceOf(DynamoDbMetastore);
      expect([destroyKms, destroyDynamo, closeSecrets].map((spy) => spy.mock.calls.length)).toEqual([0, 0, 0]);
      shutdownLike(aws); // close({ timeoutMs: 0 }): everything is closed before it returns
      expect([destroyKms, destroyDynamo, closeSecrets].map((spy) => spy.mock.calls.length)).toEqual([2, 1, 1]);
      expect((aws.adapters.kms as AwsKms).isClosed).toBe(true);

      const sqlite = SessionFactory.fromConfig({ ...BASE, Metastore: 'sqlite', ConnectionString: path.join(dir, 'k.db') });
      await sqlite.getSession('p').encrypt('x');
      await sqlite.close();
      await expect((sqlite.adapters.metastore as SqliteMetastore).loadLatest('x')).rejects.toThrow(/is closed/);
    } finally {
      destroyKms.mockRestore();
      destroyDynamo.mockRestore();
      closeSecrets.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('close() leaves what was passed in open: clients (a map or a function of the region) and a SecretFactory', async () => {
    const dynamodb = new DynamoDBClient({ region: WEST, endpoint: 'http://127.0.0.1:9' });
    const destroyDynamo = jest.spyOn(dynamodb, 'destroy');
    const secrets = new SecretFactory();
    const closeSecrets = jest.spyOn(secrets, 'close');
    try {
      const kms = { [WEST]: fakeKmsClient(), [EAST]: fakeKmsClient() };
      const byMap = SessionFactory.fromConfig(AWS, { clients: { dynamodb, kms }, secrets });
      await byMap.close();
      const made = jest.fn((region: string) => kms[region as keyof typeof kms]);
      const byFunction = SessionFactory.fromConfig(AWS, { clients: { dynamodb, kms: made }, secrets });
      await byFunction.close();
      expect(made.mock.calls).toEqual([[WEST], [EAST]]); // once per region, in priority order
      for (const client of Object.values(kms)) expect(client.destroy).not.toHaveBeenCalled();
      expect(destroyDynamo).not.toHaveBeenCalled();
      expect(closeSecrets).not.toHaveBeenCalled();
      expect(() => secrets.createFrom(Buffer.alloc(32)).close()).not.toThrow(); // still open
    } finally {
      secrets.close();
      dynamodb.destroy();
    }
  });

  test('a build that fails part-way closes what it had made', () => {
    const destroyKms = jest.spyOn(KMSClient.prototype, 'destroy');
    const closeSecrets = jest.spyOn(SecretFactory.prototype, 'close');
    try {
      expect(() => SessionFactory.fromConfig({ ...AWS, Metastore: 'sqlite' })).toThrow(/ConnectionString is required/);
      expect(destroyKms).toHaveBeenCalledTimes(2);
      expect(closeSecrets).toHaveBeenCalledTimes(1);
      // The KMS is built first, as setup() always did, so its error comes before the metastore's.
      expect(() => SessionFactory.fromConfig({ ...AWS, Metastore: 'rdbms' as 'memory', RegionMap: {} })).toThrow(
        /^config key RegionMap is empty/,
      );
    } finally {
      destroyKms.mockRestore();
      closeSecrets.mockRestore();
    }
  });

  test('one logger and one metrics hook reach both the factory and AwsKms', async () => {
    const warnings: string[] = [];
    const counts = new Map<string, number>();
    const down = fakeKmsClient({ failing: true });
    const factory = SessionFactory.fromConfig(
      { ...AWS, Metastore: 'memory' },
      {
        clients: { kms: { [WEST]: fakeKmsClient(), [EAST]: down } },
        logger: { warn: (message) => warnings.push(message) },
        metrics: { increment: (name, by) => counts.set(name, (counts.get(name) ?? 0) + by) },
      },
    );
    try {
      const session = factory.getSession('p');
      expect((await session.decrypt(await session.encrypt('x'))).toString()).toBe('x');
    } finally {
      await factory.close();
    }
    expect(Object.fromEntries(counts)).toMatchObject({
      'kms.encryptKey': 1,
      'kms.aws.generatedatakey.us-west-2': 1,
      'kms.aws.encrypt.us-east-1': 1,
      'kms.aws.encrypt.us-east-1.error': 1,
      encrypt: 1,
      decrypt: 1,
    });
    expect(warnings).toEqual([expect.stringMatching(/^AWS KMS Encrypt failed in us-east-1: KMSInternalException: region down/)]);
  });

  test('options must be an object; options.secrets a SecretFactory or its options', () => {
    expect(() => SessionFactory.fromConfig(BASE, 5 as never)).toThrow(ConfigError);
    expect(() => SessionFactory.fromConfig(BASE, 5 as never)).toThrow(/SessionFactory.fromConfig options must be an object/);
    expect(() => SessionFactory.fromEnv({}, null as never)).toThrow(/SessionFactory.fromEnv options must be an object/);
    expect(() => SessionFactory.fromConfig(BASE, { secrets: 'x' as never })).toThrow(/options.secrets must be a SecretFactory/);
    expect(() => SessionFactory.fromConfig(BASE, { secrets: { mlock: 'never' as 'strict' } })).toThrow(/mlock must be/);
  });
});

describe('setup() is fromConfig', () => {
  afterEach(() => shutdown());

  test('setup builds with SessionFactory.fromConfig; shutdown closes that factory and all it made', async () => {
    const fromConfig = jest.spyOn(SessionFactory, 'fromConfig');
    try {
      setup(BASE);
      expect(fromConfig).toHaveBeenCalledWith(BASE);
      const factory = getSessionFactory()!;
      expect(factory).toBe(fromConfig.mock.results[0].value);
      shutdown();
      expect(factory.isClosed).toBe(true);
      expect((factory.adapters.kms as StaticKms).isClosed).toBe(true);
    } finally {
      fromConfig.mockRestore();
    }
  });

  test('shutdownAsync with a bad timeout still closes the factory it drops', async () => {
    setup(BASE);
    const factory = getSessionFactory()!;
    await expect(shutdownAsync({ timeoutMs: -1 })).rejects.toThrow(/timeoutMs must be a non-negative number/);
    expect(factory.isClosed).toBe(true);
    expect((factory.adapters.kms as StaticKms).isClosed).toBe(true);
    expect(getSessionFactory()).toBeUndefined();
  });
});

describe('one region-map validation, naming where the map came from', () => {
  const two = { [WEST]: ARNS[WEST], [EAST]: ARNS[EAST] };

  test.each([
    ['config', REGION_MAP_SOURCES.config, 'config key RegionMap', 'config key PreferredRegion', 'RegionMap'],
    ['env', REGION_MAP_SOURCES.env, 'ASHERAH_REGION_MAP', 'ASHERAH_PREFERRED_REGION', 'ASHERAH_REGION_MAP'],
    ['option', REGION_MAP_SOURCES.option, 'RegionMap (regionMap)', 'PreferredRegion (preferredRegion)', 'RegionMap'],
  ])('%s', (_, source, map, preferred, regions) => {
    expect(() => checkRegionMap([], source)).toThrow(`${map} must be an object of region → KMS key ARN`);
    expect(() => checkRegionMap({}, source)).toThrow(`${map} is empty; give at least one region → KMS key ARN`);
    expect(() => checkRegionMap({ ' ': ARNS[WEST] }, source)).toThrow(`${map} has an empty region name`);
    expect(() => checkRegionMap({ [WEST]: '' }, source)).toThrow(new RegExp(`^${escape(map)} entry "us-west-2" must be a`));
    expect(() => regionOrder(two, undefined, source)).toThrow(
      `${preferred} must be set when ${regions} has more than one region (us-west-2, us-east-1)`,
    );
    expect(() => regionOrder(two, 'eu-west-1', source)).toThrow(`${preferred} "eu-west-1" is not a region of ${regions} (us-west-2, us-east-1)`);
    expect(regionOrder(two, EAST, source)).toEqual([EAST, WEST]);
    expect(regionOrder({ [WEST]: ARNS[WEST] }, undefined, source)).toEqual([WEST]);
  });

  test('the environment takes ARNs only; the config and the SDK also take what KMS takes as a KeyId', () => {
    expect(() => checkRegionMap({ [WEST]: 'alias/asherah' }, REGION_MAP_SOURCES.env)).toThrow(
      'ASHERAH_REGION_MAP entry "us-west-2" must be a key ARN (arn:aws:kms:<region>:<account>:key/<id>)',
    );
    expect(checkRegionMap({ [WEST]: 'alias/asherah' }, REGION_MAP_SOURCES.config)).toEqual([WEST]);
  });

  test('setup(), fromEnv and AwsKms each report with their own names', () => {
    const secrets = new SecretFactory();
    try {
      expect(() => setup({ ...AWS, PreferredRegion: undefined })).toThrow(
        'config key PreferredRegion must be set when RegionMap has more than one region (us-west-2, us-east-1)',
      );
      expect(() => setup({ ...AWS, RegionMap: { [WEST]: 5 as unknown as string } })).toThrow(
        'config key RegionMap entry "us-west-2" must be a non-empty KMS key ARN string',
      );
      expect(() => SessionFactory.fromEnv({ ASHERAH_KMS: 'aws', ASHERAH_REGION_MAP: '{}' })).toThrow(/^ASHERAH_REGION_MAP is empty/);
      expect(() => new AwsKms({ regionMap: {}, clients: {}, secrets })).toThrow(/^RegionMap \(regionMap\) is empty/);
      expect(() => regionOrder(two, 5n)).toThrow('PreferredRegion (preferredRegion) 5n is not a region of RegionMap');
    } finally {
      secrets.close();
    }
  });
});

describe('region names: only AWS region names reach a client', () => {
  const NOT_REGIONS = ['attacker.example/#', '__proto__', 'constructor', 'local', 'us-west-2 '];

  test('a RegionMap key that is not a region name is a ConfigError, from the config, the environment and AwsKms', () => {
    const secrets = new SecretFactory();
    try {
      for (const name of NOT_REGIONS) {
        // JSON text: the only way to make an own "__proto__" key, as a config file or the environment would.
        const mapText = `{${JSON.stringify(name)}: "arn:aws:kms:us-west-2:111122223333:key/w"}`;
        const regionMap = JSON.parse(mapText) as Record<string, string>;
        const message = `is not an AWS region name (e.g. us-west-2)`;
        expect(() => SessionFactory.fromConfig({ ...BASE, KMS: 'aws', RegionMap: regionMap })).toThrow(
          `config key RegionMap key ${JSON.stringify(name)} ${message}`,
        );
        expect(() => SessionFactory.fromEnv({ ASHERAH_KMS: 'aws', ASHERAH_REGION_MAP: mapText })).toThrow(
          `ASHERAH_REGION_MAP key ${JSON.stringify(name)} ${message}`,
        );
        expect(() => new AwsKms({ regionMap, clients: {}, secrets })).toThrow(`RegionMap (regionMap) key ${JSON.stringify(name)} ${message}`);
      }
    } finally {
      secrets.close();
    }
  });

  test('DynamoDBRegion must be a region name unless DynamoDBEndpoint points elsewhere (DynamoDB Local takes any)', async () => {
    for (const name of NOT_REGIONS) {
      expect(() => SessionFactory.fromConfig({ ...BASE, Metastore: 'dynamodb', DynamoDBRegion: name })).toThrow(
        `config key DynamoDBRegion ${JSON.stringify(name)} is not an AWS region name (e.g. us-west-2)`,
      );
    }
    const local = SessionFactory.fromConfig({ ...BASE, Metastore: 'dynamodb', DynamoDBRegion: 'local', DynamoDBEndpoint: 'http://127.0.0.1:9' });
    await local.close();
  });

  test('ASHERAH_REGION_SUFFIX=true works in the European Sovereign Cloud (eusc-de-east-1)', async () => {
    const factory = SessionFactory.fromEnv({
      AWS_REGION: 'eusc-de-east-1',
      ASHERAH_METASTORE: 'dynamodb',
      ASHERAH_REGION_SUFFIX: 'true',
      ASHERAH_KMS: 'aws',
      ASHERAH_KMS_KEY_ARN: 'arn:aws-eusc:kms:eusc-de-east-1:111122223333:key/k',
    });
    expect((factory.adapters.metastore as DynamoDbMetastore).regionSuffix()).toBe('eusc-de-east-1');
    await factory.close();
  });
});

test('an all-zero static master key is refused, from the config, the environment and StaticKms', () => {
  const zero = '0'.repeat(64);
  const message = 'StaticMasterKeyHex is all zeros, which is no secret; generate a key with `openssl rand -hex 32`';
  expect(() => SessionFactory.fromConfig({ ...BASE, KMS: 'static', StaticMasterKeyHex: zero })).toThrow(new ConfigError(message));
  expect(() => SessionFactory.fromEnv({ ASHERAH_SQLITE_PATH: ':memory:', ASHERAH_STATIC_MASTER_KEY_HEX: zero })).toThrow(message);
  const secrets = new SecretFactory();
  try {
    expect(() => new StaticKms(zero, secrets)).toThrow(message);
    expect(secrets.stats().factorySecretsInUse).toBe(0);
  } finally {
    secrets.close();
  }
});

function shutdownLike(factory: SessionFactory): void {
  void factory.close({ timeoutMs: 0 });
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
