/**
 * The zip and the bundle work in Lambda's layout: the function asset under a /var/task-like folder, the layer
 * under an /opt-like folder, Lambda's NODE_PATH, a runtime polling a local Runtime API; DynamoDB on dynalite and
 * AWS KMS on the KMS-protocol server. Proves the layer package resolves by name from the CommonJS bundle, koffi's
 * native binary loads from the layer, and INIT waits for the pre-warm before the first event.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DUMMY_CREDENTIALS_ENV, TEST_REGION } from '../../scripts/local-aws/dynalite';
import { prepareArtifacts, startFunction, type Artifacts, type RunningFunction } from '../support/lambda-artifacts';
import { useLocalAws } from '../support/local-aws';

describe('built artifacts in a Lambda-like runtime', () => {
  let artifacts: Artifacts;
  let fn: RunningFunction | undefined;

  beforeAll(() => {
    artifacts = prepareArtifacts();
  }, 120_000);
  afterAll(async () => {
    await fn?.stop();
    artifacts?.dispose();
  });
  // After the hooks above: started once the artifacts are laid out, stopped once the function is.
  const aws = useLocalAws();

  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    ...DUMMY_CREDENTIALS_ENV,
    AWS_REGION: TEST_REGION,
    ASHERAH_METASTORE: 'dynamodb',
    ASHERAH_DYNAMODB_ENDPOINT: aws.dynamo.endpoint,
    ASHERAH_KMS_KEY_ARN: aws.arn,
    ASHERAH_KMS_ENDPOINT: aws.kms.endpoint,
    ...extra,
  });

  test('INIT pre-warms the keys before the first event; encrypt then decrypt; koffi loads from the layer', async () => {
    fn = await startFunction(artifacts, env({ ASHERAH_PREWARM_PARTITIONS: 'partition-1' }));
    await fn.initDone();
    // Nothing has been invoked yet, and the keys already exist: INIT waited for the pre-warm.
    expect(aws.kms.requests.GenerateDataKey).toBe(1);

    const encrypted = await fn.invoke({ Name: 'e', Partition: 'partition-1', Payload: 'bXlzdXBlcnNlY3JldHRleHQ=' });
    expect(encrypted.ok).toBe(true);
    const body = encrypted.body as { DRR: { Key: { ParentKeyMeta: { KeyId: string } } }; Metrics: Record<string, unknown> };
    expect(body.DRR.Key.ParentKeyMeta.KeyId).toBe('_IK_partition-1_asherah-starter_encrypt-decrypt');
    // The running counts include INIT's two misses (SK, IK); the event itself hit the cache.
    expect(body.Metrics).toMatchObject({ ColdStart: true, InvocationCount: 1, CacheHits: 1, CacheMisses: 2 });

    const decrypted = await fn.invoke({ Partition: 'partition-1', DRR: body.DRR });
    expect(decrypted.body).toMatchObject({
      Payload: 'bXlzdXBlcnNlY3JldHRleHQ=',
      Metrics: { ColdStart: false, InvocationCount: 2, CacheMisses: 2, MetastoreCalls: body.Metrics.MetastoreCalls },
    });
    expect(aws.kms.requests).toEqual({ GenerateDataKey: 1, Encrypt: 0, Decrypt: 0 });

    // The native FFI binary mapped into the runtime process is the layer's linux x64 build.
    const maps = readFileSync(`/proc/${fn.process.pid}/maps`, 'utf8');
    const koffi = maps.split('\n').find((line) => line.endsWith('koffi.node'));
    expect(koffi).toContain(path.join(artifacts.optRoot, 'nodejs', 'node_modules'));
    await fn.stop();
    fn = undefined;
  });

  test('a bad event comes back as Lambda reports errors: errorType is the error class', async () => {
    fn = await startFunction(artifacts, env());
    await fn.initDone();
    const result = await fn.invoke({ Partition: 'p' });
    expect(result).toMatchObject({
      ok: false,
      body: { errorType: 'EventValidationError', errorMessage: 'the event must contain a Payload (for encryption) or a DRR (for decryption)' },
    });
    await fn.stop();
    fn = undefined;
  });

  test('a configuration error fails INIT with its class, before any event', async () => {
    fn = await startFunction(artifacts, env({ ASHERAH_KMS: 'static' }));
    await fn.initDone();
    const result = await fn.invoke({ Partition: 'p', Payload: 'aGk=' });
    expect(result.body).toMatchObject({ errorType: 'ConfigError', errorMessage: expect.stringContaining('for local development only') });
    await fn.stop();
    fn = undefined;
  });
});
