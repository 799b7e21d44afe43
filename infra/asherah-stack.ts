/**
 * The starter's stack: the layer (the SDK every function shares), the encrypt/decrypt function, and what Asherah
 * keeps its keys in: a KMS key that encrypts the system keys and the DynamoDB metastore. Both of those are
 * retained when the stack is deleted, because losing either makes every record ever encrypted unreadable.
 */
import path from 'node:path';
import { CfnOutput, CfnRule, Duration, Fn, RemovalPolicy, Stack, Token, Validations, type StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

const ROOT = path.resolve(__dirname, '..');
const FUNCTION_DIR = path.join(ROOT, 'functions', 'encrypt-decrypt');

/** The function's runtime; the layer also lists every later Node.js runtime this aws-cdk-lib knows. */
export const FUNCTION_RUNTIME = lambda.Runtime.NODEJS_22_X;

/** The KMS actions Asherah's AWS KMS adapter calls: a data key in the preferred region, Encrypt elsewhere, Decrypt. */
export const KMS_ACTIONS = ['kms:GenerateDataKey', 'kms:Encrypt', 'kms:Decrypt'];
/** The DynamoDB actions the metastore calls: load (GetItem), load latest (Query), store (conditional PutItem). */
export const DYNAMODB_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'];

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
  /** Default 'asherah-starter' and 'encrypt-decrypt', as functions/encrypt-decrypt/config.ts. */
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
  readonly key: kms.Key;
  readonly table: dynamodb.Table;
  readonly layer: lambda.LayerVersion;
  readonly function: NodejsFunction;

  constructor(scope: Construct, id: string, props: AsherahStackProps) {
    super(scope, id, props);
    const extraKeys = checkExtraKmsKeyArns(props.extraKmsKeyArns ?? {}, this.region);
    if (Token.isUnresolved(this.region) && Object.keys(extraKeys).length > 0) {
      // Region-agnostic synth: the same check, made by CloudFormation before it changes anything.
      new CfnRule(this, 'ExtraKmsRegionsAreOtherRegions', {
        assertions: Object.keys(extraKeys).map((region) => ({
          assert: Fn.conditionNot(Fn.conditionEquals(this.region, region)),
          assertDescription: `extraKmsKeyArns names ${region}, the region this stack deploys to, whose key the stack creates`,
        })),
      });
    }

    this.key = new kms.Key(this, 'MasterKey', {
      description: 'Asherah master key (asherah-starter): encrypts the system keys; retained when the stack is deleted',
      alias: props.keyAlias ?? 'alias/asherah-starter',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Asherah's metastore schema (docs/wire-format.md §3.4): Id (S) hash key, Created (N, unix seconds) range key.
    this.table = new dynamodb.Table(this, 'Metastore', {
      tableName: props.tableName ?? 'EncryptionKey',
      partitionKey: { name: 'Id', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'Created', type: dynamodb.AttributeType.NUMBER },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.layer = new lambda.LayerVersion(this, 'Layer', {
      code: lambda.Code.fromAsset(props.layerZipPath),
      compatibleArchitectures: [lambda.Architecture.X86_64, lambda.Architecture.ARM_64],
      compatibleRuntimes: layerRuntimes(),
      description: 'asherah-layer: Asherah-compatible envelope encryption with keys in locked memory (koffi for x86_64 and arm64)',
      license: 'Apache-2.0 (koffi: MIT)',
    });

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
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'AsherahMasterKeys',
      actions: KMS_ACTIONS,
      resources: [this.key.keyArn, ...Object.values(extraKeys)],
    }));
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'AsherahMetastore',
      actions: DYNAMODB_ACTIONS,
      resources: [this.table.tableArn],
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
      layers: [this.layer],
      projectRoot: ROOT,
      depsLockFilePath: path.join(ROOT, 'package-lock.json'),
      environment: this.environmentFor(props, extraKeys),
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

  private environmentFor(props: AsherahStackProps, extraKeys: Record<string, string>): Record<string, string> {
    const env: Record<string, string> = {
      ASHERAH_SERVICE_NAME: props.serviceName ?? 'asherah-starter',
      ASHERAH_PRODUCT_ID: props.productId ?? 'encrypt-decrypt',
      ASHERAH_METASTORE: 'dynamodb',
      ASHERAH_METASTORE_TABLE_NAME: this.table.tableName,
      ASHERAH_REGION_SUFFIX: 'false',
      ASHERAH_KMS: 'aws',
    };
    if (Object.keys(extraKeys).length === 0) {
      env.ASHERAH_KMS_KEY_ARN = this.key.keyArn;
    } else {
      // Built as text, not JSON.stringify: the region and key ARN of this stack are deploy-time tokens, which
      // CloudFormation joins in; neither can contain a character JSON would escape.
      const entries = [
        `"${this.region}":"${this.key.keyArn}"`,
        ...Object.entries(extraKeys).map(([region, arn]) => `${JSON.stringify(region)}:${JSON.stringify(arn)}`),
      ];
      env.ASHERAH_REGION_MAP = `{${entries.join(',')}}`;
      env.ASHERAH_PREFERRED_REGION = this.region;
    }
    if (props.prewarmPartitions?.length) {
      const bad = props.prewarmPartitions.find((p) => p.trim() === '' || p.includes(','));
      if (bad !== undefined) throw new Error(`prewarmPartitions: ${JSON.stringify(bad)} is empty or contains a comma`);
      env.ASHERAH_PREWARM_PARTITIONS = props.prewarmPartitions.join(',');
    }
    return env;
  }
}

/** nodejs22.x and every later Node.js runtime this aws-cdk-lib knows (nodejs24.x in 2.276). */
export function layerRuntimes(): lambda.Runtime[] {
  const major = (r: lambda.Runtime) => Number(/^nodejs(\d+)\.x$/.exec(r.name)?.[1] ?? 0);
  const seen = new Set<string>();
  return lambda.Runtime.ALL
    .filter((r) => r.family === lambda.RuntimeFamily.NODEJS && !r.isVariable && major(r) >= major(FUNCTION_RUNTIME))
    .filter((r) => !seen.has(r.name) && seen.add(r.name))
    .sort((a, b) => major(a) - major(b));
}

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
const KEY_ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):\d{12}:key\/[A-Za-z0-9-]+$/;

/** Extra regions' keys: real regions, key ARNs (not aliases: IAM grants on an alias ARN do not cover its key), in that region. */
function checkExtraKmsKeyArns(extra: Readonly<Record<string, string>>, stackRegion: string): Record<string, string> {
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
  return { ...extra };
}

/** A copy that runs in the shells NodejsFunction's hooks use on Linux, macOS and Windows alike. */
function copyCommand(from: string, to: string): string {
  return `node -e "require('node:fs').copyFileSync(process.argv[1], process.argv[2])" ${JSON.stringify(from)} ${JSON.stringify(to)}`;
}
