/**
 * AsherahConfig: the PascalCase configuration of Asherah's other bindings (asherah-node, cobhan, the Rust
 * binding), checked once where it enters. Unknown keys and wrong types are a ConfigError naming the key.
 * Durations are in seconds, as in the Rust binding (docs/compatibility.md). compose.ts builds a SessionFactory from
 * it (SessionFactory.fromConfig, setup()).
 */
import { ConfigError } from '../../errors.js';
import { CryptoPolicy } from './crypto-policy.js';
import { checkKeyIdNames, isWellFormed, type NameSource } from '../key-ids.js';

export interface AsherahConfig {
  ServiceName: string;
  ProductID: string;
  /** `memory` (tests), `sqlite` (local, shares its file format with the Rust binding), `dynamodb` (AWS). */
  Metastore: 'memory' | 'sqlite' | 'dynamodb' | 'test-debug-memory' | 'test-debug-sqlite';
  /** SQLite file path (a `sqlite://` prefix is accepted). */
  ConnectionString?: string;
  DynamoDBEndpoint?: string;
  DynamoDBRegion?: string;
  DynamoDBTableName?: string;
  EnableRegionSuffix?: boolean;
  /** `static` (needs StaticMasterKeyHex), `test-debug-static` (the public test key unless StaticMasterKeyHex), `aws`. */
  KMS: 'static' | 'test-debug-static' | 'aws';
  StaticMasterKeyHex?: string;
  RegionMap?: Record<string, string>;
  PreferredRegion?: string;
  /** Seconds. Default 90 days. */
  ExpireAfter?: number;
  /** Seconds. Default 3600. */
  CheckInterval?: number;
  /** Default true, as in the Rust binding. */
  EnableSessionCaching?: boolean;
  SessionCacheMaxSize?: number;
  /** Seconds. Default 7200. */
  SessionCacheDuration?: number;
  Verbose?: boolean;
  /**
   * Accept a ServiceName, ProductID or region suffix that can make key ids of different services or partitions
   * the same string (docs/partitions.md). Only for existing deployments whose records already use such names.
   */
  LegacyKeyIdNames?: boolean;
}

type Kind = 'string' | 'boolean' | 'number' | 'object';
const KEYS: Record<keyof AsherahConfig, Kind> = {
  ServiceName: 'string',
  ProductID: 'string',
  Metastore: 'string',
  ConnectionString: 'string',
  DynamoDBEndpoint: 'string',
  DynamoDBRegion: 'string',
  DynamoDBTableName: 'string',
  EnableRegionSuffix: 'boolean',
  KMS: 'string',
  StaticMasterKeyHex: 'string',
  RegionMap: 'object',
  PreferredRegion: 'string',
  ExpireAfter: 'number',
  CheckInterval: 'number',
  EnableSessionCaching: 'boolean',
  SessionCacheMaxSize: 'number',
  SessionCacheDuration: 'number',
  Verbose: 'boolean',
  LegacyKeyIdNames: 'boolean',
};

/** AsherahConfig's names for key-ids.ts's messages. */
export const CONFIG_NAMES: NameSource = {
  service: 'config key ServiceName',
  product: 'config key ProductID',
  suffix: 'the region suffix (DynamoDBRegion, with EnableRegionSuffix)',
  optIn: 'LegacyKeyIdNames: true',
};

/**
 * Checks every key and value; returns a copy of the config's own enumerable fields, typed. Each field is read once
 * (a getter cannot answer differently later), and inherited fields are ignored as Object.entries ignores them.
 */
export function validateConfig(input: unknown): AsherahConfig {
  const config = typeof input === 'string' ? parseJson(input) : input;
  if (config === null || typeof config !== 'object' || isArray(config)) {
    throw new ConfigError('the Asherah config must be an object (or its JSON text)');
  }
  const record: Record<string, unknown> = {};
  for (const [key, value] of ownEntries(config)) {
    // Own keys only: KEYS.constructor or KEYS.__proto__ (inherited) is no config key.
    const kind = Object.hasOwn(KEYS, key) ? KEYS[key as keyof AsherahConfig] : undefined;
    if (kind === undefined) {
      const hint = Object.keys(KEYS).find((k) => k.toLowerCase() === key.toLowerCase());
      throw new ConfigError(
        `unknown config key ${JSON.stringify(key)}` + (hint ? `; did you mean ${hint}?` : '; see AsherahConfig for the keys'),
      );
    }
    record[key] = value; // a known key, so never __proto__
    if (value === undefined || value === null) continue;
    const actual = isArray(value) ? 'array' : typeof value;
    if (actual !== kind) {
      throw new ConfigError(`config key ${key} must be ${kind === 'object' ? 'an' : 'a'} ${kind}, got ${actual}`);
    }
    // RegionMap is copied the same way, so that AwsKms never meets a getter or Proxy that throws.
    if (kind === 'object') record[key] = copyOwnFields(value as object);
  }
  for (const required of ['ServiceName', 'ProductID', 'Metastore', 'KMS'] as const) {
    if (typeof record[required] !== 'string' || record[required] === '') {
      throw new ConfigError(`config key ${required} is required (a non-empty string)`);
    }
  }
  // A lone surrogate half becomes U+FFFD when the DRR's KeyId goes through JSON, so every record's IK id would
  // stop matching: encrypt would work and every decrypt fail. No opt-in (LegacyKeyIdNames) can make that useful.
  for (const name of ['ServiceName', 'ProductID'] as const) {
    if (!isWellFormed(record[name] as string)) {
      throw new ConfigError(
        `config key ${name} must be well-formed Unicode: it contains an unpaired UTF-16 surrogate (U+D800 to U+DFFF)`,
      );
    }
  }
  // ExpireAfter bounds the minute-truncation of key Created, which the wire format keeps in whole seconds.
  const expireAfter = record.ExpireAfter;
  if (expireAfter !== undefined && expireAfter !== null && !(Number.isSafeInteger(expireAfter) && (expireAfter as number) > 0)) {
    throw new ConfigError('config key ExpireAfter must be a whole number of seconds, at least 1');
  }
  for (const seconds of ['CheckInterval', 'SessionCacheDuration'] as const) {
    const value = record[seconds];
    if (value !== undefined && value !== null && !((value as number) > 0 && Number.isFinite(value))) {
      throw new ConfigError(`config key ${seconds} must be a positive number of seconds`);
    }
  }
  // The region suffix is known only once the metastore is built; DynamoDbMetastore checks it.
  checkKeyIdNames(record.ServiceName as string, record.ProductID as string, undefined, record.LegacyKeyIdNames === true, CONFIG_NAMES);
  const maxSize = record.SessionCacheMaxSize;
  if (maxSize !== undefined && maxSize !== null && !(Number.isSafeInteger(maxSize) && (maxSize as number) > 0)) {
    throw new ConfigError('config key SessionCacheMaxSize must be a positive integer');
  }
  return record as unknown as AsherahConfig;
}

// Array.isArray throws a TypeError for a revoked Proxy.
function isArray(value: unknown): boolean {
  try {
    return Array.isArray(value);
  } catch (err) {
    throw unreadable(err);
  }
}

function ownEntries(value: object): [string, unknown][] {
  try {
    return Object.entries(value);
  } catch (err) {
    throw unreadable(err);
  }
}

function copyOwnFields(value: object): Record<string, unknown> {
  return Object.fromEntries(ownEntries(value)); // defines, so an own "__proto__" key stays a plain field
}

function unreadable(err: unknown): ConfigError {
  return new ConfigError(
    'the Asherah config could not be read (a property getter or Proxy threw); pass a plain object or its JSON text',
    { cause: err },
  );
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // No cause: V8's SyntaxError quotes the text around the fault, which may be StaticMasterKeyHex.
    throw new ConfigError('the Asherah config text is not valid JSON');
  }
}

export function policyFromConfig(config: AsherahConfig): CryptoPolicy {
  return new CryptoPolicy({
    expireAfterSeconds: config.ExpireAfter ?? undefined,
    checkIntervalSeconds: config.CheckInterval ?? undefined,
    sessionCaching: config.EnableSessionCaching ?? true,
    sessionCacheMaxSize: config.SessionCacheMaxSize ?? undefined,
    sessionCacheDurationSeconds: config.SessionCacheDuration ?? undefined,
  });
}
