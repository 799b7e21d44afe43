/**
 * The function's environment (DESIGN.md "Function: environment and events") turned into a checked config, and
 * the SessionFactory built from it. With nothing set, it runs on the embedded default: SQLite under .local/ and a
 * static development master key generated once into .local/ (mode 0600).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { checkKeyIdNames, ConfigError } from 'asherah-layer';

export interface FunctionConfig {
  serviceName: string;
  productId: string;
  metastore: 'sqlite' | 'dynamodb';
  sqlitePath: string;
  tableName: string;
  dynamoDbEndpoint: string | undefined;
  regionSuffix: boolean;
  /** ASHERAH_LEGACY_KEY_ID_NAMES: accept names that can make key ids collide (docs/partitions.md). */
  legacyKeyIdNames: boolean;
  kms: 'static' | 'aws';
  /** Region → key ARN (one entry for ASHERAH_KMS_KEY_ARN). */
  regionMap: Record<string, string>;
  preferredRegion: string | undefined;
  /** Only with kms 'static'. Never logged. */
  staticMasterKeyHex: string | undefined;
  /** Where the static key came from, for the warning: env, or the generated development key file. */
  staticKeySource: 'env' | 'generated' | undefined;
  prewarmPartitions: string[];
  /** Largest partition id accepted in an event. */
  maxPartitionLength: number;
  inLambda: boolean;
}

const LOCAL_DIR = '.local';
const ENV_NAMES = {
  service: 'ASHERAH_SERVICE_NAME',
  product: 'ASHERAH_PRODUCT_ID',
  suffix: 'the region suffix (AWS_REGION, with ASHERAH_REGION_SUFFIX)',
  optIn: 'ASHERAH_LEGACY_KEY_ID_NAMES=true',
};

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): FunctionConfig {
  const inLambda = Boolean(env.AWS_LAMBDA_FUNCTION_NAME);
  const metastore = oneOf(env, 'ASHERAH_METASTORE', ['sqlite', 'dynamodb'], inLambda ? 'dynamodb' : 'sqlite');
  const kms = oneOf(env, 'ASHERAH_KMS', ['static', 'aws'], inLambda ? 'aws' : 'static');
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;

  let regionMap: Record<string, string> = {};
  let preferredRegion = env.ASHERAH_PREFERRED_REGION || undefined;
  if (kms === 'aws') {
    if (env.ASHERAH_REGION_MAP) {
      regionMap = parseRegionMap(env.ASHERAH_REGION_MAP);
      if (env.ASHERAH_KMS_KEY_ARN) {
        throw new ConfigError('set ASHERAH_KMS_KEY_ARN or ASHERAH_REGION_MAP, not both');
      }
    } else if (env.ASHERAH_KMS_KEY_ARN) {
      const arnRegion = env.ASHERAH_KMS_KEY_ARN.startsWith('arn:') ? env.ASHERAH_KMS_KEY_ARN.split(':')[3] : undefined;
      if (!arnRegion) {
        throw new ConfigError('ASHERAH_KMS_KEY_ARN must be a full key ARN (arn:aws:kms:<region>:<account>:key/<id>)');
      }
      regionMap = { [arnRegion]: env.ASHERAH_KMS_KEY_ARN };
      preferredRegion ??= arnRegion;
    } else {
      throw new ConfigError('ASHERAH_KMS is "aws": set ASHERAH_KMS_KEY_ARN (one region) or ASHERAH_REGION_MAP (JSON)');
    }
    if (Object.keys(regionMap).length > 1 && preferredRegion === undefined) {
      preferredRegion = region !== undefined && region in regionMap ? region : undefined;
      if (preferredRegion === undefined) {
        throw new ConfigError('ASHERAH_PREFERRED_REGION is required when ASHERAH_REGION_MAP has more than one region');
      }
    }
  }

  let staticMasterKeyHex: string | undefined;
  let staticKeySource: FunctionConfig['staticKeySource'];
  if (kms === 'static') {
    if (inLambda && env.ASHERAH_ALLOW_STATIC_KMS !== 'true') {
      throw new ConfigError(
        'ASHERAH_KMS is "static" inside Lambda: a static master key is for local development only; use ' +
          'ASHERAH_KMS=aws with ASHERAH_KMS_KEY_ARN, or set ASHERAH_ALLOW_STATIC_KMS=true to accept the risk',
      );
    }
    if (env.ASHERAH_STATIC_MASTER_KEY_HEX) {
      staticMasterKeyHex = env.ASHERAH_STATIC_MASTER_KEY_HEX;
      staticKeySource = 'env';
    } else if (inLambda) {
      // /var/task is read-only: no development key can be generated there.
      throw new ConfigError('ASHERAH_KMS is "static" inside Lambda: set ASHERAH_STATIC_MASTER_KEY_HEX (64 hex characters)');
    } else {
      staticMasterKeyHex = developmentMasterKey(path.join(cwd, LOCAL_DIR));
      staticKeySource = 'generated';
    }
  }

  if (metastore === 'sqlite' && inLambda && !env.ASHERAH_SQLITE_PATH) {
    throw new ConfigError(
      'ASHERAH_METASTORE is "sqlite" inside Lambda: set ASHERAH_SQLITE_PATH to a writable file (e.g. under /tmp, which ' +
        'lasts only as long as the execution environment); use ASHERAH_METASTORE=dynamodb to keep keys',
    );
  }
  const sqlitePath = env.ASHERAH_SQLITE_PATH || path.join(cwd, LOCAL_DIR, 'metastore.db');
  if (metastore === 'sqlite' && !env.ASHERAH_SQLITE_PATH) mkdirSync(path.dirname(sqlitePath), { recursive: true });

  const serviceName = env.ASHERAH_SERVICE_NAME || 'asherah-starter';
  const productId = env.ASHERAH_PRODUCT_ID || 'encrypt-decrypt';
  const legacyKeyIdNames = bool(env, 'ASHERAH_LEGACY_KEY_ID_NAMES');
  checkKeyIdNames(serviceName, productId, undefined, legacyKeyIdNames, ENV_NAMES);

  return {
    serviceName,
    productId,
    metastore,
    sqlitePath,
    tableName: env.ASHERAH_METASTORE_TABLE_NAME || 'EncryptionKey',
    dynamoDbEndpoint: env.ASHERAH_DYNAMODB_ENDPOINT || undefined,
    regionSuffix: bool(env, 'ASHERAH_REGION_SUFFIX'),
    legacyKeyIdNames,
    kms,
    regionMap,
    preferredRegion,
    staticMasterKeyHex,
    staticKeySource,
    prewarmPartitions: (env.ASHERAH_PREWARM_PARTITIONS ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== ''),
    maxPartitionLength: 1024,
    inLambda,
  };
}

/** A static master key for local development, made once and kept in .local/ (mode 0600, git-ignored). */
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

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, values: readonly T[], fallback: T): T {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  if (!(values as readonly string[]).includes(value)) {
    throw new ConfigError(`${name} must be ${values.map((v) => `"${v}"`).join(' or ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

function bool(env: NodeJS.ProcessEnv, name: string): boolean {
  const value = env[name];
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  throw new ConfigError(`${name} must be "true" or "false", got ${JSON.stringify(value)}`);
}

function parseRegionMap(text: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError('ASHERAH_REGION_MAP must be JSON: {"<region>": "<key ARN>", …}');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed) || Object.keys(parsed).length === 0) {
    throw new ConfigError('ASHERAH_REGION_MAP must be a non-empty JSON object: {"<region>": "<key ARN>", …}');
  }
  for (const [region, arn] of Object.entries(parsed)) {
    if (typeof arn !== 'string' || !arn.startsWith('arn:')) {
      throw new ConfigError(`ASHERAH_REGION_MAP: the value for ${JSON.stringify(region)} must be a key ARN`);
    }
  }
  return parsed as Record<string, string>;
}
