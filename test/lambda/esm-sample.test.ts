/**
 * The ES module sample (functions/esm-sample/handler.mts), bundled as docs/using-the-layer.md says (esbuild, format
 * esm, asherah-layer and @aws-sdk/* external) and run as Lambda runs it: handler.mjs in a /var/task-like folder,
 * the layer zip unzipped in an /opt-like one, Lambda's NODE_PATH, a runtime that imports the module and polls a
 * local Runtime API; DynamoDB on dynalite, AWS KMS on the KMS-protocol server. Beside it, the naive bare import,
 * which the doc says fails.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { buildSync } from 'esbuild';
import { DUMMY_CREDENTIALS_ENV, TEST_REGION } from '../../scripts/local-aws/dynalite';
import { prepareTaskArtifacts, startFunction, type Artifacts, type RunningFunction } from '../support/lambda-artifacts';
import { useLocalAws } from '../support/local-aws';

const ROOT = path.resolve(__dirname, '..', '..');
const PAYLOAD = Buffer.from('hello from an ES module').toString('base64');

/** The sample as a deployment would bundle it (the settings docs/using-the-layer.md gives). */
function bundleSample(): string {
  const result = buildSync({
    absWorkingDir: ROOT,
    entryPoints: ['functions/esm-sample/handler.mts'],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    external: ['asherah-layer', '@aws-sdk/*'],
    write: false,
    outfile: 'handler.mjs',
    logLevel: 'warning',
  });
  return result.outputFiles[0]!.text;
}

// What an ES module handler that imports the layer by name bundles to (esbuild keeps an external import as it is).
const NAIVE = `import { SessionFactory } from 'asherah-layer';\nexport const handler = async () => typeof SessionFactory;\n`;

describe('the ES module sample in a Lambda-like runtime', () => {
  let bundle: string;
  let artifacts: Artifacts;
  let fn: RunningFunction | undefined;

  beforeAll(() => {
    bundle = bundleSample();
    artifacts = prepareTaskArtifacts({ 'handler.mjs': bundle, 'naive.mjs': NAIVE });
  }, 120_000);
  afterEach(async () => {
    await fn?.stop();
    fn = undefined;
  });
  afterAll(() => {
    artifacts?.dispose();
  });
  // After the hooks above: started once the artifacts are laid out.
  const aws = useLocalAws();

  const env = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({
    ...DUMMY_CREDENTIALS_ENV,
    AWS_REGION: TEST_REGION,
    _HANDLER: 'handler.handler',
    ASHERAH_DYNAMODB_ENDPOINT: aws.dynamo.endpoint, // inside Lambda, fromEnv's metastore is DynamoDB
    ...extra,
  });

  const keyIds = async () => {
    const { Items } = await aws.dynamo.client().send(new ScanCommand({ TableName: 'EncryptionKey' }));
    return (Items ?? []).map((item) => item.Id!.S!).sort();
  };

  const roundTrip = async (running: RunningFunction, partition: string) => {
    const encrypted = await running.invoke({ Partition: partition, Payload: PAYLOAD });
    expect(encrypted).toMatchObject({ ok: true, body: { DRR: { Key: { ParentKeyMeta: { KeyId: expect.stringContaining(partition) } } } } });
    const decrypted = await running.invoke({ Partition: partition, DRR: (encrypted.body as { DRR: unknown }).DRR });
    expect(decrypted).toMatchObject({ ok: true, body: { Payload: PAYLOAD } });
  };

  test('the bundle reaches the layer through createRequire, not an import, and holds none of the layer\'s code', () => {
    expect(bundle).toMatch(/createRequire\(import\.meta\.url\)/);
    expect(bundle).not.toMatch(/from\s*["']asherah-layer["']|import\(\s*["']asherah-layer["']/);
    expect(bundle).not.toContain('class SessionFactory');
  });

  test('static KMS: INIT pre-warms the keys before the first event; encrypt then decrypt; koffi loads from the layer', async () => {
    fn = await startFunction(artifacts, env({
      ASHERAH_KMS: 'static',
      ASHERAH_ALLOW_STATIC_KMS: 'true',
      ASHERAH_STATIC_MASTER_KEY_HEX: randomBytes(32).toString('hex'),
      ASHERAH_PREWARM_PARTITIONS: 'partition-1',
    }));
    await fn.initDone();
    // Nothing has been invoked yet, and the keys are in the metastore: the top-level await held INIT.
    expect(await keyIds()).toEqual(['_IK_partition-1_asherah-starter_encrypt-decrypt', '_SK_asherah-starter_encrypt-decrypt']);

    await roundTrip(fn, 'partition-1');

    const maps = readFileSync(`/proc/${fn.process.pid}/maps`, 'utf8');
    const koffi = maps.split('\n').find((line) => line.endsWith('koffi.node'));
    expect(koffi).toContain(path.join(artifacts.optRoot, 'nodejs', 'node_modules'));
  });

  test('AWS KMS, as the stack deploys it: the pre-warm\'s GenerateDataKey happens in INIT, and no KMS call after', async () => {
    aws.kms.resetCounts();
    fn = await startFunction(artifacts, env({
      ASHERAH_PRODUCT_ID: 'esm-sample', // other key ids than the static-key test's
      ASHERAH_KMS_KEY_ARN: aws.arn,
      ASHERAH_KMS_ENDPOINT: aws.kms.endpoint,
      ASHERAH_PREWARM_PARTITIONS: 'tenant-1',
    }));
    await fn.initDone();
    expect(aws.kms.requests).toEqual({ GenerateDataKey: 1, Encrypt: 0, Decrypt: 0 });
    await roundTrip(fn, 'tenant-1');
    expect(aws.kms.requests).toEqual({ GenerateDataKey: 1, Encrypt: 0, Decrypt: 0 });
  });

  test('a bad event comes back with its error class', async () => {
    fn = await startFunction(artifacts, env({ ASHERAH_KMS: 'static', ASHERAH_ALLOW_STATIC_KMS: 'true', ASHERAH_STATIC_MASTER_KEY_HEX: 'ab'.repeat(32) }));
    await fn.initDone();
    expect(await fn.invoke({ Partition: 'p', Payload: 'not base64!' })).toMatchObject({
      ok: false,
      body: { errorType: 'EventValidationError', errorMessage: 'Payload must be standard base64' },
    });
  });

  test('the naive `import … from \'asherah-layer\'` fails INIT with ERR_MODULE_NOT_FOUND, NODE_PATH notwithstanding', async () => {
    fn = await startFunction(artifacts, env({ _HANDLER: 'naive.handler' }));
    await expect(fn.initDone()).rejects.toThrow(/exited \(1\) during INIT/);
    const naive = path.join(artifacts.taskRoot, 'naive.mjs');
    expect(fn.api.initError).toEqual({ errorType: 'Error', errorMessage: expect.stringContaining(`Cannot find package 'asherah-layer' imported from ${naive}`) });

    // The runtime reports only the message; the same import, in the same layout, carries Node's code.
    const optModules = path.join(artifacts.optRoot, 'nodejs', 'node_modules');
    const code = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', `import(${JSON.stringify(pathToFileURL(naive).href)}).then(() => console.log('loaded'), (err) => console.log(err.code))`],
      { cwd: artifacts.taskRoot, encoding: 'utf8', env: { PATH: process.env.PATH, NODE_PATH: [optModules, artifacts.runtimeModules].join(path.delimiter) } },
    );
    expect(code.trim()).toBe('ERR_MODULE_NOT_FOUND');
  });
});
