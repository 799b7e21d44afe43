/**
 * The composition root: the one way from configuration to a SessionFactory, used by setup(), the sample function
 * and users alike. SessionFactory.fromConfig takes an AsherahConfig; SessionFactory.fromEnv reads the ASHERAH_*
 * environment into one (env-config.ts) and builds through the same code, so that every default and check is
 * written once.
 *
 * Ownership: what is made here (the SecretFactory, the KMS and metastore adapters, the SDK clients) belongs to the
 * factory, whose close() closes it after the keys are wiped, so nothing made here can outlive the factory. What
 * the caller passes in `options` (clients, a SecretFactory) stays the caller's and is never closed here.
 *
 * The AWS SDK is required only when the config names DynamoDB or AWS KMS and no client is given: the layer must
 * load where @aws-sdk is absent (the Lambda runtime provides it).
 */
import { createRequire } from 'node:module';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { KMSClient } from '@aws-sdk/client-kms';
import { ConfigError } from '../../errors.js';
import { SecretFactory, type SecretFactoryOptions } from '../../securememory/secret-factory.js';
import { CONFIG_NAMES, policyFromConfig, validateConfig, type AsherahConfig } from './config.js';
import { configFromEnv, type EnvConfigOptions, type EnvMap } from './env-config.js';
import { ENV_NAMES } from './env.js';
import { checkRegionSuffix, isRegionName } from '../key-ids.js';
import { AwsKms } from '../kms/aws-kms.js';
import {
  clientSettings,
  DEFAULT_DYNAMODB_TIMEOUTS,
  DEFAULT_KMS_TIMEOUTS,
  resolveTimeouts,
  type AwsClientTimeouts,
} from './aws-client-timeouts.js';
import { StaticKms, TEST_DEBUG_STATIC_MASTER_KEY_HEX } from '../kms/static-kms.js';
import { DynamoDbMetastore } from '../metastore/dynamodb-metastore.js';
import { MemoryMetastore } from '../metastore/memory-metastore.js';
import { SqliteMetastore } from '../metastore/sqlite-metastore.js';
import type { Clock, KeyManagementService, Metastore } from '../ports.js';
import { REGION_MAP_SOURCES, regionOrder } from './region-map.js';
import type { SessionFactoryConfig } from '../session-factory-config.js';

/** Warnings: an AWS KMS region that failed, secure memory that could not be locked, fromEnv's static key. */
export interface BuilderLogger {
  warn(message: string, details?: Record<string, unknown>): void;
}

/** Every count: the factory's MetricName counts and AwsKms's `kms.aws.<operation>.<region>[.error]`. */
export interface BuilderMetricsHook {
  increment(name: string, by: number): void;
}

export interface FromConfigOptions {
  /**
   * SDK clients to use instead of making them; they stay yours (close() leaves them open). `kms` is a client per
   * region of the map, or a function called once per region. With `dynamodb`, DynamoDBEndpoint is not used and
   * DynamoDBRegion only names the region suffix.
   */
  clients?: {
    dynamodb?: DynamoDBClient;
    kms?: Readonly<Record<string, KMSClient>> | ((region: string) => KMSClient);
  };
  /**
   * Timeouts and attempts of the SDK clients made here (not of `clients` given): DynamoDB 1 s to connect, 2 s
   * per request, 3 attempts; KMS 1 s, 3 s, 3 attempts (docs/troubleshooting.md, "timeouts").
   */
  timeouts?: { dynamodb?: Partial<AwsClientTimeouts>; kms?: Partial<AwsClientTimeouts> };
  logger?: BuilderLogger;
  metrics?: BuilderMetricsHook;
  /** A SecretFactory to use (stays yours), or options for the one made here (e.g. `{ mlock: 'best-effort' }`). */
  secrets?: SecretFactory | SecretFactoryOptions;
  clock?: Clock;
}

export type FromEnvOptions = FromConfigOptions & EnvConfigOptions;

/** What SessionFactory is made of, and how to close what was made for it. */
export interface Composed {
  config: SessionFactoryConfig;
  /** Closes, once, everything made here: metastore and its client, KMS and its clients, the SecretFactory. */
  close(): void;
}

/** What the environment adds to an AsherahConfig (env-config.ts). */
interface EnvExtras {
  kmsEndpoint?: string;
  /** The environment names no region: the DynamoDB client takes the SDK's own (a profile), as it always did. */
  regionFromSdk?: boolean;
  /** ASHERAH_DYNAMODB_* / ASHERAH_KMS_* timeouts, under those of `options.timeouts`. */
  timeouts?: FromConfigOptions['timeouts'];
}

export function composeFromConfig(input: AsherahConfig | string, options?: FromConfigOptions): Composed {
  return compose(validateConfig(input), checkOptions(options, 'fromConfig'));
}

export function composeFromEnv(env: EnvMap = process.env, options?: FromEnvOptions): Composed {
  const checked = checkOptions(options, 'fromEnv');
  const read = configFromEnv(env, checked);
  if (read.staticKeySource !== undefined) {
    checked.logger?.warn('static master key: for development only, never for production data', { source: read.staticKeySource });
  }
  const extras: EnvExtras = {
    kmsEndpoint: read.kmsEndpoint,
    regionFromSdk: read.config.DynamoDBRegion === undefined,
    timeouts: read.timeouts,
  };
  return compose(validateConfig(read.config), checked, extras);
}

function compose(config: AsherahConfig, options: FromConfigOptions, extras: EnvExtras = {}): Composed {
  const closers: Array<() => void> = [];
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    let failure: unknown;
    for (const closeOne of closers.reverse()) {
      try {
        closeOne();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  };
  try {
    const given = options.secrets;
    const secrets =
      given instanceof SecretFactory
        ? given
        : new SecretFactory({ ...(options.logger ? { logger: options.logger } : {}), ...given });
    if (secrets !== given) closers.push(() => secrets.close());
    // The KMS first, as setup() always did: a KMS error is reported before a metastore error.
    const kms = kmsFromConfig(config, secrets, options, extras, closers);
    const metastore = metastoreFromConfig(config, options, extras, closers);
    return {
      config: {
        serviceName: config.ServiceName,
        productId: config.ProductID,
        metastore,
        kms,
        policy: policyFromConfig(config),
        metrics: options.metrics,
        secrets,
        clock: options.clock,
        legacyKeyIdNames: config.LegacyKeyIdNames === true,
      },
      close,
    };
  } catch (err) {
    try {
      close();
    } catch {
      // the build error says more than a close error would
    }
    throw err;
  }
}

function kmsFromConfig(
  config: AsherahConfig,
  secrets: SecretFactory,
  options: FromConfigOptions,
  extras: EnvExtras,
  closers: Array<() => void>,
): KeyManagementService {
  switch (config.KMS) {
    case 'static': {
      if (!config.StaticMasterKeyHex) {
        throw new ConfigError(
          'config key StaticMasterKeyHex is required with KMS "static" (64 hex characters); ' +
            'use KMS "test-debug-static" for the public test key',
        );
      }
      const kms = new StaticKms(config.StaticMasterKeyHex, secrets);
      closers.push(() => kms.close());
      return kms;
    }
    case 'test-debug-static': {
      const kms = new StaticKms(config.StaticMasterKeyHex || TEST_DEBUG_STATIC_MASTER_KEY_HEX, secrets);
      closers.push(() => kms.close());
      return kms;
    }
    case 'aws': {
      const regionMap = config.RegionMap;
      if (regionMap === undefined || regionMap === null) {
        throw new ConfigError('config key RegionMap is required with KMS "aws": {"<region>": "<KMS key ARN>", …}');
      }
      const preferredRegion = config.PreferredRegion ?? undefined;
      const regions = regionOrder(regionMap, preferredRegion, REGION_MAP_SOURCES.config);
      const given = options.clients?.kms;
      // A function of ours makes clients that AwsKms owns and destroys on close(); the caller's never are.
      const timeouts = timeoutsFor('kms', options, extras);
      const clients =
        given === undefined
          ? (region: string) => newKmsClient(region, extras.kmsEndpoint, timeouts)
          : typeof given === 'function'
            ? Object.fromEntries(regions.map((region) => [region, given(region)]))
            : given;
      const kms = new AwsKms({ regionMap, preferredRegion, clients, secrets, logger: options.logger, metrics: options.metrics });
      closers.push(() => kms.close());
      return kms;
    }
    default:
      throw new ConfigError(`config key KMS must be "static", "test-debug-static" or "aws", got ${JSON.stringify(config.KMS)}`);
  }
}

function metastoreFromConfig(
  config: AsherahConfig,
  options: FromConfigOptions,
  extras: EnvExtras,
  closers: Array<() => void>,
): Metastore {
  switch (config.Metastore) {
    case 'memory':
    case 'test-debug-memory':
      return new MemoryMetastore();
    case 'sqlite':
    case 'test-debug-sqlite': {
      if (!config.ConnectionString) {
        throw new ConfigError(
          `config key ConnectionString is required with Metastore ${JSON.stringify(config.Metastore)} (the database file path)`,
        );
      }
      const sqlite = new SqliteMetastore(config.ConnectionString);
      closers.push(() => sqlite.close());
      return sqlite;
    }
    case 'dynamodb': {
      const given = options.clients?.dynamodb;
      // Without an endpoint the region names the host (dynamodb.<region>.amazonaws.com); DynamoDB Local and
      // dynalite, reached by DynamoDBEndpoint, take any region name.
      if (config.DynamoDBRegion && !config.DynamoDBEndpoint && given === undefined && !isRegionName(config.DynamoDBRegion)) {
        throw new ConfigError(
          `config key DynamoDBRegion ${JSON.stringify(config.DynamoDBRegion)} is not an AWS region name (e.g. us-west-2)`,
        );
      }
      const region = config.DynamoDBRegion || (extras.regionFromSdk ? undefined : process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION);
      const needsRegion = given === undefined ? !extras.regionFromSdk : config.EnableRegionSuffix === true;
      if (!region && needsRegion) {
        throw new ConfigError(
          'Metastore "dynamodb" needs a region: set config key DynamoDBRegion (or AWS_REGION / AWS_DEFAULT_REGION)' +
            (config.EnableRegionSuffix ? '; with EnableRegionSuffix it is also the key id suffix' : ''),
        );
      }
      // Go's WithRegionSuffix(true): the DynamoDB client's region (docs/wire-format.md §1.2).
      const regionSuffix = config.EnableRegionSuffix ? region : undefined;
      checkRegionSuffix(regionSuffix, config.LegacyKeyIdNames === true, CONFIG_NAMES);
      const timeouts = timeoutsFor('dynamodb', options, extras);
      const client = given ?? newDynamoDbClient(config.DynamoDBEndpoint, region, timeouts);
      if (client !== given) closers.push(() => client.destroy());
      return new DynamoDbMetastore(client, {
        tableName: config.DynamoDBTableName ?? undefined,
        regionSuffix,
        legacyKeyIdNames: config.LegacyKeyIdNames ?? undefined,
        ...(client !== given ? { clientTimeouts: timeouts } : {}),
      });
    }
    default:
      throw new ConfigError(
        'config key Metastore must be "memory", "sqlite" or "dynamodb" (or "test-debug-memory", ' +
          `"test-debug-sqlite"), got ${JSON.stringify(config.Metastore)}`,
      );
  }
}

function checkOptions<T extends FromConfigOptions>(options: T | undefined, method: string): T {
  if (options === undefined) return {} as T;
  if (options === null || typeof options !== 'object') {
    throw new ConfigError(`SessionFactory.${method} options must be an object (clients, logger, metrics, secrets, clock)`);
  }
  const secrets: unknown = options.secrets;
  if (secrets !== undefined && (secrets === null || typeof secrets !== 'object')) {
    throw new ConfigError(`SessionFactory.${method} options.secrets must be a SecretFactory or SecretFactory options`);
  }
  return options;
}

const TIMEOUT_VARIABLES = {
  dynamodb: {
    connectionTimeoutMs: ENV_NAMES.dynamoDbConnectionTimeoutMs,
    requestTimeoutMs: ENV_NAMES.dynamoDbRequestTimeoutMs,
    maxAttempts: ENV_NAMES.dynamoDbMaxAttempts,
  },
  kms: {
    connectionTimeoutMs: ENV_NAMES.kmsConnectionTimeoutMs,
    requestTimeoutMs: ENV_NAMES.kmsRequestTimeoutMs,
    maxAttempts: ENV_NAMES.kmsMaxAttempts,
  },
} as const;

/** The timeouts of the `service` clients made here: options over the environment over the defaults. */
function timeoutsFor(service: 'dynamodb' | 'kms', options: FromConfigOptions, extras: EnvExtras): AwsClientTimeouts {
  const defaults = service === 'dynamodb' ? DEFAULT_DYNAMODB_TIMEOUTS : DEFAULT_KMS_TIMEOUTS;
  const given: unknown = options.timeouts;
  if (given !== undefined && (given === null || typeof given !== 'object')) {
    throw new ConfigError('options.timeouts must be an object: { dynamodb?: {…}, kms?: {…} }');
  }
  let mine: Partial<AwsClientTimeouts> | undefined;
  try {
    mine = (given as FromConfigOptions['timeouts'])?.[service];
  } catch (err) {
    throw new ConfigError('options.timeouts could not be read (a property getter or Proxy trap threw); pass a plain object', {
      cause: err,
    });
  }
  const fromEnv = resolveTimeouts(extras.timeouts?.[service], defaults, TIMEOUT_VARIABLES[service]);
  return resolveTimeouts(mine, fromEnv, `options.timeouts.${service}`);
}

function newDynamoDbClient(endpoint: string | undefined, region: string | undefined, timeouts: AwsClientTimeouts): DynamoDBClient {
  const sdk = loadSdk<typeof import('@aws-sdk/client-dynamodb')>('@aws-sdk/client-dynamodb', 'Metastore "dynamodb"');
  return new sdk.DynamoDBClient({
    ...clientSettings(timeouts),
    ...(endpoint ? { endpoint } : {}),
    ...(region ? { region } : {}),
  });
}

function newKmsClient(region: string, endpoint: string | undefined, timeouts: AwsClientTimeouts): KMSClient {
  const sdk = loadSdk<typeof import('@aws-sdk/client-kms')>('@aws-sdk/client-kms', 'KMS "aws"');
  return new sdk.KMSClient({ region, ...clientSettings(timeouts), ...(endpoint ? { endpoint } : {}) });
}

/** An AWS SDK package, loaded only when a client must be made: the layer must load where the SDK is absent. */
function loadSdk<T>(name: string, what: string): T {
  try {
    return createRequire(__filename)(name) as T;
  } catch (err) {
    throw new ConfigError(
      `${what} needs the package ${name} (the Lambda Node.js runtime provides it; elsewhere \`npm install ${name}\`)`,
      { cause: err },
    );
  }
}
