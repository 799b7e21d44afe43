export {
  InvalidRecordError,
  DecryptError,
  KeyNotFoundError,
  KmsError,
  MetastoreError,
  EventValidationError,
  ClosedError,
} from './errors.js';
export { SessionFactory, type SessionFactoryConfig, type FactoryMetrics, type CloseOptions } from './session-factory.js';
export { Session } from './session.js';
export { CryptoPolicy, type CryptoPolicyOptions } from './config/crypto-policy.js';
export type { MetricName, MetricsHook, MetricsSnapshot } from './metrics.js';
export type { Metastore, KeyManagementService, Clock } from './ports.js';
export {
  decodeDataRowRecord,
  encodeDataRowRecord,
  decodeEnvelopeKeyRecord,
  encodeEnvelopeKeyRecord,
  dataRowRecordToJsonObject,
  type DataRowRecord,
  type EnvelopeKeyRecord,
  type KeyMeta,
  type DataRowRecordJson,
} from './record-codec.js';
export { StaticKms, TEST_DEBUG_STATIC_MASTER_KEY_HEX } from './kms/static-kms.js';
export {
  AwsKms,
  kmsClientsFor,
  type AwsKmsOptions,
  type AwsKmsLogger,
  type AwsKmsMetricsHook,
  type KmsClientOptions,
} from './kms/aws-kms.js';
export { DynamoDbMetastore, type DynamoDbMetastoreOptions } from './metastore/dynamodb-metastore.js';
export { MemoryMetastore } from './metastore/memory-metastore.js';
export { SqliteMetastore } from './metastore/sqlite-metastore.js';
export {
  setup,
  setupAsync,
  encryptAsync,
  decryptAsync,
  encryptStringAsync,
  decryptStringAsync,
  shutdown,
  shutdownAsync,
  getSessionFactory,
} from './asherah-api.js';
export type { AsherahConfig } from './config/config.js';
export { ENV_NAMES, ENV_DEFAULTS, partitionsToPrewarm, type EnvSetting } from './config/env.js';
export { configFromEnv, type EnvConfig, type EnvConfigOptions, type EnvMap } from './config/env-config.js';
export type { FromConfigOptions, FromEnvOptions, BuilderLogger, BuilderMetricsHook } from './config/compose.js';
export { checkRegionMap } from './config/region-map.js';
