/** What SessionFactory.create takes; in a file of its own, so that compose.ts and session-factory.ts both import it. */
import type { SecretFactory, SecretFactoryOptions } from '../securememory/secret-factory.js';
import type { CryptoPolicy, CryptoPolicyOptions } from './config/crypto-policy.js';
import type { MetricsHook } from './metrics.js';
import type { Clock, KeyManagementService, Metastore } from './ports.js';

export interface SessionFactoryConfig {
  serviceName: string;
  productId: string;
  metastore: Metastore;
  kms: KeyManagementService;
  policy?: CryptoPolicy | CryptoPolicyOptions;
  metrics?: MetricsHook;
  /** Secure memory: a factory to use, or options for the one made here (e.g. `{ mlock: 'best-effort' }`). */
  secrets?: SecretFactory | SecretFactoryOptions;
  clock?: Clock;
  /**
   * Accept a service, product or region suffix that can make key ids of different services or partitions the
   * same string (docs/partitions.md). Only for existing deployments whose records already use such names.
   */
  legacyKeyIdNames?: boolean;
}
