/**
 * The choices CDK context makes (`-c architecture=…`, `-c extraKmsKeyArns=…`, `-c prewarmPartitions=…`). These
 * synths skip esbuild: they are about the template, and asherah-stack.test.ts checks the bundle.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { addStarterStack } from '../../infra/asherah-app';
import { AsherahStack } from '../../infra/asherah-stack';
import { layerZip, SKIP_BUNDLING, testApp } from '../support/cdk';

const US_EAST_1_KEY = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const AP_SOUTHEAST_2_KEY = 'arn:aws:kms:ap-southeast-2:111122223333:key/mrk-0123456789abcdef0123456789abcdef';

function synth(context: Record<string, unknown>): { stack: AsherahStack; template: Template } {
  const stack = addStarterStack(testApp({ ...SKIP_BUNDLING, ...context }), layerZip());
  return { stack, template: Template.fromStack(stack) };
}

/** The functions' properties; both functions (encrypt/decrypt and the ES module sample) get the same choices. */
function functionProperties(template: Template): Record<string, unknown> {
  const all = (Object.values(template.findResources('AWS::Lambda::Function')) as Array<{ Properties: Record<string, unknown> }>)
    .map((fn) => fn.Properties);
  expect(all).toHaveLength(2);
  for (const key of ['Architectures', 'Environment']) expect(all[1]![key]).toEqual(all[0]![key]);
  return all[0]!;
}

/** A Fn::Join made concrete: AWS::Region is `region`, a GetAtt …Arn is `<LogicalId.Arn>`. */
function render(value: unknown, region: string): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, unknown>;
  if (v.Ref === 'AWS::Region') return region;
  if (Array.isArray(v['Fn::GetAtt'])) return `<${(v['Fn::GetAtt'] as string[]).join('.')}>`;
  if (Array.isArray(v['Fn::Join'])) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map((p) => render(p, region)).join(sep);
  }
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}

describe('architecture', () => {
  test('-c architecture=x86_64 makes an x86_64 function (the layer stays for both)', () => {
    const { template } = synth({ architecture: 'x86_64' });
    expect(functionProperties(template).Architectures).toEqual(['x86_64']);
    template.hasResourceProperties('AWS::Lambda::LayerVersion', { CompatibleArchitectures: ['x86_64', 'arm64'] });
  });

  test('-c architecture=arm64 makes an arm64 function', () => {
    expect(functionProperties(synth({ architecture: 'arm64' }).template).Architectures).toEqual(['arm64']);
  });

  test('any other value is refused with the values that work', () => {
    expect(() => synth({ architecture: 'amd64' })).toThrow('context architecture must be "arm64" or "x86_64", got "amd64"');
  });
});

describe('extra KMS regions', () => {
  let stack: AsherahStack;
  let template: Template;
  beforeAll(() => {
    ({ stack, template } = synth({
      extraKmsKeyArns: JSON.stringify({ 'us-east-1': US_EAST_1_KEY, 'ap-southeast-2': AP_SOUTHEAST_2_KEY }),
    }));
  });
  const keyId = () => stack.getLogicalId(stack.key.node.defaultChild as Parameters<AsherahStack['getLogicalId']>[0]);
  const variables = () => (functionProperties(template).Environment as { Variables: Record<string, unknown> }).Variables;

  test('ASHERAH_REGION_MAP holds this stack\'s key under its region, then the extra regions\' keys', () => {
    const map = JSON.parse(render(variables().ASHERAH_REGION_MAP, 'eu-west-1')) as Record<string, string>;
    expect(map).toEqual({ 'eu-west-1': `<${keyId()}.Arn>`, 'us-east-1': US_EAST_1_KEY, 'ap-southeast-2': AP_SOUTHEAST_2_KEY });
    expect(Object.keys(map)[0]).toBe('eu-west-1');
  });

  test('the stack\'s region is the preferred region, and ASHERAH_KMS_KEY_ARN is not set', () => {
    expect(variables().ASHERAH_PREFERRED_REGION).toEqual({ Ref: 'AWS::Region' });
    expect(variables()).not.toHaveProperty('ASHERAH_KMS_KEY_ARN'); // config.ts refuses both
    expect(variables().ASHERAH_KMS).toBe('aws');
  });

  test('each function\'s role may use the three KMS actions on every region\'s key, and nothing more', () => {
    const statements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
      (p) => (p as { Properties: { PolicyDocument: { Statement: Array<{ Action: string[]; Resource: unknown }> } } }).Properties.PolicyDocument.Statement,
    );
    const kms = statements.filter((s) => s.Action.some((a) => a.startsWith('kms:')));
    expect(kms).toHaveLength(2); // one policy per function role
    for (const statement of kms) {
      expect([...statement.Action].sort()).toEqual(['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey']);
      // In any order: the @aws-cdk/aws-iam:minimizePolicies flag sorts them.
      expect(statement.Resource).toHaveLength(3);
      expect(statement.Resource).toEqual(expect.arrayContaining([{ 'Fn::GetAtt': [keyId(), 'Arn'] }, US_EAST_1_KEY, AP_SOUTHEAST_2_KEY]));
    }
  });

  test('an object from cdk.json works as the JSON text from -c does', () => {
    const { template: fromObject } = synth({ extraKmsKeyArns: { 'us-east-1': US_EAST_1_KEY } });
    const map = (functionProperties(fromObject).Environment as { Variables: Record<string, unknown> }).Variables.ASHERAH_REGION_MAP;
    expect(Object.keys(JSON.parse(render(map, 'eu-west-1')) as object)).toEqual(['eu-west-1', 'us-east-1']);
  });

  test('text that is not JSON is refused', () => {
    expect(() => synth({ extraKmsKeyArns: '{us-east-1: arn}' })).toThrow('context extraKmsKeyArns must be JSON');
  });

  test('an alias ARN is refused: IAM grants on an alias do not cover its key', () => {
    expect(() => synth({ extraKmsKeyArns: { 'us-east-1': 'arn:aws:kms:us-east-1:111122223333:alias/asherah' } }))
      .toThrow('is not a KMS key ARN');
  });

  test('a key ARN from another region than its entry is refused', () => {
    expect(() => synth({ extraKmsKeyArns: { 'us-west-2': US_EAST_1_KEY } }))
      .toThrow('extraKmsKeyArns[us-west-2]: the key ARN is in us-east-1, not us-west-2');
  });

  test('a deployment to one of the extra regions is refused by a CloudFormation rule before anything changes', () => {
    const rules = template.toJSON().Rules as Record<string, { Assertions: Array<{ Assert: unknown }> }>;
    expect(rules.ExtraKmsRegionsAreOtherRegions!.Assertions.map((a) => a.Assert)).toEqual([
      { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'us-east-1'] }] },
      { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'ap-southeast-2'] }] },
    ]);
  });

  test('the stack\'s own region, when the stack knows it, is refused as an extra region', () => {
    const app = testApp(SKIP_BUNDLING);
    expect(() => new AsherahStack(app, 'Regional', {
      env: { region: 'us-east-1' },
      layerZipPath: layerZip(),
      extraKmsKeyArns: { 'us-east-1': US_EAST_1_KEY },
    })).toThrow("extraKmsKeyArns: us-east-1 is this stack's own region, whose key the stack creates");
  });
});

describe('pre-warm', () => {
  test('-c prewarmPartitions=a,b sets ASHERAH_PREWARM_PARTITIONS; without it the variable is absent', () => {
    const { template } = synth({ prewarmPartitions: 'tenant-a, tenant-b' });
    const variables = (functionProperties(template).Environment as { Variables: Record<string, unknown> }).Variables;
    expect(variables.ASHERAH_PREWARM_PARTITIONS).toBe('tenant-a,tenant-b');
    const plain = (functionProperties(synth({}).template).Environment as { Variables: Record<string, unknown> }).Variables;
    expect(plain).not.toHaveProperty('ASHERAH_PREWARM_PARTITIONS');
  });
});
