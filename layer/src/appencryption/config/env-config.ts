/**
 * The ASHERAH_* environment (env.ts names the variables and their defaults) read into an AsherahConfig, which
 * SessionFactory.fromEnv builds through the same code as fromConfig. The rules are the function's
 * (README.md, "Configuration"): inside Lambda (AWS_LAMBDA_FUNCTION_NAME set) the defaults are
 * DynamoDB and AWS KMS, and a static master key is refused unless ASHERAH_ALLOW_STATIC_KMS=true; elsewhere they
 * are SQLite and a static key. Every message names the variable to set.
 *
 * Nothing is written unless `developmentDir` is given: then, outside Lambda, the SQLite file and a generated
 * development master key (mode 0600) live there when their variables are unset.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../errors.js';
import type { AwsClientTimeouts } from './aws-client-timeouts.js';
import type { AsherahConfig } from './config.js';
import { ENV_DEFAULTS, ENV_NAMES as N } from './env.js';
import { checkKeyIdNames, isWellFormed, type NameSource } from '../key-ids.js';
import { checkRegionMap, REGION_MAP_SOURCES, regionOrder } from './region-map.js';

/** process.env, or a map like it. */
export type EnvMap = Readonly<Record<string, string | undefined>>;

export interface EnvConfigOptions {
  /**
   * Outside Lambda, where ASHERAH_SQLITE_PATH or ASHERAH_STATIC_MASTER_KEY_HEX is unset, keep the SQLite file
   * (metastore.db) or a development master key generated once (dev-master-key.hex, mode 0600) in this directory,
   * creating it. Without it those variables are required. Never used inside Lambda (its code directory is
   * read-only).
   */
  developmentDir?: string;
}

export interface EnvConfig {
  config: AsherahConfig;
  /** ASHERAH_KMS_ENDPOINT: where the KMS clients made for the map send their requests. */
  kmsEndpoint?: string;
  /** Where the static master key came from (for the warning fromEnv logs); undefined with AWS KMS. */
  staticKeySource?: 'env' | 'generated';
  /** ASHERAH_DYNAMODB_* and ASHERAH_KMS_* timeouts and attempts that are set (aws-client-timeouts.ts). */
  timeouts?: { dynamodb?: Partial<AwsClientTimeouts>; kms?: Partial<AwsClientTimeouts> };
}

const ENV_NAME_SOURCE: NameSource = {
  service: N.serviceName,
  product: N.productId,
  suffix: `the region suffix (AWS_REGION, with ${N.regionSuffix})`,
  optIn: `${N.legacyKeyIdNames}=true`,
};

export function configFromEnv(env: EnvMap = process.env, options: EnvConfigOptions = {}): EnvConfig {
  if (env === null || typeof env !== 'object') throw new ConfigError('SessionFactory.fromEnv takes an environment map (process.env)');
  return readEnv(snapshot(env), options);
}

/** The variables this module reads, the standard AWS ones included. */
const READ = [...Object.values(N), 'AWS_LAMBDA_FUNCTION_NAME', 'AWS_REGION', 'AWS_DEFAULT_REGION'];

/**
 * The variables read, copied once into a plain object: a map whose getter or Proxy trap throws is a ConfigError
 * (as fromConfig gives for such a config), and a getter cannot answer differently between two reads.
 */
function snapshot(env: EnvMap): Record<string, string | undefined> {
  const copy: Record<string, string | undefined> = Object.create(null) as Record<string, string | undefined>;
  try {
    for (const name of READ) {
      if (!Object.hasOwn(env, name)) continue;
      const value: unknown = env[name];
      copy[name] = typeof value === 'string' ? value : undefined;
    }
  } catch (err) {
    throw new ConfigError(
      'the environment map could not be read (a property getter or Proxy trap threw); pass process.env or a ' +
        'plain object of strings',
      { cause: err },
    );
  }
  return copy;
}

function readEnv(env: EnvMap, options: EnvConfigOptions): EnvConfig {
  const developmentDir = options?.developmentDir;
  if (developmentDir !== undefined && (typeof developmentDir !== 'string' || developmentDir === '')) {
    throw new ConfigError('fromEnv developmentDir must be a directory path');
  }
  const read = (name: string): string | undefined => {
    const value = env[name];
    return typeof value === 'string' && value !== '' ? value : undefined; // empty means unset
  };
  const inLambda = Boolean(read('AWS_LAMBDA_FUNCTION_NAME'));
  const metastore = oneOf(N.metastore, read(N.metastore), ['sqlite', 'dynamodb'], inLambda ? 'dynamodb' : 'sqlite');
  const kms = oneOf(N.kms, read(N.kms), ['static', 'aws'], inLambda ? 'aws' : 'static');
  const region = read('AWS_REGION') ?? read('AWS_DEFAULT_REGION');
  const config: AsherahConfig = { ServiceName: '', ProductID: '', Metastore: metastore, KMS: kms };
  let staticKeySource: EnvConfig['staticKeySource'];

  if (kms === 'aws') {
    const mapText = read(N.regionMap);
    const keyArn = read(N.kmsKeyArn);
    let preferred = read(N.preferredRegion);
    let regionMap: Record<string, string>;
    let source: (typeof REGION_MAP_SOURCES)['env' | 'envKeyArn'] = REGION_MAP_SOURCES.env;
    if (mapText !== undefined) {
      if (keyArn !== undefined) throw new ConfigError(`set ${N.kmsKeyArn} or ${N.regionMap}, not both`);
      regionMap = parseRegionMap(mapText);
      const regions = checkRegionMap(regionMap, source);
      // Several regions: the function's own region goes first when it is one of them.
      if (regions.length > 1 && preferred === undefined) {
        if (region === undefined || !regions.includes(region)) {
          throw new ConfigError(
            `${N.preferredRegion} is required when ${N.regionMap} has more than one region (${regions.join(', ')}), ` +
              'unless the function runs in one of them (AWS_REGION)',
          );
        }
        preferred = region;
      }
    } else if (keyArn !== undefined) {
      const arnRegion = keyArn.startsWith('arn:') ? keyArn.split(':')[3] : undefined;
      if (!arnRegion) {
        throw new ConfigError(`${N.kmsKeyArn} must be a full key ARN (arn:aws:kms:<region>:<account>:key/<id>)`);
      }
      source = REGION_MAP_SOURCES.envKeyArn;
      regionMap = { [arnRegion]: keyArn };
      preferred ??= arnRegion;
    } else {
      throw new ConfigError(`${N.kms} is "aws": set ${N.kmsKeyArn} (one region) or ${N.regionMap} (JSON)`);
    }
    regionOrder(regionMap, preferred, source);
    Object.assign(config, { RegionMap: regionMap, PreferredRegion: preferred });
  } else {
    if (inLambda && read(N.allowStaticKms) !== 'true') {
      throw new ConfigError(
        `${N.kms} is "static" inside Lambda: a static master key is for local development only; use ` +
          `${N.kms}=aws with ${N.kmsKeyArn}, or set ${N.allowStaticKms}=true to accept the risk`,
      );
    }
    let hex = read(N.staticMasterKeyHex);
    staticKeySource = 'env';
    if (hex === undefined) {
      if (inLambda) {
        // The code directory (/var/task) is read-only: no development key can be generated there.
        throw new ConfigError(`${N.kms} is "static" inside Lambda: set ${N.staticMasterKeyHex} (64 hex characters)`);
      }
      if (developmentDir === undefined) {
        throw new ConfigError(
          `${N.kms} is "static" and ${N.staticMasterKeyHex} is unset: set it (64 hex characters), or pass ` +
            'developmentDir to SessionFactory.fromEnv to generate a development key there',
        );
      }
      hex = developmentMasterKey(developmentDir);
      staticKeySource = 'generated';
    }
    config.StaticMasterKeyHex = hex;
  }

  if (metastore === 'sqlite') {
    let file = read(N.sqlitePath);
    if (file === undefined && inLambda) {
      throw new ConfigError(
        `${N.metastore} is "sqlite" inside Lambda: set ${N.sqlitePath} to a writable file (e.g. under /tmp, which ` +
          `lasts only as long as the execution environment); use ${N.metastore}=dynamodb to keep keys`,
      );
    }
    if (file === undefined) {
      if (developmentDir === undefined) {
        throw new ConfigError(
          `${N.metastore} is "sqlite" and ${N.sqlitePath} is unset: set it to the database file, or pass ` +
            'developmentDir to SessionFactory.fromEnv to keep one there',
        );
      }
      mkdirSync(developmentDir, { recursive: true });
      file = path.join(developmentDir, 'metastore.db');
    }
    config.ConnectionString = file;
  }

  const legacy = bool(N.legacyKeyIdNames, read(N.legacyKeyIdNames));
  const suffixed = bool(N.regionSuffix, read(N.regionSuffix));
  config.ServiceName = read(N.serviceName) ?? ENV_DEFAULTS.serviceName;
  config.ProductID = read(N.productId) ?? ENV_DEFAULTS.productId;
  for (const [name, value] of [[N.serviceName, config.ServiceName], [N.productId, config.ProductID]] as const) {
    // A lone surrogate half turns into U+FFFD in the DRR's KeyId: every record would encrypt and never decrypt.
    if (!isWellFormed(value)) throw new ConfigError(`${name} must be well-formed Unicode: it contains an unpaired UTF-16 surrogate`);
  }
  let suffix: string | undefined;
  if (metastore === 'dynamodb') {
    if (suffixed && region === undefined) {
      throw new ConfigError(`${N.regionSuffix}=true suffixes key ids with the function's region: set AWS_REGION (Lambda sets it)`);
    }
    suffix = suffixed ? region : undefined;
    const endpoint = read(N.dynamoDbEndpoint);
    Object.assign(config, {
      DynamoDBTableName: read(N.tableName) ?? ENV_DEFAULTS.tableName,
      EnableRegionSuffix: suffixed,
      ...(region !== undefined ? { DynamoDBRegion: region } : {}),
      ...(endpoint !== undefined ? { DynamoDBEndpoint: endpoint } : {}),
    });
  }
  checkKeyIdNames(config.ServiceName, config.ProductID, suffix, legacy, ENV_NAME_SOURCE);
  config.LegacyKeyIdNames = legacy;
  // The function has never cached sessions (a Session costs nothing to make); setup()'s default is the Rust binding's.
  config.EnableSessionCaching = false;

  const kmsEndpoint = kms === 'aws' ? read(N.kmsEndpoint) : undefined;
  const timeouts: NonNullable<EnvConfig['timeouts']> = {};
  if (metastore === 'dynamodb') {
    timeouts.dynamodb = timeoutsFromEnv(read, N.dynamoDbConnectionTimeoutMs, N.dynamoDbRequestTimeoutMs, N.dynamoDbMaxAttempts);
  }
  if (kms === 'aws') timeouts.kms = timeoutsFromEnv(read, N.kmsConnectionTimeoutMs, N.kmsRequestTimeoutMs, N.kmsMaxAttempts);
  return {
    config,
    ...(kmsEndpoint !== undefined ? { kmsEndpoint } : {}),
    ...(staticKeySource ? { staticKeySource } : {}),
    ...(Object.keys(timeouts).length > 0 ? { timeouts } : {}),
  };
}

/** The timeouts set among three variables; resolveTimeouts (compose.ts) checks their ranges. */
function timeoutsFromEnv(
  read: (name: string) => string | undefined,
  connection: string,
  request: string,
  attempts: string,
): Partial<AwsClientTimeouts> {
  const timeouts: Partial<AwsClientTimeouts> = {};
  for (const [field, name] of [['connectionTimeoutMs', connection], ['requestTimeoutMs', request], ['maxAttempts', attempts]] as const) {
    const text = read(name);
    if (text === undefined) continue;
    if (!/^[0-9]{1,9}$/.test(text)) throw new ConfigError(`${name} must be a whole number, got ${JSON.stringify(text)}`);
    timeouts[field] = Number(text);
  }
  return timeouts;
}

/** A static master key for local development, made once and kept in `dir` (mode 0600; .local/ is git-ignored). */
function developmentMasterKey(dir: string): string {
  const file = path.join(dir, 'dev-master-key.hex');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  }
  chmodSync(file, 0o600);
  const hex = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new ConfigError(`${file} must hold 64 hex characters; delete it to generate a new development key`);
  }
  return hex;
}

function oneOf<T extends string>(name: string, value: string | undefined, values: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(values as readonly string[]).includes(value)) {
    throw new ConfigError(`${name} must be ${values.map((v) => `"${v}"`).join(' or ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

function bool(name: string, value: string | undefined): boolean {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw new ConfigError(`${name} must be "true" or "false", got ${JSON.stringify(value)}`);
}

function parseRegionMap(text: string): Record<string, string> {
  try {
    return JSON.parse(text) as Record<string, string>; // checkRegionMap checks what it is
  } catch {
    // No cause: V8's SyntaxError quotes the text around the fault.
    throw new ConfigError(`${N.regionMap} must be JSON: {"<region>": "<key ARN>", …}`);
  }
}
