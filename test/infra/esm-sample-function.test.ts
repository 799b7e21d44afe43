/**
 * The ES module sample (functions/esm-sample/handler.mts) as the starter stack deploys it: one synth with the
 * sample really bundled by esbuild, so the asset is checked as well as the template. The asset is loaded the way
 * Lambda loads it, with a stand-in asherah-layer on NODE_PATH: test/lambda/esm-sample.test.ts runs the same
 * source against the real layer.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Stage } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { addStarterStack } from '../../infra/asherah-app';
import { AsherahStack } from '../../infra/asherah-stack';
import { layerZip, SKIP_BUNDLING, testApp } from '../support/cdk';
import { actions, FUNCTION_ACTIONS, functionResources, logicalId, type FunctionResources } from './function-resources';

let stack: AsherahStack;
let template: Template;
let assemblyDir: string;
let sample: FunctionResources;
let encryptDecrypt: FunctionResources;

beforeAll(() => {
  stack = addStarterStack(testApp(), layerZip());
  template = Template.fromStack(stack);
  assemblyDir = Stage.of(stack)!.synth().directory; // the assembly Template.fromStack made (synth is cached)
  sample = functionResources(template, stack, stack.esmSampleFunction!);
  encryptDecrypt = functionResources(template, stack, stack.function);
});

const id = (construct: { node: { defaultChild?: unknown } }) => logicalId(stack, construct);

describe('the ES module sample function', () => {
  test('is EsmSampleFunction, with the encrypt/decrypt function\'s runtime, architecture, memory and timeout', () => {
    expect(sample.id).toMatch(/^EsmSampleFunction[0-9A-F]{8}$/);
    const shared = ['Runtime', 'Architectures', 'MemorySize', 'Timeout'];
    const pick = (props: Record<string, unknown>) => Object.fromEntries(shared.map((k) => [k, props[k]]));
    expect(pick(sample.fn.Properties)).toEqual({ Runtime: 'nodejs22.x', Architectures: ['arm64'], MemorySize: 512, Timeout: 10 });
    expect(pick(sample.fn.Properties)).toEqual(pick(encryptDecrypt.fn.Properties));
  });

  test('enters through index.handler, the handler export of the index.mjs bundle', () => {
    expect(sample.fn.Properties.Handler).toBe('index.handler');
  });

  test('uses the layer', () => {
    expect(sample.fn.Properties.Layers).toEqual([{ Ref: id(stack.layer) }]);
  });

  test('has the key store\'s environment, the encrypt/decrypt function\'s (same keys, so each decrypts the other\'s records)', () => {
    const variables = (fn: FunctionResources) => (fn.fn.Properties.Environment as { Variables: unknown }).Variables;
    expect(variables(sample)).toEqual({
      ASHERAH_SERVICE_NAME: 'asherah-starter',
      ASHERAH_PRODUCT_ID: 'encrypt-decrypt',
      ASHERAH_METASTORE: 'dynamodb',
      ASHERAH_METASTORE_TABLE_NAME: { Ref: id(stack.table) },
      ASHERAH_REGION_SUFFIX: 'false',
      ASHERAH_KMS: 'aws',
      ASHERAH_KMS_KEY_ARN: { 'Fn::GetAtt': [id(stack.key), 'Arn'] },
    });
    expect(variables(sample)).toEqual(variables(encryptDecrypt));
  });

  test('logs to a log group of its own, kept for 30 days and deleted with the stack', () => {
    expect(sample.logGroup.Type).toBe('AWS::Logs::LogGroup');
    expect(sample.logGroup.Properties.RetentionInDays).toBe(30);
    expect(sample.logGroup.DeletionPolicy).toBe('Delete');
    expect(sample.logGroupId).not.toBe(encryptDecrypt.logGroupId);
  });

  test('runs as a role of its own with no managed policies', () => {
    expect(sample.role.Type).toBe('AWS::IAM::Role');
    expect(sample.roleId).not.toBe(encryptDecrypt.roleId);
    expect(sample.role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(sample.role.Properties.Policies).toBeUndefined();
  });
});

describe('IAM of the ES module sample', () => {
  test('grants exactly the six KMS and DynamoDB actions of grantEncryptDecrypt, and its own two for logs', () => {
    expect(sample.statements.every((s) => s.Effect === 'Allow')).toBe(true);
    expect(sample.statements.flatMap(actions).sort()).toEqual(FUNCTION_ACTIONS);
  });

  test('on this stack\'s key, its table and its own log group only', () => {
    expect(sample.statementFor('kms:').Resource).toEqual({ 'Fn::GetAtt': [id(stack.key), 'Arn'] });
    expect(sample.statementFor('dynamodb:').Resource).toEqual({ 'Fn::GetAtt': [id(stack.table), 'Arn'] });
    expect(sample.statementFor('logs:').Resource).toEqual({ 'Fn::GetAtt': [sample.logGroupId, 'Arn'] });
  });

  test('the output EsmSampleFunctionName names it', () => {
    expect(template.findOutputs('EsmSampleFunctionName').EsmSampleFunctionName!.Value).toEqual({ Ref: sample.id });
  });
});

describe('the ES module sample asset', () => {
  const assetDir = () => path.join(assemblyDir, sample.fn.Metadata!['aws:asset:path'] as string);
  const code = () => readFileSync(path.join(assetDir(), 'index.mjs'), 'utf8');

  test('is the one esbuild bundle index.mjs, a few KB', () => {
    expect(readdirSync(assetDir())).toEqual(['index.mjs']);
    expect(code().length).toBeLessThan(4 * 1024);
  });

  test('is an ES module that gets asherah-layer through createRequire, and inlines neither it nor the AWS SDK', () => {
    expect(code()).toMatch(/^import\s*\{\s*createRequire as (\w+)\s*\}\s*from\s*"node:module";/);
    expect(code()).toMatch(/\(import\.meta\.url\)/);
    expect(code()).toMatch(/\("asherah-layer"\)/);
    expect(code()).toMatch(/export\s*\{\s*\w+ as handler\s*\};\s*$/);
    expect(code()).not.toMatch(/from\s*"asherah-layer"|import\(\s*"asherah-layer"/); // ES module resolution skips NODE_PATH
    expect(code()).not.toMatch(/\bclass (SessionFactory|MemlockLimitError)\b/);
    expect(code()).not.toContain('DynamoDB_20120810');
    expect(code()).not.toContain('TrentService');
  });

  test('loads as Lambda loads it: asherah-layer from the layer folder on NODE_PATH, pre-warmed before the first event', () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'esm-sample-asset-'));
    try {
      // /var/task with the asset alone; /opt/nodejs/node_modules with a stand-in asherah-layer that records its calls.
      const taskRoot = path.join(tmp, 'task');
      const optModules = path.join(tmp, 'opt', 'nodejs', 'node_modules');
      mkdirSync(taskRoot);
      mkdirSync(path.join(optModules, 'asherah-layer'), { recursive: true });
      copyFileSync(path.join(assetDir(), 'index.mjs'), path.join(taskRoot, 'index.mjs'));
      writeFileSync(path.join(optModules, 'asherah-layer', 'index.js'), STAND_IN_LAYER);

      const run = `const m = await import(${JSON.stringify(pathToFileURL(path.join(taskRoot, 'index.mjs')).href)});
        const prewarmedAtInit = [...globalThis.standIn.prewarmed];
        const response = await m.handler({ Partition: 'tenant-1', Payload: Buffer.from('hi').toString('base64') });
        console.log(JSON.stringify({ prewarmedAtInit, response, closed: globalThis.standIn.closed }));`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', run], {
        cwd: taskRoot,
        encoding: 'utf8',
        env: { PATH: process.env.PATH, NODE_PATH: optModules },
      });
      expect(JSON.parse(out)).toEqual({
        prewarmedAtInit: ['tenant-1'],
        response: { DRR: { partition: 'tenant-1', plaintext: 'hi' } },
        closed: 1,
      });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

// Just what the sample calls, as CommonJS like the real package; it reports through globalThis.standIn.
const STAND_IN_LAYER = `
const standIn = (globalThis.standIn = { prewarmed: [], closed: 0 });
exports.partitionsToPrewarm = () => ['tenant-1'];
exports.SessionFactory = {
  fromEnv: () => ({
    prewarm: async (partitions) => { await new Promise((r) => setTimeout(r, 10)); standIn.prewarmed.push(...partitions); },
    getSession: (partition) => ({
      encrypt: async (bytes) => ({ partition, plaintext: Buffer.from(bytes).toString() }),
      recordSize: (bytes) => 200 + bytes * 2,
      close: () => { standIn.closed++; },
    }),
  }),
};
exports.dataRowRecordToJsonObject = (record) => record;
exports.EventValidationError = class EventValidationError extends Error {};
`;

describe('esmSample: false', () => {
  test('leaves the sample, its log group, role and output out, and the rest as it is', () => {
    const app = testApp(SKIP_BUNDLING);
    const without = new AsherahStack(app, 'WithoutSample', { layerZipPath: layerZip(), esmSample: false });
    const t = Template.fromStack(without);
    expect(without.esmSampleFunction).toBeUndefined();
    t.resourceCountIs('AWS::Lambda::Function', 1);
    t.resourceCountIs('AWS::Logs::LogGroup', 1);
    t.resourceCountIs('AWS::IAM::Role', 1);
    expect(Object.keys(t.findOutputs('*')).sort()).toEqual(['FunctionName', 'KeyArn', 'LayerVersionArn', 'TableName']);
    expect(Object.keys(t.toJSON().Resources as object).filter((r) => r.startsWith('EsmSample'))).toEqual([]);
    expect(logicalId(without, without.function)).toBe('Function76856677');
  });
});
