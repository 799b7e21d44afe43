import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ConfigError,
  CryptoPolicy,
  decryptAsync,
  decryptStringAsync,
  encryptAsync,
  encryptStringAsync,
  getSessionFactory,
  setup,
  setupAsync,
  shutdown,
  shutdownAsync,
  type AsherahConfig,
} from '../../../layer/src/index';

const base: AsherahConfig = { ServiceName: 'service', ProductID: 'product', Metastore: 'memory', KMS: 'test-debug-static' };

describe('asherah-node compatible functions', () => {
  afterEach(() => shutdown());

  test('setup, encrypt and decrypt bytes and strings, shutdown', async () => {
    setup(base);
    const drr = await encryptAsync('partition', Buffer.from([1, 2, 3]));
    expect(JSON.parse(drr)).toHaveProperty('Key.ParentKeyMeta.KeyId', '_IK_partition_service_product');
    expect([...(await decryptAsync('partition', drr))]).toEqual([1, 2, 3]);
    const text = await encryptStringAsync('partition', 'héllo');
    expect(await decryptStringAsync('partition', text)).toBe('héllo');
    await shutdownAsync();
    await expect(encryptAsync('partition', Buffer.from('x'))).rejects.toThrow(/setup\(\) has not been called/);
  });

  test('setup twice is an error until shutdown', async () => {
    await setupAsync(base);
    expect(() => setup(base)).toThrow(/already called/);
    shutdown();
    expect(() => setup(base)).not.toThrow();
  });

  test('the SQLite metastore and a static master key from hex', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'api-'));
    try {
      const config: AsherahConfig = {
        ...base,
        Metastore: 'sqlite',
        ConnectionString: path.join(dir, 'k.db'),
        KMS: 'static',
        StaticMasterKeyHex: '22'.repeat(32),
        ExpireAfter: 3600,
        CheckInterval: 60,
        EnableSessionCaching: false,
      };
      setup(config);
      const drr = await encryptStringAsync('p', 'persisted');
      shutdown();
      setup(config);
      expect(await decryptStringAsync('p', drr)).toBe('persisted');
      expect(getSessionFactory()!.metrics().kmsDecryptKeyCalls).toBe(1);
      shutdown();
      setup({ ...config, StaticMasterKeyHex: '33'.repeat(32) });
      await expect(decryptStringAsync('p', drr)).rejects.toThrow(/another master key/);
    } finally {
      shutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('LegacyKeyIdNames keeps names that upstream accepts, for deployments whose records already use them', async () => {
    setup({ ...base, ServiceName: 'eu_billing', ProductID: 'my_product', LegacyKeyIdNames: true });
    try {
      const drr = JSON.parse(await encryptStringAsync('acme', 'x'));
      expect(drr.Key.ParentKeyMeta.KeyId).toBe('_IK_acme_eu_billing_my_product');
      expect(await decryptStringAsync('acme', JSON.stringify(drr))).toBe('x');
    } finally {
      await shutdownAsync();
    }
  });

  test('an ExpireAfter below a minute, in whole seconds, still encrypts and decrypts', async () => {
    setup({ ...base, ExpireAfter: 30 });
    try {
      expect(await decryptStringAsync('p', await encryptStringAsync('p', 'short-lived keys'))).toBe('short-lived keys');
    } finally {
      await shutdownAsync();
    }
    expect(() => new CryptoPolicy({ expireAfterSeconds: 0.5 })).toThrow(/expireAfterSeconds must be a whole number of seconds/);
    expect(() => new CryptoPolicy({ intermediateKeyCacheMaxSize: 2.5 })).toThrow(/must be a positive integer/);
  });

  test.each([
    [{ ...base, ServiceName: '' }, /ServiceName is required/],
    [{ ...base, Metastore: undefined }, /Metastore is required/],
    [{ ...base, Metastore: 'rdbms' }, /Metastore must be/],
    [{ ...base, KMS: 'static' }, /StaticMasterKeyHex is required/],
    [{ ...base, KMS: 'static', StaticMasterKeyHex: 'abc' }, /64 hexadecimal/],
    [{ ...base, ExpireAfter: '90d' }, /ExpireAfter must be a number, got string/],
    [{ ...base, CheckInterval: -1 }, /CheckInterval must be a positive number/],
    [{ ...base, ExpireAfter: 0.5 }, /config key ExpireAfter must be a whole number of seconds, at least 1/],
    [{ ...base, ExpireAfter: 59.9 }, /ExpireAfter must be a whole number of seconds/],
    [{ ...base, serviceName: 'x' }, /unknown config key "serviceName"; did you mean ServiceName\?/],
    [{ ...base, Metastore: 'sqlite' }, /ConnectionString is required/],
    ['{not json', /not valid JSON/],
    [{ ...base, ServiceName: 'eu_billing' }, /config key ServiceName "eu_billing" contains "_".*LegacyKeyIdNames: true/],
    [{ ...base, ProductID: 'us-west-2' }, /config key ProductID "us-west-2" has the shape of an AWS region name/],
    [{ ...base, LegacyKeyIdNames: 'yes' }, /LegacyKeyIdNames must be a boolean/],
  ])('a bad config is a ConfigError naming the key (%#)', (config, message) => {
    expect(() => setup(config as AsherahConfig)).toThrow(ConfigError);
    expect(() => setup(config as AsherahConfig)).toThrow(message);
    expect(getSessionFactory()).toBeUndefined();
  });
});
