/**
 * SessionFactory.fromEnv and configFromEnv: the ASHERAH_* environment (ENV_NAMES, ENV_DEFAULTS) with the function's
 * defaults and Lambda rules, every error a ConfigError naming the variable; and a property over env maps: every
 * outcome is a factory or a ConfigError, and no request is ever sent (the endpoints are unreachable, and the SDK
 * clients' send is watched).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import fc from 'fast-check';
import {
  AwsKms,
  ConfigError,
  configFromEnv,
  DynamoDbMetastore,
  ENV_DEFAULTS,
  ENV_NAMES,
  partitionsToPrewarm,
  SessionFactory,
  SqliteMetastore,
  StaticKms,
} from '../../../layer/src/index';

const ARN_WEST = 'arn:aws:kms:us-west-2:111122223333:key/abc';
const ARN_EAST = 'arn:aws:kms:us-east-1:111122223333:key/def';
const HEX = '11'.repeat(32);
const UNREACHABLE = 'http://127.0.0.1:9';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'from-env-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const dev = () => ({ developmentDir: path.join(dir, '.local') });

describe('configFromEnv', () => {
  test('with nothing set and a developmentDir: SQLite and a development key generated there once, mode 0600', () => {
    const { config, staticKeySource } = configFromEnv({}, dev());
    expect(config).toMatchObject({
      ServiceName: ENV_DEFAULTS.serviceName,
      ProductID: ENV_DEFAULTS.productId,
      Metastore: 'sqlite',
      KMS: 'static',
      ConnectionString: path.join(dir, '.local', 'metastore.db'),
    });
    expect(staticKeySource).toBe('generated');
    const keyFile = path.join(dir, '.local', 'dev-master-key.hex');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyFile, 'utf8').trim()).toBe(config.StaticMasterKeyHex);
    expect(configFromEnv({}, dev()).config.StaticMasterKeyHex).toBe(config.StaticMasterKeyHex);
  });

  test('without a developmentDir nothing is written: the file and the key must be given', () => {
    const cwd = process.cwd();
    const before = existsSync(path.join(cwd, '.local'));
    expect(() => configFromEnv({ [ENV_NAMES.sqlitePath]: path.join(dir, 'k.db') })).toThrow(
      /ASHERAH_KMS is "static" and ASHERAH_STATIC_MASTER_KEY_HEX is unset: set it .*or pass developmentDir/,
    );
    expect(() => configFromEnv({ [ENV_NAMES.staticMasterKeyHex]: HEX })).toThrow(
      /ASHERAH_METASTORE is "sqlite" and ASHERAH_SQLITE_PATH is unset/,
    );
    expect(existsSync(path.join(cwd, '.local'))).toBe(before);
    expect(readdirSync(dir)).toEqual([]);
    const given = configFromEnv({ [ENV_NAMES.sqlitePath]: path.join(dir, 'k.db'), [ENV_NAMES.staticMasterKeyHex]: HEX });
    expect(given).toEqual({
      config: expect.objectContaining({ ConnectionString: path.join(dir, 'k.db'), StaticMasterKeyHex: HEX }),
      staticKeySource: 'env',
    });
  });

  test('names that can make key ids collide are refused, naming the variable and the opt-in', () => {
    expect(() => configFromEnv({ ASHERAH_SERVICE_NAME: 'eu_billing' }, dev())).toThrow(ConfigError);
    expect(() => configFromEnv({ ASHERAH_SERVICE_NAME: 'eu_billing' }, dev())).toThrow(
      /ASHERAH_SERVICE_NAME "eu_billing" contains "_".*ASHERAH_LEGACY_KEY_ID_NAMES=true/,
    );
    expect(() => configFromEnv({ ASHERAH_PRODUCT_ID: 'eu-west-1' }, dev())).toThrow(/ASHERAH_PRODUCT_ID "eu-west-1" has the shape/);
    expect(() => configFromEnv({ ASHERAH_PRODUCT_ID: 'a\ud800' }, dev())).toThrow(/ASHERAH_PRODUCT_ID must be well-formed Unicode/);
    expect(configFromEnv({ ASHERAH_SERVICE_NAME: 'eu_billing', ASHERAH_LEGACY_KEY_ID_NAMES: 'true' }, dev()).config).toMatchObject({
      ServiceName: 'eu_billing',
      LegacyKeyIdNames: true,
    });
  });

  test('inside Lambda the defaults are DynamoDB and AWS KMS, and the key ARN is required', () => {
    const env = { AWS_LAMBDA_FUNCTION_NAME: 'f', AWS_REGION: 'us-west-2' };
    expect(() => configFromEnv(env, dev())).toThrow(/set ASHERAH_KMS_KEY_ARN/);
    expect(configFromEnv({ ...env, ASHERAH_KMS_KEY_ARN: ARN_WEST }, dev()).config).toEqual({
      ServiceName: ENV_DEFAULTS.serviceName,
      ProductID: ENV_DEFAULTS.productId,
      Metastore: 'dynamodb',
      KMS: 'aws',
      RegionMap: { 'us-west-2': ARN_WEST },
      PreferredRegion: 'us-west-2',
      DynamoDBTableName: ENV_DEFAULTS.tableName,
      DynamoDBRegion: 'us-west-2',
      EnableRegionSuffix: false,
      LegacyKeyIdNames: false,
      EnableSessionCaching: false,
    });
    expect(readdirSync(dir)).toEqual([]); // developmentDir is never used inside Lambda
  });

  test('a region map needs a preferred region, taken from AWS_REGION when it is in the map', () => {
    const map = JSON.stringify({ 'us-west-2': ARN_WEST, 'us-east-1': ARN_EAST });
    const base = { ASHERAH_KMS: 'aws', ASHERAH_REGION_MAP: map, ASHERAH_STATIC_MASTER_KEY_HEX: HEX, ASHERAH_SQLITE_PATH: 'x' };
    expect(() => configFromEnv(base)).toThrow(
      'ASHERAH_PREFERRED_REGION is required when ASHERAH_REGION_MAP has more than one region (us-west-2, us-east-1), ' +
        'unless the function runs in one of them (AWS_REGION)',
    );
    expect(configFromEnv({ ...base, AWS_REGION: 'us-east-1' }).config.PreferredRegion).toBe('us-east-1');
    expect(configFromEnv({ ...base, AWS_REGION: 'eu-west-1', ASHERAH_PREFERRED_REGION: 'us-west-2' }).config.PreferredRegion).toBe('us-west-2');
    expect(() => configFromEnv({ ...base, ASHERAH_PREFERRED_REGION: 'eu-west-1' })).toThrow(
      'ASHERAH_PREFERRED_REGION "eu-west-1" is not a region of ASHERAH_REGION_MAP (us-west-2, us-east-1)',
    );
    expect(() => configFromEnv({ ASHERAH_KMS: 'aws', ASHERAH_KMS_KEY_ARN: ARN_WEST, ASHERAH_PREFERRED_REGION: 'us-east-1', ASHERAH_SQLITE_PATH: 'x' })).toThrow(
      'ASHERAH_PREFERRED_REGION "us-east-1" is not a region of ASHERAH_KMS_KEY_ARN (us-west-2)',
    );
  });

  test('ASHERAH_KMS_ENDPOINT and ASHERAH_DYNAMODB_ENDPOINT reach the clients; ASHERAH_REGION_SUFFIX needs the region', () => {
    const env = { AWS_LAMBDA_FUNCTION_NAME: 'f', ASHERAH_KMS_KEY_ARN: ARN_WEST, ASHERAH_KMS_ENDPOINT: UNREACHABLE, ASHERAH_DYNAMODB_ENDPOINT: UNREACHABLE };
    expect(configFromEnv(env)).toMatchObject({ kmsEndpoint: UNREACHABLE, config: { DynamoDBEndpoint: UNREACHABLE } });
    expect(configFromEnv(env).config).not.toHaveProperty('DynamoDBRegion'); // the SDK's own (a profile)
    expect(() => configFromEnv({ ...env, ASHERAH_REGION_SUFFIX: 'true' })).toThrow(
      /ASHERAH_REGION_SUFFIX=true suffixes key ids with the function's region: set AWS_REGION/,
    );
    expect(() => configFromEnv({ ...env, ASHERAH_REGION_SUFFIX: 'true', AWS_REGION: 'moon' })).toThrow(
      /the region suffix \(AWS_REGION, with ASHERAH_REGION_SUFFIX\) "moon" is not an AWS region name/,
    );
    expect(configFromEnv({ ...env, ASHERAH_REGION_SUFFIX: 'true', AWS_DEFAULT_REGION: 'us-west-2' }).config).toMatchObject({
      EnableRegionSuffix: true,
      DynamoDBRegion: 'us-west-2',
    });
  });

  test.each([
    [{ ASHERAH_METASTORE: 'mysql' }, /ASHERAH_METASTORE must be "sqlite" or "dynamodb"/],
    [{ ASHERAH_KMS: 'vault' }, /ASHERAH_KMS must be "static" or "aws"/],
    [{ ASHERAH_REGION_SUFFIX: 'yes' }, /ASHERAH_REGION_SUFFIX must be "true" or "false"/],
    [{ ASHERAH_KMS: 'aws', ASHERAH_REGION_MAP: '{bad' }, /ASHERAH_REGION_MAP must be JSON/],
    [{ ASHERAH_KMS: 'aws', ASHERAH_REGION_MAP: '{"us-west-2": 5}' }, /must be a key ARN/],
    [{ ASHERAH_KMS: 'aws', ASHERAH_REGION_MAP: '{"us-west-2": "alias/x"}' }, /ASHERAH_REGION_MAP entry "us-west-2" must be a key ARN/],
    [{ ASHERAH_KMS: 'aws', ASHERAH_REGION_MAP: '{}' }, /^ASHERAH_REGION_MAP is empty/],
    [{ ASHERAH_KMS: 'aws', ASHERAH_REGION_MAP: '[1]' }, /^ASHERAH_REGION_MAP must be an object of region → KMS key ARN/],
    [{ ASHERAH_KMS: 'aws', ASHERAH_REGION_MAP: `{"": "${ARN_WEST}"}` }, /^ASHERAH_REGION_MAP has an empty region name/],
    [{ ASHERAH_KMS: 'aws', ASHERAH_KMS_KEY_ARN: ARN_WEST, ASHERAH_REGION_MAP: '{}' }, /non-empty JSON object|not both/],
    [{ ASHERAH_KMS: 'aws', ASHERAH_KMS_KEY_ARN: 'alias/x' }, /ASHERAH_KMS_KEY_ARN must be a full key ARN/],
    [{ AWS_LAMBDA_FUNCTION_NAME: 'f', ASHERAH_KMS: 'static' }, /for local development only/],
    [{ AWS_LAMBDA_FUNCTION_NAME: 'f', ASHERAH_KMS: 'static', ASHERAH_ALLOW_STATIC_KMS: 'true' }, /inside Lambda: set ASHERAH_STATIC_MASTER_KEY_HEX/],
    [{ AWS_LAMBDA_FUNCTION_NAME: 'f', ASHERAH_KMS_KEY_ARN: ARN_WEST, ASHERAH_METASTORE: 'sqlite' }, /"sqlite" inside Lambda: set ASHERAH_SQLITE_PATH/],
  ])('%j is a ConfigError that names the variable', (env, message) => {
    expect(() => configFromEnv(env, dev())).toThrow(ConfigError);
    expect(() => configFromEnv(env, dev())).toThrow(message);
  });

  test('ASHERAH_PREWARM_PARTITIONS: comma-separated, blanks dropped', () => {
    expect(partitionsToPrewarm({ ASHERAH_PREWARM_PARTITIONS: 'a, b,,c ' })).toEqual(['a', 'b', 'c']);
    expect(partitionsToPrewarm({})).toEqual([]);
  });
});

describe('SessionFactory.fromEnv', () => {
  test('builds what the environment names, warns about a static key, and round-trips', async () => {
    const warnings: unknown[][] = [];
    const factory = SessionFactory.fromEnv({}, { ...dev(), logger: { warn: (...args) => warnings.push(args) } });
    try {
      expect(factory.adapters.kms).toBeInstanceOf(StaticKms);
      expect(factory.adapters.metastore).toBeInstanceOf(SqliteMetastore);
      expect(warnings).toEqual([['static master key: for development only, never for production data', { source: 'generated' }]]);
      const session = factory.getSession('p');
      const drr = await session.encrypt('hello');
      expect(drr.key.parentKeyMeta?.keyId).toBe(`_IK_p_${ENV_DEFAULTS.serviceName}_${ENV_DEFAULTS.productId}`);
      expect((await session.decrypt(drr)).toString()).toBe('hello');
    } finally {
      await factory.close();
    }
    expect((factory.adapters.kms as StaticKms).isClosed).toBe(true);
  });

  test('inside Lambda: DynamoDB and AWS KMS clients made for the environment, closed with the factory', async () => {
    const env = {
      AWS_LAMBDA_FUNCTION_NAME: 'f',
      AWS_REGION: 'us-east-1',
      ASHERAH_REGION_MAP: JSON.stringify({ 'us-west-2': ARN_WEST, 'us-east-1': ARN_EAST }),
      ASHERAH_KMS_ENDPOINT: UNREACHABLE,
      ASHERAH_DYNAMODB_ENDPOINT: UNREACHABLE,
      ASHERAH_METASTORE_TABLE_NAME: 'keys',
    };
    const destroyKms = jest.spyOn(KMSClient.prototype, 'destroy');
    const destroyDynamo = jest.spyOn(DynamoDBClient.prototype, 'destroy');
    try {
      const factory = SessionFactory.fromEnv(env);
      const kms = factory.adapters.kms as AwsKms;
      expect(kms).toBeInstanceOf(AwsKms);
      expect(kms.regions).toEqual(['us-east-1', 'us-west-2']); // AWS_REGION is in the map: it goes first
      expect((factory.adapters.metastore as DynamoDbMetastore).tableName).toBe('keys');
      expect(destroyKms).not.toHaveBeenCalled();
      await factory.close();
      expect(destroyKms).toHaveBeenCalledTimes(2);
      expect(destroyDynamo).toHaveBeenCalledTimes(1);
    } finally {
      destroyKms.mockRestore();
      destroyDynamo.mockRestore();
    }
  });

  test('an error after some adapters were made closes them', () => {
    const destroyKms = jest.spyOn(KMSClient.prototype, 'destroy');
    try {
      const env = { AWS_LAMBDA_FUNCTION_NAME: 'f', AWS_REGION: 'us-west-2', ASHERAH_KMS_KEY_ARN: ARN_WEST, ASHERAH_METASTORE_TABLE_NAME: 'a' };
      expect(() => SessionFactory.fromEnv(env)).toThrow(/DynamoDbMetastore tableName must be a DynamoDB table name/);
      expect(destroyKms).toHaveBeenCalledTimes(1);
    } finally {
      destroyKms.mockRestore();
    }
  });
});

// ---- the property ---------------------------------------------------------------------------------------------------

describe('fromEnv over env maps (no request is ever sent)', () => {
  test('every outcome is a factory or a ConfigError; inside Lambda a static key needs ASHERAH_ALLOW_STATIC_KMS', async () => {
    const sqlite = path.join(dir, 'property.db');
    const some = <T>(...values: T[]) => fc.option(fc.constantFrom(...values), { nil: undefined, freq: 3 });
    const name = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom('svc', 'billing-v2') },
      { weight: 1, arbitrary: fc.constantFrom('eu_billing', 'us-west-2', 'a\ud800', '') },
      { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
    );
    const envArb = fc.record(
      {
        AWS_LAMBDA_FUNCTION_NAME: some('f'),
        AWS_REGION: fc.option(fc.oneof(fc.constantFrom('us-west-2', 'us-east-1', 'moon', ''), fc.string({ maxLength: 4 })), { nil: undefined }),
        AWS_DEFAULT_REGION: some('us-east-1'),
        [ENV_NAMES.metastore]: some('sqlite', 'dynamodb', 'mysql', 'DynamoDB', ''),
        [ENV_NAMES.kms]: some('static', 'aws', 'vault', ''),
        [ENV_NAMES.sqlitePath]: some(sqlite, ''),
        [ENV_NAMES.staticMasterKeyHex]: some(HEX, 'abc', '', '0'.repeat(64)),
        [ENV_NAMES.allowStaticKms]: some('true', 'TRUE'),
        [ENV_NAMES.kmsKeyArn]: some(ARN_WEST, ARN_EAST, ARN_WEST, ARN_EAST, 'alias/x', 'arn:', 'arn:aws:kms::1:key/x'),
        [ENV_NAMES.regionMap]: some(
          JSON.stringify({ 'us-west-2': ARN_WEST }),
          JSON.stringify({ 'us-west-2': ARN_WEST, 'us-east-1': ARN_EAST }),
          '{bad', '{}', '[]', 'null', '5', `{"": "${ARN_WEST}"}`, '{"us-west-2": 5}', `{"__proto__": "${ARN_WEST}"}`,
          `{"constructor": "${ARN_WEST}"}`, `{"attacker.example/#": "${ARN_WEST}"}`,
        ),
        [ENV_NAMES.preferredRegion]: some('us-west-2', 'eu-west-1', ''),
        [ENV_NAMES.regionSuffix]: some('true', 'false', 'yes'),
        [ENV_NAMES.legacyKeyIdNames]: some('true', 'false', '1'),
        [ENV_NAMES.serviceName]: fc.option(name, { nil: undefined, freq: 2 }),
        [ENV_NAMES.productId]: fc.option(name, { nil: undefined, freq: 2 }),
        [ENV_NAMES.tableName]: some('EncryptionKey', 'a', 'x'.repeat(256), 'my.table-1'),
        [ENV_NAMES.dynamoDbEndpoint]: fc.constantFrom(UNREACHABLE, 'not a url'),
        [ENV_NAMES.kmsEndpoint]: fc.constantFrom(UNREACHABLE),
        [ENV_NAMES.prewarmPartitions]: some('a,b'),
        [ENV_NAMES.dynamoDbRequestTimeoutMs]: fc.option(fc.constantFrom('100', '0', '2s', '999999999'), { nil: undefined, freq: 2 }),
        [ENV_NAMES.kmsMaxAttempts]: fc.option(fc.constantFrom('1', '11', '-1'), { nil: undefined, freq: 2 }),
      },
      { requiredKeys: [] },
    );
    const withDevDir = fc.boolean();
    // The map itself may be hostile: a Proxy whose traps throw, or a getter that throws.
    const wrapping = fc.constantFrom('plain', 'plain', 'plain', 'proxy', 'getter');
    const wrap = (env: Record<string, string | undefined>, how: string): Record<string, string | undefined> => {
      if (how === 'proxy') {
        return new Proxy(env, {
          get: () => {
            throw new Error('trap');
          },
        });
      }
      if (how === 'getter') {
        return Object.defineProperty({ ...env }, ENV_NAMES.metastore, {
          enumerable: true,
          get: () => {
            throw new Error('getter');
          },
        });
      }
      return env;
    };
    const sends = [jest.spyOn(KMSClient.prototype, 'send'), jest.spyOn(DynamoDBClient.prototype, 'send')];
    const devDir = path.join(dir, 'dev');
    mkdirSync(devDir);
    const built = { total: 0, aws: 0, dynamodb: 0 };
    try {
      await fc.assert(
        fc.asyncProperty(envArb, withDevDir, wrapping, async (env, useDevDir, how) => {
          let factory: SessionFactory;
          try {
            factory = SessionFactory.fromEnv(wrap(env, how), useDevDir ? { developmentDir: devDir } : {});
          } catch (err) {
            if (!(err instanceof ConfigError)) throw new Error(`not a ConfigError: ${String(err)}`, { cause: err });
            return;
          }
          if (how !== 'plain') throw new Error(`a hostile env map (${how}) built a factory`);
          built.total++;
          if (factory.adapters.kms instanceof AwsKms) built.aws++;
          if (factory.adapters.metastore instanceof DynamoDbMetastore) built.dynamodb++;
          try {
            const inLambda = Boolean(env.AWS_LAMBDA_FUNCTION_NAME);
            if (inLambda && env[ENV_NAMES.allowStaticKms] !== 'true') expect(factory.adapters.kms).toBeInstanceOf(AwsKms);
          } finally {
            await factory.close();
          }
        }),
        { seed: 20_260_310, numRuns: 1000 },
      );
      for (const send of sends) expect(send).not.toHaveBeenCalled();
      // The generators reach the builder with each adapter, not only the parser's errors.
      expect(built.total).toBeGreaterThan(20);
      expect(built.aws).toBeGreaterThan(5);
      expect(built.dynamodb).toBeGreaterThan(5);
    } finally {
      for (const send of sends) send.mockRestore();
    }
  });
});
