/**
 * The SessionFactory the function keeps at module scope: the layer's builder over the ASHERAH_* environment, which
 * makes the DynamoDB and AWS KMS clients (the Lambda runtime provides @aws-sdk) and closes them with the factory.
 */
import { SessionFactory } from 'asherah-layer';
import type { FunctionConfig } from './config';

interface WarnLogger {
  warn(message: string, details?: Record<string, unknown>): void;
}

export function createFactory(config: FunctionConfig, logger: WarnLogger, env: NodeJS.ProcessEnv = process.env): SessionFactory {
  return SessionFactory.fromEnv(env, { developmentDir: config.developmentDir, logger });
}
