/**
 * The environment variables that configure Asherah in a function, and their defaults: the one list that the
 * function's config, the CDK constructs and users' own functions share, so that a name or a default is written once.
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
} as const;

export type EnvSetting = keyof typeof ENV_NAMES;

export const ENV_DEFAULTS = {
  serviceName: 'asherah-starter',
  productId: 'encrypt-decrypt',
  /** The table name every Asherah implementation uses by default. */
  tableName: 'EncryptionKey',
} as const;
