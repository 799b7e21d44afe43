/**
 * The starter's stack: the encrypt/decrypt function and its ES module sample, each given Asherah by the two
 * constructs any function uses it through: the layer (the SDK every function shares) and the key store (the KMS
 * key that encrypts the system keys and the DynamoDB metastore, both retained when the stack is deleted).
 */
import path from 'node:path';
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { OutputFormat, type NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { Construct } from 'constructs';
import { ENV_DEFAULTS } from '../layer/src/appencryption/config/env';
import { AsherahKeyStore, AsherahLayer, type AsherahEnvironmentOptions } from './constructs';
import { PROJECT_ROOT, starterFunction, type FunctionDefaults } from './starter-function';

export { FUNCTION_RUNTIME } from './starter-function';

const FUNCTIONS_DIR = path.join(PROJECT_ROOT, 'functions');

export interface AsherahStackProps extends StackProps, FunctionDefaults {
  /** The zip layer/build.ts writes (dist/asherah-layer.zip). */
  readonly layerZipPath: string;
  /**
   * KMS keys in other regions, region → key ARN, for Asherah's multi-region envelope: each system key is also
   * encrypted under these, so it can be decrypted in any of them. With any, the functions get ASHERAH_REGION_MAP
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
  /** Partitions whose keys the functions load during INIT (ASHERAH_PREWARM_PARTITIONS). Default none. */
  readonly prewarmPartitions?: readonly string[];
  /** Deploy the ES module sample (functions/esm-sample) too. Default true. */
  readonly esmSample?: boolean;
}

export class AsherahStack extends Stack {
  readonly keyStore: AsherahKeyStore;
  readonly key: kms.Key;
  readonly table: dynamodb.Table;
  readonly layer: AsherahLayer;
  readonly function: NodejsFunction;
  /** Undefined with `esmSample: false`. */
  readonly esmSampleFunction?: NodejsFunction;

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

    // Both functions use the same service and product, so they share keys: a record either one encrypts, the
    // other decrypts.
    const asherah: AsherahEnvironmentOptions = {
      serviceName: props.serviceName ?? ENV_DEFAULTS.serviceName,
      productId: props.productId ?? ENV_DEFAULTS.productId,
      prewarmPartitions: props.prewarmPartitions,
    };

    const encryptDecryptDir = path.join(FUNCTIONS_DIR, 'encrypt-decrypt');
    this.function = starterFunction(this, 'Function', {
      name: 'encrypt/decrypt',
      description: 'Asherah encrypt/decrypt (events of the Go Lambda sample: Payload → DRR, DRR → Payload)',
      entry: path.join(encryptDecryptDir, 'handler.ts'),
      // init.mjs, an ES module beside the bundle, awaits the key pre-warm at top level so INIT waits for it.
      handler: 'init.handler',
      bundling: {
        format: OutputFormat.CJS, // CommonJS: require() honours NODE_PATH, where Lambda puts /opt/nodejs/node_modules
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (inputDir: string, outputDir: string) => [copyCommand(
            path.join(inputDir, path.relative(PROJECT_ROOT, encryptDecryptDir), 'init.mjs'),
            path.join(outputDir, 'init.mjs'),
          )],
        },
      },
      defaults: props,
    });
    this.layer.attachTo(this.function);
    this.keyStore.configure(this.function, asherah);

    if (props.esmSample ?? true) {
      this.esmSampleFunction = starterFunction(this, 'EsmSampleFunction', {
        name: 'ES module sample',
        description: 'Asherah ES module sample (functions/esm-sample: Payload → DRR, DRR → Payload)',
        entry: path.join(FUNCTIONS_DIR, 'esm-sample', 'handler.mts'),
        handler: 'index.handler', // NodejsFunction writes an ES module bundle to index.mjs
        // ESM, so the top-level await of the pre-warm holds INIT. No createRequire banner: nothing bundled calls
        // require, and the sample makes its own require for asherah-layer (see docs/using-the-layer.md).
        bundling: { format: OutputFormat.ESM },
        defaults: props,
      });
      this.layer.attachTo(this.esmSampleFunction);
      this.keyStore.configure(this.esmSampleFunction, asherah);
    }

    new CfnOutput(this, 'FunctionName', { value: this.function.functionName, description: 'aws lambda invoke --function-name' });
    if (this.esmSampleFunction) {
      new CfnOutput(this, 'EsmSampleFunctionName', { value: this.esmSampleFunction.functionName, description: 'the ES module sample, same events' });
    }
    new CfnOutput(this, 'LayerVersionArn', { value: this.layer.layerVersionArn, description: 'asherah-layer, for other functions' });
    new CfnOutput(this, 'TableName', { value: this.table.tableName, description: 'Asherah metastore (retained)' });
    new CfnOutput(this, 'KeyArn', { value: this.key.keyArn, description: 'Asherah master key (retained)' });
  }
}

/** A copy that runs in the shells NodejsFunction's hooks use on Linux, macOS and Windows alike. */
function copyCommand(from: string, to: string): string {
  return `node -e "require('node:fs').copyFileSync(process.argv[1], process.argv[2])" ${JSON.stringify(from)} ${JSON.stringify(to)}`;
}
