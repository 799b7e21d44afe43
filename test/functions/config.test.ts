import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../layer/src/index';
import { loadConfig } from '../../functions/encrypt-decrypt/config';

describe('function config', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('with nothing set: SQLite under .local/ and a development key generated once, mode 0600', () => {
    const config = loadConfig({}, dir);
    expect(config).toMatchObject({ metastore: 'sqlite', kms: 'static', staticKeySource: 'generated', inLambda: false });
    expect(config.sqlitePath).toBe(path.join(dir, '.local', 'metastore.db'));
    const keyFile = path.join(dir, '.local', 'dev-master-key.hex');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyFile, 'utf8').trim()).toBe(config.staticMasterKeyHex);
    expect(loadConfig({}, dir).staticMasterKeyHex).toBe(config.staticMasterKeyHex);
  });

  test('names that can make key ids collide are refused, naming the variable and the opt-in', () => {
    expect(() => loadConfig({ ASHERAH_SERVICE_NAME: 'eu_billing' }, dir)).toThrow(ConfigError);
    expect(() => loadConfig({ ASHERAH_SERVICE_NAME: 'eu_billing' }, dir)).toThrow(
      /ASHERAH_SERVICE_NAME "eu_billing" contains "_".*ASHERAH_LEGACY_KEY_ID_NAMES=true/,
    );
    expect(() => loadConfig({ ASHERAH_PRODUCT_ID: 'eu-west-1' }, dir)).toThrow(/ASHERAH_PRODUCT_ID "eu-west-1" has the shape/);
    expect(loadConfig({ ASHERAH_SERVICE_NAME: 'eu_billing', ASHERAH_LEGACY_KEY_ID_NAMES: 'true' }, dir)).toMatchObject({
      serviceName: 'eu_billing',
      legacyKeyIdNames: true,
    });
  });

  test('inside Lambda the defaults are DynamoDB and AWS KMS, and the key ARN is required', () => {
    const env = { AWS_LAMBDA_FUNCTION_NAME: 'f', AWS_REGION: 'us-west-2' };
    expect(() => loadConfig(env, dir)).toThrow(/set ASHERAH_KMS_KEY_ARN/);
    const arn = 'arn:aws:kms:us-west-2:111122223333:key/abc';
    expect(loadConfig({ ...env, ASHERAH_KMS_KEY_ARN: arn, ASHERAH_PREWARM_PARTITIONS: 'a, b,,c' }, dir)).toMatchObject({
      metastore: 'dynamodb',
      kms: 'aws',
      tableName: 'EncryptionKey',
      regionMap: { 'us-west-2': arn },
      preferredRegion: 'us-west-2',
      prewarmPartitions: ['a', 'b', 'c'],
      staticMasterKeyHex: undefined,
    });
  });

  test('a region map needs a preferred region, taken from AWS_REGION when it is in the map', () => {
    const map = JSON.stringify({ 'us-west-2': 'arn:aws:kms:us-west-2:1:key/a', 'us-east-1': 'arn:aws:kms:us-east-1:1:key/b' });
    const base = { ASHERAH_KMS: 'aws', ASHERAH_REGION_MAP: map };
    expect(() => loadConfig(base, dir)).toThrow(/ASHERAH_PREFERRED_REGION is required/);
    expect(loadConfig({ ...base, AWS_REGION: 'us-east-1' }, dir).preferredRegion).toBe('us-east-1');
    expect(loadConfig({ ...base, ASHERAH_PREFERRED_REGION: 'us-west-2' }, dir).preferredRegion).toBe('us-west-2');
  });

  test.each([
    [{ ASHERAH_METASTORE: 'mysql' }, /ASHERAH_METASTORE must be "sqlite" or "dynamodb"/],
    [{ ASHERAH_KMS: 'vault' }, /ASHERAH_KMS must be "static" or "aws"/],
    [{ ASHERAH_REGION_SUFFIX: 'yes' }, /ASHERAH_REGION_SUFFIX must be "true" or "false"/],
    [{ ASHERAH_KMS: 'aws', ASHERAH_REGION_MAP: '{bad' }, /ASHERAH_REGION_MAP must be JSON/],
    [{ ASHERAH_KMS: 'aws', ASHERAH_REGION_MAP: '{"us-west-2": 5}' }, /must be a key ARN/],
    [{ ASHERAH_KMS: 'aws', ASHERAH_KMS_KEY_ARN: 'arn:aws:kms:us-west-2:1:key/a', ASHERAH_REGION_MAP: '{}' }, /non-empty JSON object|not both/],
    [{ AWS_LAMBDA_FUNCTION_NAME: 'f', ASHERAH_KMS: 'static' }, /for local development only/],
  ])('%j is a ConfigError that names the variable', (env, message) => {
    expect(() => loadConfig(env, dir)).toThrow(ConfigError);
    expect(() => loadConfig(env, dir)).toThrow(message);
  });
});
