/**
 * The function's configuration: its own settings (config.ts), and the SessionFactory it builds through the layer's
 * SessionFactory.fromEnv (factory.ts), whose env rules test/unit/appencryption/from-env.test.ts covers in full.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, ENV_DEFAULTS, SessionFactory, SqliteMetastore, StaticKms } from '../../layer/src/index';
import { loadConfig } from '../../functions/encrypt-decrypt/config';
import { createFactory } from '../../functions/encrypt-decrypt/factory';

describe('function config', () => {
  let dir: string;
  const quiet = { warn: () => undefined };
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** The factory the function builds from `env`, with its working directory in `dir`. */
  const build = (env: NodeJS.ProcessEnv) => createFactory(loadConfig(env, dir), quiet, env);

  test('its own settings: .local/ under the working directory, the pre-warm list', () => {
    expect(loadConfig({ ASHERAH_PREWARM_PARTITIONS: 'a, b,,c' }, dir)).toEqual({
      developmentDir: path.join(dir, '.local'),
      prewarmPartitions: ['a', 'b', 'c'],
    });
  });

  test('the function builds through SessionFactory.fromEnv, with its development directory and its logger', async () => {
    const fromEnv = jest.spyOn(SessionFactory, 'fromEnv');
    try {
      const env = { ASHERAH_SQLITE_PATH: path.join(dir, 'k.db'), ASHERAH_STATIC_MASTER_KEY_HEX: '11'.repeat(32) };
      const factory = createFactory(loadConfig(env, dir), quiet, env);
      expect(fromEnv).toHaveBeenCalledWith(env, { developmentDir: path.join(dir, '.local'), logger: quiet });
      expect(factory).toBe(fromEnv.mock.results[0].value);
      await factory.close();
    } finally {
      fromEnv.mockRestore();
    }
  });

  test('with nothing set: SQLite under .local/ and a development key generated once, mode 0600', async () => {
    const warnings: unknown[] = [];
    const factory = createFactory(loadConfig({}, dir), { warn: (message, details) => warnings.push({ message, details }) }, {});
    try {
      expect(factory).toBeInstanceOf(SessionFactory);
      expect(factory.adapters.metastore).toBeInstanceOf(SqliteMetastore);
      expect(factory.adapters.kms).toBeInstanceOf(StaticKms);
      expect(warnings).toEqual([{ message: expect.stringContaining('static master key'), details: { source: 'generated' } }]);
      const drr = await factory.getSession('p').encrypt('x');
      expect(drr.key.parentKeyMeta?.keyId).toBe(`_IK_p_${ENV_DEFAULTS.serviceName}_${ENV_DEFAULTS.productId}`);
      expect(statSync(path.join(dir, '.local', 'metastore.db')).isFile()).toBe(true);
    } finally {
      await factory.close();
    }
    const keyFile = path.join(dir, '.local', 'dev-master-key.hex');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const key = readFileSync(keyFile, 'utf8');
    await build({}).close();
    expect(readFileSync(keyFile, 'utf8')).toBe(key);
  });

  test('names that can make key ids collide are refused, naming the variable and the opt-in', async () => {
    expect(() => build({ ASHERAH_SERVICE_NAME: 'eu_billing' })).toThrow(ConfigError);
    expect(() => build({ ASHERAH_SERVICE_NAME: 'eu_billing' })).toThrow(
      /ASHERAH_SERVICE_NAME "eu_billing" contains "_".*ASHERAH_LEGACY_KEY_ID_NAMES=true/,
    );
    expect(() => build({ ASHERAH_PRODUCT_ID: 'eu-west-1' })).toThrow(/ASHERAH_PRODUCT_ID "eu-west-1" has the shape/);
    const legacy = build({ ASHERAH_SERVICE_NAME: 'eu_billing', ASHERAH_LEGACY_KEY_ID_NAMES: 'true' });
    try {
      expect((await legacy.getSession('acme').encrypt('x')).key.parentKeyMeta?.keyId).toBe('_IK_acme_eu_billing_encrypt-decrypt');
    } finally {
      await legacy.close();
    }
  });

  test.each([
    [{ ASHERAH_METASTORE: 'mysql' }, /ASHERAH_METASTORE must be "sqlite" or "dynamodb"/],
    [{ ASHERAH_KMS: 'vault' }, /ASHERAH_KMS must be "static" or "aws"/],
    [{ ASHERAH_REGION_SUFFIX: 'yes' }, /ASHERAH_REGION_SUFFIX must be "true" or "false"/],
    [{ AWS_LAMBDA_FUNCTION_NAME: 'f', AWS_REGION: 'us-west-2' }, /set ASHERAH_KMS_KEY_ARN/],
    [{ ASHERAH_KMS: 'aws', ASHERAH_REGION_MAP: '{bad' }, /ASHERAH_REGION_MAP must be JSON/],
    [{ ASHERAH_KMS: 'aws', ASHERAH_REGION_MAP: '{"us-west-2": 5}' }, /must be a key ARN/],
    [
      { ASHERAH_KMS: 'aws', ASHERAH_REGION_MAP: '{"us-west-2":"arn:aws:kms:us-west-2:1:key/a","us-east-1":"arn:aws:kms:us-east-1:1:key/b"}' },
      /ASHERAH_PREFERRED_REGION is required/,
    ],
    [{ AWS_LAMBDA_FUNCTION_NAME: 'f', ASHERAH_KMS: 'static' }, /for local development only/],
  ])('%j is a ConfigError that names the variable', (env, message) => {
    expect(() => build(env)).toThrow(ConfigError);
    expect(() => build(env)).toThrow(message);
  });
});
