/**
 * The environment variables that configure Asherah in a function, and their defaults: the one list that
 * SessionFactory.fromEnv (env-config.ts), the CDK constructs and users' own functions share, so that a name or a
 * default is written once. This module imports nothing, so that the CDK app can import it alone.
 */
export const ENV_NAMES = {
  serviceName: 'ASHERAH_SERVICE_NAME',
  productId: 'ASHERAH_PRODUCT_ID',
  metastore: 'ASHERAH_METASTORE',
  sqlitePath: 'ASHERAH_SQLITE_PATH',
  tableName: 'ASHERAH_METASTORE_TABLE_NAME',
  dynamoDbEndpoint: 'ASHERAH_DYNAMODB_ENDPOINT',
  regionSuffix: 'ASHERAH_REGION_SUFFIX',
  legacyKeyIdNames: 'ASHERAH_LEGACY_KEY_ID_NAMES',
  kms: 'ASHERAH_KMS',
  kmsKeyArn: 'ASHERAH_KMS_KEY_ARN',
  regionMap: 'ASHERAH_REGION_MAP',
  preferredRegion: 'ASHERAH_PREFERRED_REGION',
  staticMasterKeyHex: 'ASHERAH_STATIC_MASTER_KEY_HEX',
  allowStaticKms: 'ASHERAH_ALLOW_STATIC_KMS',
  prewarmPartitions: 'ASHERAH_PREWARM_PARTITIONS',
  kmsEndpoint: 'ASHERAH_KMS_ENDPOINT',
  dynamoDbConnectionTimeoutMs: 'ASHERAH_DYNAMODB_CONNECTION_TIMEOUT_MS',
  dynamoDbRequestTimeoutMs: 'ASHERAH_DYNAMODB_REQUEST_TIMEOUT_MS',
  dynamoDbMaxAttempts: 'ASHERAH_DYNAMODB_MAX_ATTEMPTS',
  kmsConnectionTimeoutMs: 'ASHERAH_KMS_CONNECTION_TIMEOUT_MS',
  kmsRequestTimeoutMs: 'ASHERAH_KMS_REQUEST_TIMEOUT_MS',
  kmsMaxAttempts: 'ASHERAH_KMS_MAX_ATTEMPTS',
} as const;

export type EnvSetting = keyof typeof ENV_NAMES;

export const ENV_DEFAULTS = {
  serviceName: 'asherah-starter',
  productId: 'encrypt-decrypt',
  /** The table name every Asherah implementation uses by default. */
  tableName: 'EncryptionKey',
} as const;

/** ASHERAH_PREWARM_PARTITIONS: partition ids separated by commas (blanks dropped), to load during Lambda INIT. */
export function partitionsToPrewarm(env: Readonly<Record<string, string | undefined>> = process.env): string[] {
  return parsePartitionList(env[ENV_NAMES.prewarmPartitions] ?? '');
}

/** A comma-separated list of partition ids, as ASHERAH_PREWARM_PARTITIONS holds it: trimmed, blanks dropped. */
export function parsePartitionList(text: string): string[] {
  return text
    .split(',')
    .map((partition) => partition.trim())
    .filter((partition) => partition !== '');
}

/** The ASHERAH_PREWARM_PARTITIONS value of a list; throws an Error naming an id that the list cannot carry. */
export function formatPartitionList(partitions: readonly string[]): string {
  const bad = partitions.find((p) => p.trim() === '' || p.includes(',') || p !== p.trim());
  if (bad !== undefined) {
    throw new Error(`prewarmPartitions: ${JSON.stringify(bad)} is empty, contains a comma or has spaces around it`);
  }
  return partitions.join(',');
}
