/**
 * What the starter's functions share, so each one in the stack is its entry, its bundle format and the two
 * Asherah constructs: the runtime the layer is built for, the same architecture, memory, timeout and esbuild
 * settings, a log group of its own and a role that may write to that group only.
 */
import path from 'node:path';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { MIN_LAYER_RUNTIME } from './constructs';

export const PROJECT_ROOT = path.resolve(__dirname, '..');

/** The functions' runtime: the oldest the layer supports, which also lists every later Node.js runtime. */
export const FUNCTION_RUNTIME = MIN_LAYER_RUNTIME;

/** The settings every starter function takes from the stack's props. */
export interface FunctionDefaults {
  /** Default ARM_64 (cheaper per GB-second; the layer carries koffi for both). */
  readonly architecture?: lambda.Architecture;
  /** Default 512 MB: Lambda's CPU share grows with memory, and INIT does TLS, KMS and DynamoDB round trips. */
  readonly memorySize?: number;
  /** Default 10 seconds: a cold invoke makes a few KMS and DynamoDB calls, which the SDK retries. */
  readonly timeout?: Duration;
  /** Default one month. */
  readonly logRetention?: logs.RetentionDays;
}

export interface StarterFunctionProps {
  /** Names the function in its role's description. */
  readonly name: string;
  readonly description: string;
  readonly entry: string;
  readonly handler: string;
  /** The module format and any hooks; the shared esbuild settings (externals included) are added. */
  readonly bundling: Pick<BundlingOptions, 'format' | 'commandHooks'>;
  readonly defaults: FunctionDefaults;
}

/**
 * Makes `${id}Logs`, `${id}Role` and the function `${id}` in `scope`. For the id 'Function' these are the logical
 * IDs the deployed starter stacks already have, so they stay.
 */
export function starterFunction(scope: Construct, id: string, props: StarterFunctionProps): NodejsFunction {
  const { defaults } = props;
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
    retention: defaults.logRetention ?? logs.RetentionDays.ONE_MONTH,
    removalPolicy: RemovalPolicy.DESTROY,
  });

  // Our own role rather than AWSLambdaBasicExecutionRole: that managed policy lets the function create any log
  // group and write to every log group in the account; this one writes to its own group only.
  const role = new iam.Role(scope, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: `asherah-starter ${props.name}: its log group, the master key(s), the metastore table`,
  });
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'WriteOwnLogs',
    actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    resources: [logGroup.logGroupArn],
  }));

  const fn = new NodejsFunction(scope, id, {
    description: props.description,
    entry: props.entry,
    // A handler with a dot is used as given (NodejsFunction prefixes "index." only to a bare function name).
    handler: props.handler,
    runtime: FUNCTION_RUNTIME,
    architecture: defaults.architecture ?? lambda.Architecture.ARM_64,
    memorySize: defaults.memorySize ?? 512,
    timeout: defaults.timeout ?? Duration.seconds(10),
    role,
    logGroup,
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
    bundling: {
      minify: true,
      sourceMap: false,
      target: 'node22',
      // The layer provides asherah-layer, the runtime provides the AWS SDK v3.
      externalModules: ['asherah-layer', '@aws-sdk/*'],
      forceDockerBundling: false,
      ...props.bundling,
    },
  });

  // cdk-nag 3 reads acknowledgements from CDK's Validations metadata (its v2 NagSuppressions API is gone).
  Validations.of(fn).acknowledge({
    id: 'AwsSolutions-L1',
    reason: `The function is built for and tested on ${FUNCTION_RUNTIME.name} (esbuild target node22, the layer's ` +
      'koffi binaries are Node-API, so later runtimes work too and the layer lists them); move the runtime ' +
      'forward deliberately, with the tests, rather than on every CDK upgrade.',
  });
  return fn;
}
