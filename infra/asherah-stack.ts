/**
 * The starter's stack: the encrypt/decrypt function, with the two constructs any function uses Asherah through:
 * the layer (the SDK every function shares) and the key store (the KMS key that encrypts the system keys and the
 * DynamoDB metastore, both retained when the stack is deleted).
 */
import path from 'node:path';
import { CfnOutput, Duration, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { ENV_DEFAULTS } from '../layer/src/appencryption/env';
import { AsherahKeyStore, AsherahLayer, MIN_LAYER_RUNTIME } from './constructs';

const ROOT = path.resolve(__dirname, '..');
const FUNCTION_DIR = path.join(ROOT, 'functions', 'encrypt-decrypt');

/** The function's runtime: the oldest the layer supports, which also lists every later Node.js runtime. */
export const FUNCTION_RUNTIME = MIN_LAYER_RUNTIME;

export interface AsherahStackProps extends StackProps {
  /** The zip layer/build.ts writes (dist/asherah-layer.zip). */
  readonly layerZipPath: string;
  /** Default ARM_64 (cheaper per GB-second; the layer carries koffi for both). */
  readonly architecture?: lambda.Architecture;
  /**
   * KMS keys in other regions, region → key ARN, for Asherah's multi-region envelope: each system key is also
   * encrypted under these, so it can be decrypted in any of them. With any, the function gets ASHERAH_REGION_MAP
   * (this stack's key under this stack's region, plus these) and ASHERAH_PREFERRED_REGION (this stack's region).
   */
  readonly extraKmsKeyArns?: Readonly<Record<string, string>>;
  /** Default 'asherah-starter' and 'encrypt-decrypt' (ENV_DEFAULTS, as the function defaults them). */
  readonly serviceName?: string;
  readonly productId?: string;
  /** Default 'EncryptionKey', the table name every Asherah implementation uses by default. */
  readonly tableName?: string;
  /** Default 'alias/asherah-starter'. */
  readonly keyAlias?: string;
  /** Partitions whose keys the function loads during INIT (ASHERAH_PREWARM_PARTITIONS). Default none. */
  readonly prewarmPartitions?: readonly string[];
  /** Default 512 MB: Lambda's CPU share grows with memory, and INIT does TLS, KMS and DynamoDB round trips. */
  readonly memorySize?: number;
  /** Default 10 seconds: a cold invoke makes a few KMS and DynamoDB calls, which the SDK retries. */
  readonly timeout?: Duration;
  /** Default one month. */
  readonly logRetention?: logs.RetentionDays;
}

export class AsherahStack extends Stack {
  readonly keyStore: AsherahKeyStore;
  readonly key: kms.Key;
  readonly table: dynamodb.Table;
  readonly layer: AsherahLayer;
  readonly function: NodejsFunction;

  constructor(scope: Construct, id: string, props: AsherahStackProps) {
    super(scope, id, props);

    // The id 'Default' adds nothing to the logical IDs below it, so the key, its alias and the table keep the
    // ones they had when the stack made them itself (MasterKey0175C9E2, Metastore428D934B): a new logical ID on
    // a retained resource would leave the old one behind and create an empty one in its place.
    this.keyStore = new AsherahKeyStore(this, 'Default', {
      tableName: props.tableName ?? ENV_DEFAULTS.tableName,
      keyAlias: props.keyAlias ?? 'alias/asherah-starter',
      keyDescription: 'Asherah master key (asherah-starter): encrypts the system keys; retained when the stack is deleted',
      extraKmsKeyArns: props.extraKmsKeyArns,
    });
    this.key = this.keyStore.key;
    this.table = this.keyStore.table;

    this.layer = new AsherahLayer(this, 'Layer', { zipPath: props.layerZipPath });

    const logGroup = new logs.LogGroup(this, 'FunctionLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // Our own role rather than AWSLambdaBasicExecutionRole: that managed policy lets the function create any log
    // group and write to every log group in the account; this one writes to its own group only.
    const role = new iam.Role(this, 'FunctionRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'asherah-starter encrypt/decrypt: its log group, the master key(s), the metastore table',
    });
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'WriteOwnLogs',
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [logGroup.logGroupArn],
    }));

    this.function = new NodejsFunction(this, 'Function', {
      description: 'Asherah encrypt/decrypt (events of the Go Lambda sample: Payload → DRR, DRR → Payload)',
      entry: path.join(FUNCTION_DIR, 'handler.ts'),
      // init.mjs, an ES module beside the bundle, awaits the key pre-warm at top level so INIT waits for it.
      // A handler with a dot is used as given (NodejsFunction prefixes "index." only to a bare function name).
      handler: 'init.handler',
      runtime: FUNCTION_RUNTIME,
      architecture: props.architecture ?? lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(10),
      role,
      logGroup,
      projectRoot: ROOT,
      depsLockFilePath: path.join(ROOT, 'package-lock.json'),
      bundling: {
        format: OutputFormat.CJS, // CommonJS: require() honours NODE_PATH, where Lambda puts /opt/nodejs/node_modules
        minify: true,
        sourceMap: false,
        target: 'node22',
        // The layer provides asherah-layer, the runtime provides the AWS SDK v3.
        externalModules: ['asherah-layer', '@aws-sdk/*'],
        forceDockerBundling: false,
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (inputDir: string, outputDir: string) => [copyCommand(
            path.join(inputDir, path.relative(ROOT, FUNCTION_DIR), 'init.mjs'),
            path.join(outputDir, 'init.mjs'),
          )],
        },
      },
    });
    this.layer.attachTo(this.function);
    this.keyStore.configure(this.function, {
      serviceName: props.serviceName ?? ENV_DEFAULTS.serviceName,
      productId: props.productId ?? ENV_DEFAULTS.productId,
      prewarmPartitions: props.prewarmPartitions,
    });

    new CfnOutput(this, 'FunctionName', { value: this.function.functionName, description: 'aws lambda invoke --function-name' });
    new CfnOutput(this, 'LayerVersionArn', { value: this.layer.layerVersionArn, description: 'asherah-layer, for other functions' });
    new CfnOutput(this, 'TableName', { value: this.table.tableName, description: 'Asherah metastore (retained)' });
    new CfnOutput(this, 'KeyArn', { value: this.key.keyArn, description: 'Asherah master key (retained)' });

    // cdk-nag 3 reads acknowledgements from CDK's Validations metadata (its v2 NagSuppressions API is gone).
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason: `The function is built for and tested on ${FUNCTION_RUNTIME.name} (esbuild target node22, the layer's ` +
        'koffi binaries are Node-API, so later runtimes work too and the layer lists them); move the runtime ' +
        'forward deliberately, with the tests, rather than on every CDK upgrade.',
    });
  }
}

/** A copy that runs in the shells NodejsFunction's hooks use on Linux, macOS and Windows alike. */
function copyCommand(from: string, to: string): string {
  return `node -e "require('node:fs').copyFileSync(process.argv[1], process.argv[2])" ${JSON.stringify(from)} ${JSON.stringify(to)}`;
}
