/**
 * Builds the SessionFactory the function keeps at module scope, with the adapters its config names. The AWS SDK
 * clients are made here, at the edge: the layer's core only takes them injected (the Lambda runtime provides
 * @aws-sdk; the function bundle leaves it external).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  AwsKms,
  DynamoDbMetastore,
  kmsClientsFor,
  SecretFactory,
  SessionFactory,
  SqliteMetastore,
  StaticKms,
  type KeyManagementService,
  type Metastore,
} from 'asherah-layer';
import type { FunctionConfig } from './config';

export interface BuiltFactory {
  factory: SessionFactory;
  close(): Promise<void>;
}

interface WarnLogger {
  warn(message: string, details?: Record<string, unknown>): void;
}

export async function createFactory(config: FunctionConfig, logger: WarnLogger): Promise<BuiltFactory> {
  const secrets = new SecretFactory({ logger: { warn: (message, details) => logger.warn(message, details) } });
  const closers: Array<() => unknown> = [() => secrets.close()];
  try {
    const metastore = await buildMetastore(config, closers);
    const kms = buildKms(config, secrets, logger, closers);
    const factory = SessionFactory.create({
      serviceName: config.serviceName,
      productId: config.productId,
      metastore,
      kms,
      secrets,
      legacyKeyIdNames: config.legacyKeyIdNames,
    });
    return {
      factory,
      close: async () => {
        await factory.close();
        for (const close of closers.reverse()) await close();
      },
    };
  } catch (err) {
    for (const close of closers.reverse()) await close();
    throw err;
  }
}

async function buildMetastore(config: FunctionConfig, closers: Array<() => unknown>): Promise<Metastore> {
  if (config.metastore === 'sqlite') {
    const sqlite = new SqliteMetastore(config.sqlitePath);
    closers.push(() => sqlite.close());
    return sqlite;
  }
  const client = new DynamoDBClient(config.dynamoDbEndpoint ? { endpoint: config.dynamoDbEndpoint } : {});
  closers.push(() => client.destroy());
  return DynamoDbMetastore.create(client, {
    tableName: config.tableName,
    regionSuffix: config.regionSuffix,
    legacyKeyIdNames: config.legacyKeyIdNames,
  });
}

function buildKms(
  config: FunctionConfig,
  secrets: SecretFactory,
  logger: WarnLogger,
  closers: Array<() => unknown>,
): KeyManagementService {
  if (config.kms === 'static') {
    const kms = new StaticKms(config.staticMasterKeyHex!, secrets);
    closers.push(() => kms.close());
    return kms;
  }
  const endpoint = process.env.ASHERAH_KMS_ENDPOINT;
  const clients = kmsClientsFor(config.regionMap, endpoint ? { endpoint } : undefined);
  closers.push(() => Object.values(clients).forEach((client) => client.destroy()));
  return new AwsKms({ regionMap: config.regionMap, preferredRegion: config.preferredRegion, clients, secrets, logger });
}
