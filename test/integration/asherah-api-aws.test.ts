/**
 * The asherah-node compatible functions with Metastore "dynamodb" and KMS "aws", on dynalite and the KMS-protocol
 * test server: the clients are made by setup from the config keys and the standard AWS environment.
 */
import {
  decryptStringAsync,
  encryptStringAsync,
  getSessionFactory,
  setup,
  shutdownAsync,
  type AsherahConfig,
} from '../../layer/src/index';
import { DUMMY_CREDENTIALS_ENV, startDynalite, type LocalDynamoDb } from '../../scripts/local-aws/dynalite';
import { keyArn, KmsServer } from '../../scripts/local-aws/kms-server';

describe('setup with DynamoDB and AWS KMS', () => {
  let dynamo: LocalDynamoDb;
  let kms: KmsServer;
  const saved = { ...process.env };

  beforeAll(async () => {
    dynamo = await startDynalite();
    kms = await KmsServer.start({ keys: [keyArn('us-west-2'), keyArn('us-east-1')] });
    Object.assign(process.env, DUMMY_CREDENTIALS_ENV, { AWS_ENDPOINT_URL_KMS: kms.endpoint });
  });
  afterAll(async () => {
    process.env = saved;
    await kms.close();
    await dynamo.close();
  });

  const config = (): AsherahConfig => ({
    ServiceName: 'service',
    ProductID: 'product',
    Metastore: 'dynamodb',
    DynamoDBEndpoint: dynamo.endpoint,
    DynamoDBRegion: 'us-west-2',
    KMS: 'aws',
    RegionMap: { 'us-west-2': keyArn('us-west-2'), 'us-east-1': keyArn('us-east-1') },
    PreferredRegion: 'us-west-2',
  });

  test('records round-trip through clients made from the config, and a new setup reads them back', async () => {
    setup(config());
    const drr = await encryptStringAsync('p1', 'over dynamodb and kms');
    expect(kms.requests).toMatchObject({ GenerateDataKey: 1, Encrypt: 1 });
    await shutdownAsync();
    setup(config());
    expect(await decryptStringAsync('p1', drr)).toBe('over dynamodb and kms');
    expect(getSessionFactory()!.metrics()).toMatchObject({ kmsDecryptKeyCalls: 1, metastoreStores: 0 });
    await shutdownAsync();
  });

  test('EnableRegionSuffix suffixes key ids with DynamoDBRegion', async () => {
    setup({ ...config(), EnableRegionSuffix: true, ServiceName: 'suffixed' });
    const drr = JSON.parse(await encryptStringAsync('p1', 'x'));
    expect(drr.Key.ParentKeyMeta.KeyId).toBe('_IK_p1_suffixed_product_us-west-2');
    await shutdownAsync();
  });

  test('KMS "aws" without RegionMap, or with two regions and no PreferredRegion, is a ConfigError', () => {
    expect(() => setup({ ...config(), RegionMap: undefined })).toThrow(/RegionMap is required/);
    expect(() => setup({ ...config(), PreferredRegion: undefined })).toThrow(/PreferredRegion|preferred/i);
    expect(getSessionFactory()).toBeUndefined();
  });
});
