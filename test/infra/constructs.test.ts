/**
 * The constructs as a user's own CDK app uses them: one layer and one key store shared by two functions of the
 * user's. The layer asset is a stand-in zip, so these tests do not depend on building the real one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import AdmZip from 'adm-zip';
import { Stack, type App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import { AsherahKeyStore, AsherahLayer, type AsherahKeyStoreProps } from '../../infra/constructs';
import { partitionsToPrewarm } from '../../layer/src/appencryption/config/env';
import { testApp } from '../support/cdk';

const US_EAST_1_KEY = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const AP_SOUTHEAST_2_KEY = 'arn:aws:kms:ap-southeast-2:111122223333:key/mrk-0123456789abcdef0123456789abcdef';

type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string; UpdateReplacePolicy?: string };

let tmp: string;
let zipPath: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'asherah-constructs-'));
  zipPath = path.join(tmp, 'layer.zip');
  const zip = new AdmZip();
  zip.addFile('nodejs/node_modules/asherah-layer/index.js', Buffer.from('module.exports = {};\n'));
  zip.writeZip(zipPath);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A user's stack: two functions of their own, each given the layer and the key store. */
function userStack(app: App = testApp(), options: { region?: string; keyStore?: AsherahKeyStoreProps } = {}) {
  const stack = new Stack(app, 'UserStack', options.region ? { env: { region: options.region } } : {});
  const layer = new AsherahLayer(stack, 'AsherahLayer', { zipPath });
  const keyStore = new AsherahKeyStore(stack, 'AsherahKeys', options.keyStore);
  const functions = ['Orders', 'Billing'].map((name) => {
    const fn = new lambda.Function(stack, name, {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => {};'),
    });
    layer.attachTo(fn);
    keyStore.configure(fn, { serviceName: 'shop', productId: name.toLowerCase() });
    return fn;
  });
  return { stack, layer, keyStore, functions, template: Template.fromStack(stack) };
}

const logicalId = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as Parameters<Stack['getLogicalId']>[0]);

function resource(template: Template, id: string): Resource {
  return (template.toJSON().Resources as Record<string, Resource>)[id]!;
}

/** The policy documents attached to `fn`'s role. */
function policiesOf(template: Template, stack: Stack, fn: lambda.Function): unknown[] {
  const roleId = logicalId(stack, fn.role!);
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .map((p) => (p as Resource).Properties)
    .filter((p) => JSON.stringify(p.Roles) === JSON.stringify([{ Ref: roleId }]))
    .map((p) => p.PolicyDocument);
}

/** A Fn::Join made concrete: a GetAtt …Arn is `<LogicalId.Arn>`. */
function render(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, unknown>;
  if (Array.isArray(v['Fn::GetAtt'])) return `<${(v['Fn::GetAtt'] as string[]).join('.')}>`;
  if (Array.isArray(v['Fn::Join'])) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map(render).join(sep);
  }
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}

describe('two functions sharing one layer and one key store', () => {
  let setup: ReturnType<typeof userStack>;
  beforeAll(() => {
    setup = userStack();
  });
  const keyArn = () => ({ 'Fn::GetAtt': [logicalId(setup.stack, setup.keyStore.key), 'Arn'] });
  const tableArn = () => ({ 'Fn::GetAtt': [logicalId(setup.stack, setup.keyStore.table), 'Arn'] });

  test('make one layer, one key and one table', () => {
    setup.template.resourceCountIs('AWS::Lambda::LayerVersion', 1);
    setup.template.resourceCountIs('AWS::KMS::Key', 1);
    setup.template.resourceCountIs('AWS::DynamoDB::Table', 1);
    setup.template.resourceCountIs('AWS::Lambda::Function', 2);
  });

  test('each function has the layer', () => {
    for (const fn of setup.functions) {
      expect(resource(setup.template, logicalId(setup.stack, fn)).Properties.Layers).toEqual([{ Ref: logicalId(setup.stack, setup.layer) }]);
    }
  });

  test('the layer is for x86_64 and arm64, nodejs22.x and later', () => {
    const layer = resource(setup.template, logicalId(setup.stack, setup.layer));
    expect(layer.Properties.CompatibleArchitectures).toEqual(['x86_64', 'arm64']);
    expect(layer.Properties.CompatibleRuntimes).toEqual(expect.arrayContaining(['nodejs22.x', 'nodejs24.x']));
  });

  test('each function\'s environment points at the table and the key, with its own product', () => {
    for (const [fn, product] of [[setup.functions[0]!, 'orders'], [setup.functions[1]!, 'billing']] as const) {
      const env = resource(setup.template, logicalId(setup.stack, fn)).Properties.Environment as { Variables: unknown };
      expect(env.Variables).toEqual({
        ASHERAH_SERVICE_NAME: 'shop',
        ASHERAH_PRODUCT_ID: product,
        ASHERAH_METASTORE: 'dynamodb',
        ASHERAH_METASTORE_TABLE_NAME: { Ref: logicalId(setup.stack, setup.keyStore.table) },
        ASHERAH_REGION_SUFFIX: 'false',
        ASHERAH_KMS: 'aws',
        ASHERAH_KMS_KEY_ARN: keyArn(),
      });
    }
  });

  test('each role may use exactly the six actions, on the key and the table only', () => {
    for (const fn of setup.functions) {
      expect(policiesOf(setup.template, setup.stack, fn)).toEqual([{
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'], Resource: keyArn() },
          { Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'], Resource: tableArn() },
        ],
      }]);
    }
    setup.template.resourceCountIs('AWS::IAM::Policy', 2);
  });

  test('the grants leave the key policy alone (no statement for the functions\' roles)', () => {
    const key = resource(setup.template, logicalId(setup.stack, setup.keyStore.key));
    const statements = (key.Properties.KeyPolicy as { Statement: Array<{ Principal: unknown }> }).Statement;
    expect(statements).toHaveLength(1);
    expect(JSON.stringify(statements[0]!.Principal)).toContain(':root');
  });

  test('the key rotates and the key and table are retained; the table is on demand with PITR and Asherah\'s schema', () => {
    const key = resource(setup.template, logicalId(setup.stack, setup.keyStore.key));
    expect(key.Properties.EnableKeyRotation).toBe(true);
    const table = resource(setup.template, logicalId(setup.stack, setup.keyStore.table));
    for (const r of [key, table]) expect([r.DeletionPolicy, r.UpdateReplacePolicy]).toEqual(['Retain', 'Retain']);
    expect(table.Properties).toMatchObject({
      TableName: 'EncryptionKey',
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      KeySchema: [{ AttributeName: 'Id', KeyType: 'HASH' }, { AttributeName: 'Created', KeyType: 'RANGE' }],
    });
  });

  test('no alias unless one is asked for', () => {
    setup.template.resourceCountIs('AWS::KMS::Alias', 0);
    const { template } = userStack(testApp(), { keyStore: { keyAlias: 'alias/shop-asherah', tableName: 'ShopKeys' } });
    template.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/shop-asherah' });
    template.hasResourceProperties('AWS::DynamoDB::Table', { TableName: 'ShopKeys' });
  });
});

describe('grantEncryptDecrypt', () => {
  test('gives any grantee, here a role, the six actions and nothing more', () => {
    const stack = new Stack(testApp(), 'Worker');
    const keyStore = new AsherahKeyStore(stack, 'AsherahKeys');
    const role = new iam.Role(stack, 'TaskRole', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    const grant = keyStore.grantEncryptDecrypt(role);
    expect(grant.success).toBe(true);
    const template = Template.fromStack(stack);
    const [policy] = Object.values(template.findResources('AWS::IAM::Policy')) as Resource[];
    const statements = (policy!.Properties.PolicyDocument as { Statement: Array<{ Action: string[] }> }).Statement;
    expect(statements.flatMap((s) => s.Action).sort()).toEqual([
      'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey',
    ]);
  });
});

describe('extra region keys', () => {
  const extraKmsKeyArns = { 'us-east-1': US_EAST_1_KEY, 'ap-southeast-2': AP_SOUTHEAST_2_KEY };

  test('each function gets the region map, this key first, and this stack\'s region as the preferred one', () => {
    const { stack, keyStore, functions, template } = userStack(testApp(), { region: 'eu-west-1', keyStore: { extraKmsKeyArns } });
    for (const fn of functions) {
      const variables = (resource(template, logicalId(stack, fn)).Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      const map = JSON.parse(render(variables.ASHERAH_REGION_MAP)) as Record<string, string>;
      expect(map).toEqual({ 'eu-west-1': `<${logicalId(stack, keyStore.key)}.Arn>`, 'us-east-1': US_EAST_1_KEY, 'ap-southeast-2': AP_SOUTHEAST_2_KEY });
      expect(Object.keys(map)[0]).toBe('eu-west-1');
      expect(variables.ASHERAH_PREFERRED_REGION).toBe('eu-west-1');
      expect(variables).not.toHaveProperty('ASHERAH_KMS_KEY_ARN');
    }
    // The region is known at synth, so no deploy-time rule is needed.
    expect(Object.keys(template.toJSON().Rules ?? {}).filter((id) => id.includes('ExtraKmsRegions'))).toEqual([]);
  });

  test('each role may use the three KMS actions on every region\'s key', () => {
    const { stack, keyStore, functions, template } = userStack(testApp(), { region: 'eu-west-1', keyStore: { extraKmsKeyArns } });
    for (const fn of functions) {
      const [doc] = policiesOf(template, stack, fn) as Array<{ Statement: Array<{ Action: string[]; Resource: unknown }> }>;
      const kms = doc!.Statement.filter((s) => s.Action.some((a) => a.startsWith('kms:')));
      expect(kms).toHaveLength(1);
      expect(kms[0]!.Action).toEqual(['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey']);
      expect(kms[0]!.Resource).toHaveLength(3);
      expect(kms[0]!.Resource).toEqual(expect.arrayContaining([
        { 'Fn::GetAtt': [logicalId(stack, keyStore.key), 'Arn'] }, US_EAST_1_KEY, AP_SOUTHEAST_2_KEY,
      ]));
    }
  });

  test('a region-agnostic stack gets a CloudFormation rule that refuses a deployment to an extra region', () => {
    const { template } = userStack(testApp(), { keyStore: { extraKmsKeyArns } });
    const rules = template.toJSON().Rules as Record<string, { Assertions: Array<{ Assert: unknown }> }>;
    const [rule] = Object.entries(rules).filter(([id]) => id.includes('ExtraKmsRegionsAreOtherRegions'));
    expect(rule![1].Assertions.map((a) => a.Assert)).toEqual([
      { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'us-east-1'] }] },
      { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'ap-southeast-2'] }] },
    ]);
  });

  test.each([
    [{ 'us-east-1': 'arn:aws:kms:us-east-1:111122223333:alias/asherah' }, 'is not a KMS key ARN'],
    [{ 'us-west-2': US_EAST_1_KEY }, 'extraKmsKeyArns[us-west-2]: the key ARN is in us-east-1, not us-west-2'],
    [{ 'US East': US_EAST_1_KEY }, 'is not an AWS region name'],
    [{ 'eu-west-1': 'arn:aws:kms:eu-west-1:111122223333:key/1234' }, "extraKmsKeyArns: eu-west-1 is this stack's own region"],
  ])('%j is refused', (extra, message) => {
    expect(() => userStack(testApp(), { region: 'eu-west-1', keyStore: { extraKmsKeyArns: extra } })).toThrow(message);
  });
});

describe('environment()', () => {
  test('pre-warm partitions become ASHERAH_PREWARM_PARTITIONS, read back as they were; one the list cannot carry is refused', () => {
    const stack = new Stack(testApp(), 'Env');
    const keyStore = new AsherahKeyStore(stack, 'AsherahKeys');
    const env = keyStore.environment({ serviceName: 'shop', productId: 'orders', prewarmPartitions: ['tenant-a', 'tenant-b'] });
    expect(env.ASHERAH_PREWARM_PARTITIONS).toBe('tenant-a,tenant-b');
    expect(keyStore.environment({ serviceName: 'shop', productId: 'orders' })).not.toHaveProperty('ASHERAH_PREWARM_PARTITIONS');
    // The function reads the list with the same code that wrote it.
    expect(partitionsToPrewarm(env)).toEqual(['tenant-a', 'tenant-b']);
    for (const bad of ['a,b', ' a', '']) {
      expect(() => keyStore.environment({ serviceName: 'shop', productId: 'orders', prewarmPartitions: [bad] }))
        .toThrow(`prewarmPartitions: ${JSON.stringify(bad)} is empty, contains a comma or has spaces around it`);
    }
  });
});

describe('cdk-nag AwsSolutions', () => {
  test('finds nothing in the layer, the key store, or a role granted its actions', () => {
    const app = testApp();
    const stack = new Stack(app, 'Nagged');
    new AsherahLayer(stack, 'AsherahLayer', { zipPath });
    const keyStore = new AsherahKeyStore(stack, 'AsherahKeys', { extraKmsKeyArns: { 'us-east-1': US_EAST_1_KEY } });
    keyStore.grantEncryptDecrypt(new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') }));
    const report = new AwsSolutionsChecks(app).validateScope(app);
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
  });
});
