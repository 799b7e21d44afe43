/**
 * The stack as `cdk synth` makes it (default context): one synth for the whole file, with the function really
 * bundled by esbuild, so the asset it would deploy is checked too. The ES module sample the stack also deploys is
 * in esm-sample-function.test.ts; here it appears only where the whole stack is checked (logical IDs, outputs,
 * cdk-nag).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Stage, type App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import { addStarterStack } from '../../infra/asherah-app';
import type { AsherahStack } from '../../infra/asherah-stack';
import { layerZip, testApp } from '../support/cdk';
import { actions, FUNCTION_ACTIONS, functionResources, logicalId, type Resource } from './function-resources';

const ROOT = path.resolve(__dirname, '..', '..');

let app: App;
let stack: AsherahStack;
let template: Template;
let assemblyDir: string;

beforeAll(() => {
  app = testApp();
  stack = addStarterStack(app, layerZip());
  template = Template.fromStack(stack);
  assemblyDir = Stage.of(stack)!.synth().directory; // the assembly Template.fromStack made (synth is cached)
});

const id = (construct: { node: { defaultChild?: unknown } }) => logicalId(stack, construct);
const only = (type: string): [string, Resource] => {
  const found = Object.entries(template.findResources(type)) as Array<[string, Resource]>;
  expect(found).toHaveLength(1);
  return found[0]!;
};
/** The encrypt/decrypt function and its log group, role and policy. */
const own = () => functionResources(template, stack, stack.function);
const fn = () => own().fn;
const statements = () => own().statements;
const statementFor = (prefix: string) => own().statementFor(prefix);

describe('the function', () => {
  test('runs on nodejs22.x, arm64 by default, with 512 MB and a 10 s timeout', () => {
    expect(fn().Properties).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'], MemorySize: 512, Timeout: 10 });
  });

  test('enters through init.handler, the ES module that waits for the pre-warm', () => {
    expect(fn().Properties.Handler).toBe('init.handler');
  });

  test('uses the layer', () => {
    expect(fn().Properties.Layers).toEqual([{ Ref: id(stack.layer) }]);
  });

  test('is configured for DynamoDB and AWS KMS with this stack\'s table and key', () => {
    expect((fn().Properties.Environment as { Variables: unknown }).Variables).toEqual({
      ASHERAH_SERVICE_NAME: 'asherah-starter',
      ASHERAH_PRODUCT_ID: 'encrypt-decrypt',
      ASHERAH_METASTORE: 'dynamodb',
      ASHERAH_METASTORE_TABLE_NAME: { Ref: id(stack.table) },
      ASHERAH_REGION_SUFFIX: 'false',
      ASHERAH_KMS: 'aws',
      ASHERAH_KMS_KEY_ARN: { 'Fn::GetAtt': [id(stack.key), 'Arn'] },
    });
  });

  test('logs to its own log group, kept for 30 days', () => {
    const { logGroupId, logGroup } = own();
    expect(logGroup.Type).toBe('AWS::Logs::LogGroup');
    expect(logGroup.Properties.RetentionInDays).toBe(30);
    expect(logGroupId).not.toBe(functionResources(template, stack, stack.esmSampleFunction!).logGroupId);
  });

  test('runs as a role of its own with no managed policies', () => {
    const { roleId, role } = own();
    expect(role.Type).toBe('AWS::IAM::Role');
    expect(roleId).not.toBe(functionResources(template, stack, stack.esmSampleFunction!).roleId);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(role.Properties.Policies).toBeUndefined();
    expect(role.Properties.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { Service: 'lambda.amazonaws.com' } }],
    });
  });
});

describe('the function asset', () => {
  const assetDir = () => path.join(assemblyDir, fn().Metadata!['aws:asset:path'] as string);

  test('holds the esbuild bundle index.js and init.mjs beside it, and no node_modules', () => {
    expect(readdirSync(assetDir()).sort()).toEqual(['index.js', 'init.mjs']);
  });

  test('index.js is at most 250 KB', () => {
    expect(statSync(path.join(assetDir(), 'index.js')).size).toBeLessThanOrEqual(250 * 1024);
  });

  test('index.js is minified CommonJS that requires asherah-layer at run time and inlines neither it nor the AWS SDK', () => {
    const code = readFileSync(path.join(assetDir(), 'index.js'), 'utf8');
    expect(code).toContain('module.exports');
    expect(code).toContain('require("asherah-layer")');
    expect(code).not.toMatch(/\bclass MemlockLimitError\b/); // the layer's code is not inlined
    // The SDK clients may be made by the function or by the layer (SessionFactory.fromEnv); either way the
    // runtime's SDK is required, never bundled: its DynamoDB and KMS protocol names would be in the code.
    expect(code).not.toContain('DynamoDB_20120810');
    expect(code).not.toContain('TrentService');
    expect(code.split('\n').length).toBeLessThan(20);
  });

  test('init.mjs is functions/encrypt-decrypt/init.mjs as written', () => {
    expect(readFileSync(path.join(assetDir(), 'init.mjs'), 'utf8')).toBe(
      readFileSync(path.join(ROOT, 'functions', 'encrypt-decrypt', 'init.mjs'), 'utf8'),
    );
  });
});

describe('the layer', () => {
  test('is the built zip, for x86_64 and arm64', () => {
    const [, layer] = only('AWS::Lambda::LayerVersion');
    expect(layer.Properties.CompatibleArchitectures).toEqual(['x86_64', 'arm64']);
    expect(layer.Metadata!['aws:asset:path']).toMatch(/\.zip$/);
    expect(layer.Metadata!['aws:asset:is-bundled']).toBe(false);
  });

  test('lists nodejs22.x and every later Node.js runtime this aws-cdk-lib knows', () => {
    const later = lambda.Runtime.ALL.map((r) => /^nodejs(\d+)\.x$/.exec(r.name))
      .filter((m): m is RegExpExecArray => m !== null && Number(m[1]) >= 22)
      .sort((a, b) => Number(a[1]) - Number(b[1]))
      .map((m) => m[0]);
    const [, layer] = only('AWS::Lambda::LayerVersion');
    expect(layer.Properties.CompatibleRuntimes).toEqual([...new Set(later)]);
    expect(layer.Properties.CompatibleRuntimes).toEqual(expect.arrayContaining(['nodejs22.x', 'nodejs24.x']));
  });
});

describe('the KMS key', () => {
  test('rotates, has the alias alias/asherah-starter, and is retained', () => {
    const [keyId, key] = only('AWS::KMS::Key');
    expect(key.Properties.EnableKeyRotation).toBe(true);
    expect(key.DeletionPolicy).toBe('Retain');
    expect(key.UpdateReplacePolicy).toBe('Retain');
    template.hasResourceProperties('AWS::KMS::Alias', {
      AliasName: 'alias/asherah-starter',
      TargetKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
    });
  });
});

describe('the DynamoDB table', () => {
  test('is EncryptionKey with Asherah\'s schema: Id (S) hash, Created (N) range', () => {
    const [, table] = only('AWS::DynamoDB::Table');
    expect(table.Properties.TableName).toBe('EncryptionKey');
    expect(table.Properties.KeySchema).toEqual([
      { AttributeName: 'Id', KeyType: 'HASH' },
      { AttributeName: 'Created', KeyType: 'RANGE' },
    ]);
    expect(table.Properties.AttributeDefinitions).toEqual([
      { AttributeName: 'Id', AttributeType: 'S' },
      { AttributeName: 'Created', AttributeType: 'N' },
    ]);
  });

  test('is on-demand, with point-in-time recovery, and retained', () => {
    const [, table] = only('AWS::DynamoDB::Table');
    expect(table.Properties.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
  });
});

describe('logical IDs', () => {
  // A retained resource whose logical ID changes is left behind by CloudFormation and replaced by a new, empty
  // one: for the key and the table that would lose every record. These are the IDs the deployed stacks have.
  test('the key, its alias and the table keep the IDs of every deployed starter stack', () => {
    expect(Object.keys(template.findResources('AWS::KMS::Key'))).toEqual(['MasterKey0175C9E2']);
    expect(Object.keys(template.findResources('AWS::KMS::Alias'))).toEqual(['MasterKeyAlias9C01E073']);
    expect(Object.keys(template.findResources('AWS::DynamoDB::Table'))).toEqual(['Metastore428D934B']);
  });

  test('so do the layer, the function, its role and its log group; the ES module sample adds its own four', () => {
    expect(Object.keys(template.toJSON().Resources as object).filter((r) => r !== 'CDKMetadata').sort()).toEqual([
      'EsmSampleFunction1C78C206',
      'EsmSampleFunctionLogs6A7B89FB',
      'EsmSampleFunctionRole871FD347',
      'EsmSampleFunctionRoleDefaultPolicy221B9A69',
      'Function76856677',
      'FunctionLogsAE28C13D',
      'FunctionRole111A5701',
      'FunctionRoleDefaultPolicy41A10F9C',
      'LayerB20D2F06',
      'MasterKey0175C9E2',
      'MasterKeyAlias9C01E073',
      'Metastore428D934B',
    ]);
  });
});

describe('IAM of the function', () => {
  test('grants exactly these actions: two for logs, three for KMS, three for DynamoDB', () => {
    expect(statements().every((s) => s.Effect === 'Allow')).toBe(true);
    expect(statements().flatMap(actions).sort()).toEqual(FUNCTION_ACTIONS);
  });

  test('grants no wildcard action and nothing that scans, deletes or updates', () => {
    const all = statements().flatMap(actions);
    expect(all.filter((a) => a.includes('*'))).toEqual([]);
    expect(all).not.toContain('dynamodb:*');
    expect(all).not.toContain('kms:*');
    for (const forbidden of ['Scan', 'DeleteItem', 'UpdateItem', 'BatchWriteItem', 'BatchGetItem', 'DeleteTable']) {
      expect(all).not.toContain(`dynamodb:${forbidden}`);
    }
  });

  test('KMS actions apply to this stack\'s key only', () => {
    expect(statementFor('kms:').Resource).toEqual({ 'Fn::GetAtt': [id(stack.key), 'Arn'] });
  });

  test('DynamoDB actions apply to the metastore table only (no indexes, no other table)', () => {
    expect(statementFor('dynamodb:').Resource).toEqual({ 'Fn::GetAtt': [id(stack.table), 'Arn'] });
  });

  test('logs actions apply to the function\'s log group only', () => {
    expect(statementFor('logs:').Resource).toEqual({ 'Fn::GetAtt': [own().logGroupId, 'Arn'] });
  });

  test('the policy is attached to the function\'s role only, and the sample\'s role has a policy of its own', () => {
    template.hasResourceProperties('AWS::IAM::Policy', { Roles: [{ Ref: own().roleId }] });
    template.hasResourceProperties('AWS::IAM::Policy', { Roles: [{ Ref: id(stack.esmSampleFunction!.role!) }] });
    template.resourceCountIs('AWS::IAM::Policy', 2);
  });
});

describe('outputs', () => {
  test('name the functions, the layer version, the table and the key', () => {
    const outputs = template.findOutputs('*');
    expect(Object.keys(outputs).sort()).toEqual(['EsmSampleFunctionName', 'FunctionName', 'KeyArn', 'LayerVersionArn', 'TableName']);
    expect(outputs.FunctionName!.Value).toEqual({ Ref: id(stack.function) });
    expect(outputs.EsmSampleFunctionName!.Value).toEqual({ Ref: id(stack.esmSampleFunction!) });
    expect(outputs.LayerVersionArn!.Value).toEqual({ Ref: id(stack.layer) });
    expect(outputs.TableName!.Value).toEqual({ Ref: id(stack.table) });
    expect(outputs.KeyArn!.Value).toEqual({ 'Fn::GetAtt': [id(stack.key), 'Arn'] });
  });
});

describe('cdk-nag AwsSolutions', () => {
  test('reports no finding that is not acknowledged', () => {
    const report = new AwsSolutionsChecks(app).validateScope(app);
    expect(report.violations.map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
    expect(report.success).toBe(true);
  });

  test('the one acknowledged rule, the runtime version check, is written into each function\'s template entry with its reason', () => {
    const acknowledged = Object.entries(template.toJSON().Resources as Record<string, Resource>).flatMap(
      ([resourceId, r]) => ((r.Metadata?.cdk_nag as { rules_to_suppress?: Array<{ id: string; reason: string }> } | undefined)?.rules_to_suppress ?? [])
        .map((a) => ({ resourceId, ...a })),
    );
    expect(acknowledged.map((a) => [a.resourceId, a.id]).sort()).toEqual([
      [id(stack.esmSampleFunction!), 'AwsSolutions-L1'],
      [id(stack.function), 'AwsSolutions-L1'],
    ]);
    for (const a of acknowledged) expect(a.reason).toMatch(/nodejs22\.x/);
    template.hasResource('AWS::Lambda::Function', {
      Metadata: Match.objectLike({ cdk_nag: { rules_to_suppress: [Match.objectLike({ id: 'AwsSolutions-L1' })] } }),
    });
  });
});
