/**
 * Fuzzing setup() config: objects over the real AsherahConfig keys with wrong types, boundary numbers,
 * names with "_" or the shape of a region, unknown and case-varied keys, getters, Proxies, and JSON text. Every
 * outcome is a value or a named AsherahError; a config setup() accepts must then encrypt and decrypt.
 *
 * No config here reaches the network: Metastore "dynamodb" and KMS "aws" only build SDK clients (no request is
 * made until a key is used), and a setup() that accepts either is shut down without an encrypt. AWS_REGION and
 * AWS_DEFAULT_REGION are unset, so "dynamodb" needs DynamoDBRegion. A SQLite ConnectionString is always a file in a
 * temp dir.
 */
// Runs in this file: 31,000 fast-check cases (see RUNS).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { validateConfig } from '../../layer/src/appencryption/config/config';
import {
  AwsKms,
  ConfigError,
  decryptAsync,
  decryptStringAsync,
  encryptAsync,
  encryptStringAsync,
  SecretFactory,
  SessionFactory,
  setup,
  shutdown,
  type AsherahConfig,
} from '../../layer/src/index';
import {
  anyValue,
  applyTextEdits,
  asyncOutcomeOf,
  BOUNDARY_NUMBERS,
  hostileNumber,
  hostileString,
  nameVariants,
  outcomeOf,
  revokedProxy,
  safeJson,
  SEED,
  textEdit,
  throwingGetter,
  throwingProxy,
} from './fuzz-support';

const RUNS = {
  validate: 20_000,
  setup: 6_000,
  setupText: 2_000,
  aws: 1_000,
};

const KEYS = [
  'ServiceName', 'ProductID', 'Metastore', 'ConnectionString', 'DynamoDBEndpoint', 'DynamoDBRegion', 'DynamoDBTableName',
  'EnableRegionSuffix', 'KMS', 'StaticMasterKeyHex', 'RegionMap', 'PreferredRegion', 'ExpireAfter', 'CheckInterval',
  'EnableSessionCaching', 'SessionCacheMaxSize', 'SessionCacheDuration', 'Verbose', 'LegacyKeyIdNames',
];
const BASE = { ServiceName: 'service', ProductID: 'product', Metastore: 'memory', KMS: 'test-debug-static' };
/** Every class setup() may throw for a config: ConfigError, or SecureMemoryError if memory cannot be locked. */
const SETUP_ERRORS = ['ConfigError', 'SecureMemoryError', 'MemlockLimitError', 'NativeUnavailableError'];

let dir: string;
let dbCount = 0;
const savedEnv = { ...process.env };

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'fuzz-config-'));
  delete process.env.AWS_REGION;
  delete process.env.AWS_DEFAULT_REGION;
});
afterAll(() => {
  shutdown();
  process.env = { ...savedEnv };
  rmSync(dir, { recursive: true, force: true });
});

// ---- generators ---------------------------------------------------------------------------------------------------

/** A value of the wrong type (or of the right type but out of range) for any key. */
const wrong: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: anyValue },
  { weight: 2, arbitrary: hostileNumber },
  { weight: 1, arbitrary: hostileString(10) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, undefined, '60', '1e3', true, [60], { valueOf: () => 60 }, 60n, {}, []) },
);

const nameArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('service', 'product', 'svc-1', 'a', 'billing.v2', 'Ünïcode', '🔐') },
  // "_" and region-shaped names, which key ids reserve (refused unless LegacyKeyIdNames).
  { weight: 2, arbitrary: fc.constantFrom('my_product', 'eu_billing', '_', 'us-west-2', 'eu-central-1', 'us-gov-east-1', '') },
  { weight: 2, arbitrary: hostileString(10) },
);

const positiveSeconds = fc.oneof(
  fc.constantFrom(1e-300, Number.MIN_VALUE, 0.001, 0.5, 59.9, 1, 60, 3600, 1e308, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE),
  fc.double({ min: 0.001, max: 1e12, noNaN: true }),
);
const wholeNumber = fc.oneof(
  fc.constantFrom(1, 2, 59, 60, 61, 3600, 2 ** 31, Number.MAX_SAFE_INTEGER),
  fc.integer({ min: 1, max: 1_000_000_000 }),
);
const hex64 = fc.oneof(
  fc.constantFrom('22'.repeat(32), 'AB'.repeat(32), 'aB'.repeat(32), '01'.repeat(32)),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')),
);

/** A plausible value for each key (a valid one as far as the key alone goes; their combination may not be). */
const plausible: Record<string, fc.Arbitrary<unknown>> = {
  ServiceName: nameArb,
  ProductID: nameArb,
  Metastore: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('memory', 'test-debug-memory') },
    { weight: 1, arbitrary: fc.constantFrom('sqlite', 'test-debug-sqlite') },
    { weight: 1, arbitrary: fc.constantFrom('Memory', 'MEMORY', 'rdbms', 'memory ', '', 'dynamodb') },
  ),
  ConnectionString: fc.constantFrom('', 'file', 'sqlite://file'), // made a temp-dir path below
  DynamoDBEndpoint: fc.constantFrom('http://localhost:1', 'https://dynamodb.us-west-2.amazonaws.com', 'not a url'),
  DynamoDBRegion: fc.constantFrom('us-west-2', 'eu-central-1', '', 'moon-1'),
  DynamoDBTableName: fc.constantFrom('EncryptionKey', 'my-table.v2', ''),
  EnableRegionSuffix: fc.boolean(),
  KMS: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('test-debug-static', 'static') },
    { weight: 1, arbitrary: fc.constantFrom('aws', 'Static', 'kms', '') },
  ),
  StaticMasterKeyHex: fc.oneof({ weight: 4, arbitrary: hex64 }, { weight: 1, arbitrary: fc.constantFrom('', '22'.repeat(31), '22'.repeat(31) + '2g') }),
  RegionMap: fc.constantFrom<unknown>({}, { 'us-west-2': 'arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab' }),
  PreferredRegion: fc.constantFrom('us-west-2', 'eu-west-1', ''),
  ExpireAfter: wholeNumber,
  CheckInterval: positiveSeconds,
  EnableSessionCaching: fc.boolean(),
  SessionCacheMaxSize: wholeNumber,
  SessionCacheDuration: positiveSeconds,
  Verbose: fc.boolean(),
  LegacyKeyIdNames: fc.boolean(),
};

/**
 * Config objects over the real keys: plausible values (memory metastore and static KMS mostly, so that many pass),
 * then up to two keys set to a wrong value, then sometimes unknown or case-varied keys, getters, own "__proto__".
 */
const localConfig: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(
    fc.record(plausible, { requiredKeys: [] }),
    fc.nat(3),
    fc.oneof(
      { weight: 2, arbitrary: fc.constant<[string, unknown][]>([]) },
      { weight: 2, arbitrary: fc.array(fc.tuple(fc.constantFrom(...KEYS), wrong), { minLength: 1, maxLength: 2 }) },
    ),
    fc.oneof({ weight: 4, arbitrary: fc.constant<ExtraKey[]>([]) }, { weight: 1, arbitrary: fc.array(extraKeyArb(), { minLength: 1, maxLength: 2 }) }),
  )
  .map(([config, keep, wrongs, extra]) => {
    // Keep the required keys valid more often than chance would, so that the rest gets exercised.
    const out: Record<string, unknown> = keep === 0 ? { ...config } : { ...BASE, ...config };
    if (keep >= 2) Object.assign(out, { ServiceName: BASE.ServiceName, ProductID: BASE.ProductID });
    for (const [key, value] of wrongs) out[key] = value;
    for (const [name, value, how] of extra) addKey(out, name, value, how);
    // Last, after every key is set: SQLite files only ever go to the temp dir. A value that is a string only in
    // its JSON text (a boxed String, a Date) becomes a boxed String of a temp-dir path, for the JSON text property.
    const connection = Object.getOwnPropertyDescriptor(out, 'ConnectionString');
    const asText: unknown = connection === undefined ? undefined : JSON.parse(safeJson(connection.value));
    if (connection !== undefined && typeof asText === 'string' && asText !== '') {
      const file = path.join(dir, `k${dbCount++}.db`);
      const value = asText.startsWith('sqlite://') ? `sqlite://${file}` : file;
      Object.defineProperty(out, 'ConnectionString', {
        ...connection,
        value: typeof connection.value === 'string' ? value : new String(value),
      });
    }
    return out;
  });

type ExtraKey = [string, unknown, 'value' | 'getter' | 'own__proto__'];

/** Unknown keys, case variants of real keys, and own "__proto__" / "constructor" fields; getters that throw. */
function extraKeyArb(): fc.Arbitrary<ExtraKey> {
  return fc.tuple(
    fc.oneof(
      fc.constantFrom(...KEYS).chain((k) => fc.constantFrom(...nameVariants(k))),
      fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'serviceName', 'Region', 'Metastore '),
      fc.constantFrom(...KEYS),
      hostileString(6),
    ),
    fc.oneof(anyValue, fc.constantFrom<unknown>(null, undefined)),
    fc.constantFrom<ExtraKey[2]>('value', 'value', 'getter', 'own__proto__'),
  );
}

function addKey(target: Record<string, unknown>, name: string, value: unknown, how: ExtraKey[2]): void {
  if (how === 'getter') {
    Object.defineProperty(target, name, { enumerable: true, configurable: true, get: () => { throw new Error('getter threw'); } });
  } else {
    Object.defineProperty(target, how === 'own__proto__' ? '__proto__' : name, { value, enumerable: true, configurable: true, writable: true });
  }
}

/** Is this config one that could reach AWS once used (then no encrypt is made with it)? */
function usesAws(config: unknown): boolean {
  try {
    const c = validateConfig(config);
    return c.Metastore === 'dynamodb' || c.KMS === 'aws';
  } catch {
    return false; // setup() will refuse it too
  }
}

/** A guard on the generators: a config setup() would accept never names a SQLite file outside the temp dir. */
function checkNoFileOutsideTempDir(config: unknown): void {
  let c: AsherahConfig;
  try {
    c = validateConfig(config);
  } catch {
    return; // setup() refuses it before any file is opened
  }
  const file = typeof c.ConnectionString === 'string' ? c.ConnectionString.replace(/^sqlite:\/\//, '') : '';
  if (/sqlite/.test(String(c.Metastore)) && file !== '' && !file.startsWith(dir + path.sep)) {
    throw new Error(`the generator made a SQLite path outside the temp dir: ${JSON.stringify(file)}`);
  }
}

// ---- the round trip -----------------------------------------------------------------------------------------------

const PARTITION = 'partition';

/** setup(config), then (if it was accepted and is local) encrypt and decrypt strings and bytes; always shutdown(). */
async function setupAndRoundTrip(config: unknown): Promise<void> {
  checkNoFileOutsideTempDir(config);
  const accepted = outcomeOf(() => setup(config as AsherahConfig), SETUP_ERRORS);
  try {
    if (!('value' in accepted) || usesAws(config)) return;
    const text = 'round trip ✓';
    const drr = await asyncOutcomeOf(() => encryptStringAsync(PARTITION, text));
    if (!('value' in drr)) throw new Error(`setup() accepted the config but encrypt failed: ${drr.error.name}: ${drr.error.message}`);
    const back = await asyncOutcomeOf(() => decryptStringAsync(PARTITION, drr.value));
    if (!('value' in back) || back.value !== text) {
      throw new Error(`setup() accepted the config but decrypt failed: ${'error' in back ? back.error.message : 'other text'}`);
    }
    const bytes = Buffer.from([0, 1, 2, 255]);
    const again = await decryptAsync(PARTITION, await encryptAsync(PARTITION, bytes));
    if (!again.equals(bytes)) throw new Error('bytes did not round-trip');
  } finally {
    shutdown();
  }
}

// ---- properties ---------------------------------------------------------------------------------------------------

describe('validateConfig', () => {
  test('any value, config-shaped object or JSON text: a typed config or a ConfigError', () => {
    const input = fc.oneof(
      { weight: 4, arbitrary: localConfig },
      { weight: 1, arbitrary: anyValue },
      { weight: 1, arbitrary: fc.json({ maxDepth: 2 }) },
      { weight: 1, arbitrary: localConfig.map(safeJson) },
    );
    fc.assert(
      fc.property(input, (config) => {
        const outcome = outcomeOf(() => validateConfig(config), ['ConfigError']);
        if (!('value' in outcome)) return;
        const c = outcome.value as unknown as Record<string, unknown>;
        for (const key of ['ServiceName', 'ProductID', 'Metastore', 'KMS']) {
          if (typeof c[key] !== 'string' || c[key] === '') throw new Error(`validateConfig accepted a config without ${key}`);
        }
        for (const [key, value] of Object.entries(c)) {
          if (!KEYS.includes(key)) throw new Error(`validateConfig kept the unknown key ${key}`);
          if (value === null || value === undefined) continue;
          const expected = ['EnableRegionSuffix', 'EnableSessionCaching', 'Verbose', 'LegacyKeyIdNames'].includes(key)
            ? 'boolean'
            : ['ExpireAfter', 'CheckInterval', 'SessionCacheMaxSize', 'SessionCacheDuration'].includes(key)
              ? 'number'
              : key === 'RegionMap'
                ? 'object'
                : 'string';
          if (typeof value !== expected) throw new Error(`validateConfig accepted ${key} of type ${typeof value}`);
        }
      }),
      { seed: SEED, numRuns: RUNS.validate },
    );
  });

  test('the cases the properties found stay fixed', () => {
    // Getters and Proxies that throw were a bare Error/TypeError from Object.entries or Array.isArray.
    for (const config of [throwingGetter('ServiceName', BASE), throwingProxy(), revokedProxy(), { ...BASE, RegionMap: revokedProxy() }]) {
      expect(() => validateConfig(config)).toThrow(ConfigError);
    }
    expect(() => validateConfig(throwingProxy())).toThrow(/could not be read/);
    // Inherited fields are not config: they skipped the type checks, and an inherited ConnectionString of the
    // wrong type reached SqliteMetastore (TypeError: connectionString.startsWith is not a function).
    const inherited = Object.create({ ...BASE, Metastore: 'sqlite', ConnectionString: 5 }) as AsherahConfig;
    expect(() => validateConfig(inherited)).toThrow(/config key ServiceName is required/);
    expect(() => setup(inherited)).toThrow(ConfigError);
    // Each field is read once: what is checked is what setup() uses.
    let reads = 0;
    const flipping = { ...BASE, get ExpireAfter() { return reads++ === 0 ? 60 : 0.5; } };
    expect(validateConfig(flipping).ExpireAfter).toBe(60);
    expect(reads).toBe(1);
    // A lone surrogate in a name made a setup() whose every decrypt failed (the DRR's KeyId turns it into U+FFFD).
    for (const name of ['\ud800', 'svc\udc00', 'a\ud83d']) {
      expect(() => validateConfig({ ...BASE, ServiceName: name })).toThrow(/ServiceName must be well-formed Unicode/);
      expect(() => validateConfig({ ...BASE, ProductID: name, LegacyKeyIdNames: true })).toThrow(/ProductID must be well-formed/);
    }
  });
});

describe('setup() then a round trip (Metastore memory / SQLite in a temp dir, KMS static)', () => {
  test('a config setup() accepts encrypts and decrypts; any other is a named error', async () => {
    await fc.assert(fc.asyncProperty(localConfig, setupAndRoundTrip), { seed: SEED, numRuns: RUNS.setup });
  });

  test('config as JSON text: arbitrary, and mutations of a valid config text', async () => {
    const valid = JSON.stringify({ ...BASE, ExpireAfter: 3600, CheckInterval: 60, SessionCacheMaxSize: 10, LegacyKeyIdNames: false });
    const text = fc.oneof(
      fc.array(textEdit, { minLength: 1, maxLength: 3 }).map((edits) => applyTextEdits(valid, edits)),
      localConfig.map(safeJson),
      fc.json({ maxDepth: 2 }),
    );
    await fc.assert(fc.asyncProperty(text, setupAndRoundTrip), { seed: SEED, numRuns: RUNS.setupText });
  });

  test('boundary numbers in each duration and size key', async () => {
    for (const key of ['ExpireAfter', 'CheckInterval', 'SessionCacheMaxSize', 'SessionCacheDuration']) {
      for (const value of BOUNDARY_NUMBERS) await setupAndRoundTrip({ ...BASE, [key]: value });
    }
  });
});

describe('setup() with Metastore "dynamodb" or KMS "aws" (no request is ever made)', () => {
  test('a named error, or an accepted config that is shut down unused', async () => {
    const region = fc.oneof(fc.constantFrom('us-west-2', 'eu-central-1', 'us-gov-east-1'), hostileString(8), anyValue);
    const awsConfig = fc
      .record(
        {
          ServiceName: fc.constantFrom('service', 'eu_billing'),
          ProductID: fc.constantFrom('product', 'us-west-2'),
          Metastore: fc.constantFrom('memory', 'dynamodb'),
          KMS: fc.constantFrom('test-debug-static', 'aws'),
          DynamoDBRegion: region,
          DynamoDBEndpoint: fc.oneof(fc.constantFrom('http://127.0.0.1:9', 'not a url', '', 'http://[::1'), hostileString(8), anyValue),
          DynamoDBTableName: fc.oneof(fc.constantFrom('EncryptionKey', 'a', 'x'.repeat(256)), hostileString(8), anyValue),
          EnableRegionSuffix: fc.oneof(fc.boolean(), anyValue),
          LegacyKeyIdNames: fc.boolean(),
          RegionMap: fc.oneof(
            fc.dictionary(fc.oneof(region.filter((r): r is string => typeof r === 'string'), fc.constant('__proto__')), fc.oneof(
              fc.constantFrom('arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab', ''),
              anyValue,
            ), { maxKeys: 3 }),
            anyValue,
          ),
          PreferredRegion: region,
        },
        { requiredKeys: ['ServiceName', 'ProductID', 'Metastore', 'KMS'] },
      );
    // setupAndRoundTrip makes no encrypt with a config that uses AWS; a local one must round-trip.
    await fc.assert(fc.asyncProperty(awsConfig, setupAndRoundTrip), { seed: SEED, numRuns: RUNS.aws });
  });
});

describe('SessionFactory.fromConfig options.timeouts and AwsKms budgets (no request is ever made)', () => {
  test('any value of timeouts or of a field: a factory whose clients are built, or a ConfigError naming the option', async () => {
    const field = fc.oneof(fc.constantFrom(1, 2000, 600_000, 600_001, 10, 11), hostileNumber, anyValue);
    const service = fc.oneof(
      fc.record(
        { connectionTimeoutMs: field, requestTimeoutMs: field, maxAttempts: field },
        { requiredKeys: [] },
      ),
      fc.dictionary(hostileString(8), field, { maxKeys: 3 }),
      anyValue,
    );
    const timeouts = fc.oneof(fc.record({ dynamodb: service, kms: service }, { requiredKeys: [] }), anyValue);
    const config: AsherahConfig = {
      ...BASE,
      Metastore: 'dynamodb',
      DynamoDBRegion: 'us-west-2',
      DynamoDBEndpoint: 'http://127.0.0.1:9',
      KMS: 'aws' as const,
      RegionMap: { 'us-west-2': 'arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab' },
    };
    let built = 0;
    await fc.assert(
      fc.asyncProperty(timeouts, async (value) => {
        const outcome = outcomeOf(() => SessionFactory.fromConfig(config, { timeouts: value as never }), ['ConfigError']);
        if ('error' in outcome) {
          if (!/timeouts/.test(outcome.error.message)) throw new Error(`a timeouts ConfigError that names no option: ${outcome.error.message}`);
          return;
        }
        built++;
        await outcome.value.close();
      }),
      { seed: SEED, numRuns: RUNS.aws },
    );
    expect(built).toBeGreaterThan(50);
  });

  test("AwsKms's regionTimeoutMs and skipFailedRegionMs: any value is accepted in range or a ConfigError", () => {
    const secrets = new SecretFactory();
    const regionMap = { 'us-west-2': 'arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab' };
    const clients = { 'us-west-2': { send: () => Promise.reject(new Error('no request in this test')) } as never };
    try {
      fc.assert(
        fc.property(fc.oneof(hostileNumber, anyValue), fc.oneof(hostileNumber, anyValue), (regionTimeoutMs, skipFailedRegionMs) => {
          const outcome = outcomeOf(
            () => new AwsKms({ regionMap, clients, secrets, regionTimeoutMs: regionTimeoutMs as never, skipFailedRegionMs: skipFailedRegionMs as never }),
            ['ConfigError'],
          );
          if ('value' in outcome) outcome.value.close();
        }),
        { seed: SEED, numRuns: RUNS.aws },
      );
    } finally {
      secrets.close();
    }
  });
});
