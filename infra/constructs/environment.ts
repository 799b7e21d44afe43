/**
 * The ASHERAH_* environment of a function that uses a key store: DynamoDB and AWS KMS, by the names the function
 * reads (layer/src/appencryption/config/env.ts). The one import of layer code in the constructs: copying them into
 * another CDK app, copy env.ts too and point this import at it.
 */
import { ENV_DEFAULTS, ENV_NAMES, formatPartitionList } from '../../layer/src/appencryption/config/env';

export { ENV_DEFAULTS };

export interface AsherahEnvironmentOptions {
  /**
   * ASHERAH_SERVICE_NAME and ASHERAH_PRODUCT_ID. Required, not defaulted: they are part of every key id, so they
   * are chosen once, before the first record, and never changed while records written with them must decrypt.
   */
  readonly serviceName: string;
  readonly productId: string;
  /** Partitions whose keys the function loads during INIT (ASHERAH_PREWARM_PARTITIONS). Default none. */
  readonly prewarmPartitions?: readonly string[];
}

export interface KeyStoreLocation {
  readonly tableName: string;
  /** This region's key. */
  readonly region: string;
  readonly keyArn: string;
  /** Other regions' keys, region → ARN. */
  readonly extraKmsKeyArns: Readonly<Record<string, string>>;
}

export function asherahEnvironment(store: KeyStoreLocation, options: AsherahEnvironmentOptions): Record<string, string> {
  const env: Record<string, string> = {
    [ENV_NAMES.serviceName]: options.serviceName,
    [ENV_NAMES.productId]: options.productId,
    [ENV_NAMES.metastore]: 'dynamodb',
    [ENV_NAMES.tableName]: store.tableName,
    [ENV_NAMES.regionSuffix]: 'false',
    [ENV_NAMES.kms]: 'aws',
  };
  const extra = Object.entries(store.extraKmsKeyArns);
  if (extra.length === 0) {
    env[ENV_NAMES.kmsKeyArn] = store.keyArn;
  } else {
    // Built as text, not JSON.stringify: the region and key ARN are deploy-time tokens, which CloudFormation
    // joins in; neither can contain a character JSON would escape.
    const entries = [
      `"${store.region}":"${store.keyArn}"`,
      ...extra.map(([region, arn]) => `${JSON.stringify(region)}:${JSON.stringify(arn)}`),
    ];
    env[ENV_NAMES.regionMap] = `{${entries.join(',')}}`;
    env[ENV_NAMES.preferredRegion] = store.region;
  }
  if (options.prewarmPartitions?.length) {
    env[ENV_NAMES.prewarmPartitions] = formatPartitionList(options.prewarmPartitions);
  }
  return env;
}
