/**
 * The starter's app wiring, shared by infra/app.ts and the tests: the stack, with the choices CDK context makes,
 * checked by cdk-nag's AwsSolutions rules (a finding that is not acknowledged with a reason fails the synth).
 *
 * Context (`-c key=value`, or "context" in cdk.json):
 *
 *   -c architecture=arm64|x86_64                                  default arm64
 *   -c extraKmsKeyArns='{"us-east-1":"arn:aws:kms:us-east-1:…"}'   other regions' keys (multi-region envelope)
 *   -c prewarmPartitions=tenant-a,tenant-b                        keys loaded during INIT
 */
import { Validations, type App } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Construct } from 'constructs';
import { parsePartitionList } from '../layer/src/appencryption/config/env';
import { AsherahStack, type AsherahStackProps } from './asherah-stack';

export const STACK_NAME = 'AsherahStarter';

/** Adds the stack to `app` and registers cdk-nag, as `cdk synth` runs it. */
export function addStarterStack(app: App, layerZipPath: string): AsherahStack {
  const stack = new AsherahStack(app, STACK_NAME, {
    description: 'Asherah envelope encryption starter: encrypt/decrypt function and its ES module sample, asherah-layer, KMS key, DynamoDB metastore',
    layerZipPath,
    ...propsFromContext(app),
  });
  // writeSuppressionsToCloudFormation: each acknowledged rule and its reason also go into the template's
  // Metadata (cdk_nag.rules_to_suppress), so whoever reviews the template sees them.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true, writeSuppressionsToCloudFormation: true }));
  return stack;
}

export type ContextProps = Pick<AsherahStackProps, 'architecture' | 'extraKmsKeyArns' | 'prewarmPartitions'>;

const ARCHITECTURES: Record<string, lambda.Architecture> = {
  arm64: lambda.Architecture.ARM_64,
  x86_64: lambda.Architecture.X86_64,
};

export function propsFromContext(scope: Construct): ContextProps {
  const props: { -readonly [K in keyof ContextProps]: ContextProps[K] } = {};

  const architecture = scope.node.tryGetContext('architecture') as unknown;
  if (architecture !== undefined) {
    if (typeof architecture !== 'string' || !Object.hasOwn(ARCHITECTURES, architecture)) {
      throw new Error(`context architecture must be "arm64" or "x86_64", got ${JSON.stringify(architecture)}`);
    }
    props.architecture = ARCHITECTURES[architecture];
  }

  // From the command line context values are strings; from cdk.json this one may also be an object.
  let extra = scope.node.tryGetContext('extraKmsKeyArns') as unknown;
  if (typeof extra === 'string') {
    try {
      extra = extra.trim() === '' ? {} : JSON.parse(extra);
    } catch {
      throw new Error('context extraKmsKeyArns must be JSON: {"<region>": "<KMS key ARN>", …}');
    }
  }
  if (extra !== undefined) {
    if (extra === null || typeof extra !== 'object' || Array.isArray(extra) || Object.values(extra).some((v) => typeof v !== 'string')) {
      throw new Error('context extraKmsKeyArns must be a JSON object of region → KMS key ARN strings');
    }
    props.extraKmsKeyArns = extra as Record<string, string>;
  }

  const prewarm = scope.node.tryGetContext('prewarmPartitions') as unknown;
  if (prewarm !== undefined) {
    if (typeof prewarm !== 'string') throw new Error('context prewarmPartitions must be a comma-separated list');
    props.prewarmPartitions = parsePartitionList(prewarm);
  }
  return props;
}
