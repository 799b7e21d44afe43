/**
 * Other regions' KMS keys for Asherah's multi-region envelope (each system key is also encrypted under them):
 * checked at synth, and, when the stack's region is only known at deploy time, by a CloudFormation rule.
 */
import { CfnRule, Fn, Stack, Token } from 'aws-cdk-lib';
import type { Construct } from 'constructs';

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
const KEY_ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):\d{12}:key\/[A-Za-z0-9-]+$/;

/**
 * Region → key ARN, each a real region and a key ARN in that region (not an alias: IAM grants on an alias ARN do
 * not cover its key), none in the region of `scope`'s stack, whose key the key store creates.
 */
export function checkExtraKmsKeyArns(scope: Construct, extra: Readonly<Record<string, string>>): Record<string, string> {
  const stackRegion = Stack.of(scope).region;
  for (const [region, arn] of Object.entries(extra)) {
    if (!REGION.test(region)) throw new Error(`extraKmsKeyArns: ${JSON.stringify(region)} is not an AWS region name`);
    const arnRegion = KEY_ARN.exec(arn)?.[1];
    if (arnRegion === undefined) {
      throw new Error(`extraKmsKeyArns[${region}]: ${JSON.stringify(arn)} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)`);
    }
    if (arnRegion !== region) throw new Error(`extraKmsKeyArns[${region}]: the key ARN is in ${arnRegion}, not ${region}`);
    if (!Token.isUnresolved(stackRegion) && region === stackRegion) {
      throw new Error(`extraKmsKeyArns: ${region} is this stack's own region, whose key the stack creates`);
    }
  }
  if (Token.isUnresolved(stackRegion) && Object.keys(extra).length > 0) {
    // Region-agnostic synth: the same check, made by CloudFormation before it changes anything.
    new CfnRule(scope, 'ExtraKmsRegionsAreOtherRegions', {
      assertions: Object.keys(extra).map((region) => ({
        assert: Fn.conditionNot(Fn.conditionEquals(stackRegion, region)),
        assertDescription: `extraKmsKeyArns names ${region}, the region this stack deploys to, whose key the stack creates`,
      })),
    });
  }
  return { ...extra };
}
