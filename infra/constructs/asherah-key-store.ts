/**
 * Where Asherah keeps its keys, shared by any number of functions: a KMS key that encrypts the system keys, and
 * the DynamoDB metastore. Both are retained when the stack is deleted, because losing either makes every record
 * ever encrypted under them unreadable.
 */
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { asherahEnvironment, ENV_DEFAULTS, type AsherahEnvironmentOptions } from './environment';
import { checkExtraKmsKeyArns } from './extra-kms-keys';

/** The KMS actions Asherah's AWS KMS adapter calls: a data key in the preferred region, Encrypt elsewhere, Decrypt. */
export const KMS_ACTIONS: readonly string[] = ['kms:GenerateDataKey', 'kms:Encrypt', 'kms:Decrypt'];
/** The DynamoDB actions the metastore calls: load (GetItem), load latest (Query), store (conditional PutItem). */
export const DYNAMODB_ACTIONS: readonly string[] = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'];

export interface AsherahKeyStoreProps {
  /** Default 'EncryptionKey', the table name every Asherah implementation uses by default. */
  readonly tableName?: string;
  /** Default none. */
  readonly keyAlias?: string;
  /** Default 'Asherah master key: encrypts the system keys; retained when the stack is deleted'. */
  readonly keyDescription?: string;
  /**
   * KMS keys in other regions, region → key ARN, for Asherah's multi-region envelope: each system key is also
   * encrypted under these, so it can be decrypted in any of them. With any, functions get ASHERAH_REGION_MAP
   * (this key under this stack's region, then these) and ASHERAH_PREFERRED_REGION (this stack's region), and
   * the grant covers these keys too.
   */
  readonly extraKmsKeyArns?: Readonly<Record<string, string>>;
}

export class AsherahKeyStore extends Construct {
  readonly key: kms.Key;
  readonly table: dynamodb.Table;
  /** The other regions' keys, checked. */
  readonly extraKmsKeyArns: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: AsherahKeyStoreProps = {}) {
    super(scope, id);
    this.extraKmsKeyArns = checkExtraKmsKeyArns(this, props.extraKmsKeyArns ?? {});

    this.key = new kms.Key(this, 'MasterKey', {
      description: props.keyDescription ?? 'Asherah master key: encrypts the system keys; retained when the stack is deleted',
      alias: props.keyAlias,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Asherah's metastore schema (docs/wire-format.md §3.4): Id (S) hash key, Created (N, unix seconds) range key.
    this.table = new dynamodb.Table(this, 'Metastore', {
      tableName: props.tableName ?? ENV_DEFAULTS.tableName,
      partitionKey: { name: 'Id', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'Created', type: dynamodb.AttributeType.NUMBER },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /** This key's ARN, then the other regions'. */
  get keyArns(): string[] {
    return [this.key.keyArn, ...Object.values(this.extraKmsKeyArns)];
  }

  /**
   * Exactly what Asherah needs, on these keys and this table only: kms:GenerateDataKey, kms:Encrypt, kms:Decrypt
   * and dynamodb:GetItem, dynamodb:PutItem, dynamodb:Query. Not kms.Key's grantEncryptDecrypt, which adds
   * ReEncrypt* and GenerateDataKey*, nor Table's grants, which add Scan, BatchGetItem and DescribeTable.
   */
  grantEncryptDecrypt(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: [...KMS_ACTIONS], resourceArns: this.keyArns })
      .combine(iam.Grant.addToPrincipal({ grantee, actions: [...DYNAMODB_ACTIONS], resourceArns: [this.table.tableArn] }));
  }

  /** The ASHERAH_* variables that point a function at this key store. */
  environment(options: AsherahEnvironmentOptions): Record<string, string> {
    return asherahEnvironment({
      tableName: this.table.tableName,
      region: Stack.of(this).region,
      keyArn: this.key.keyArn,
      extraKmsKeyArns: this.extraKmsKeyArns,
    }, options);
  }

  /** Sets `fn`'s ASHERAH_* environment for this key store and grants its role the six actions. */
  configure(fn: lambda.Function, options: AsherahEnvironmentOptions): iam.Grant {
    for (const [name, value] of Object.entries(this.environment(options))) fn.addEnvironment(name, value);
    return this.grantEncryptDecrypt(fn);
  }
}
