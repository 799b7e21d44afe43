/**
 * What is the function's own in its configuration (README.md, "Configuration"). Everything
 * about Asherah (metastore, KMS, names, the Lambda rules and defaults) is read from the same ASHERAH_* variables
 * by the layer's SessionFactory.fromEnv, which the stack and users' own functions share.
 */
import path from 'node:path';
import { partitionsToPrewarm } from 'asherah-layer';

export interface FunctionConfig {
  /**
   * Outside Lambda, where the SQLite file (metastore.db) and a development master key generated once
   * (dev-master-key.hex, mode 0600) live when ASHERAH_SQLITE_PATH / ASHERAH_STATIC_MASTER_KEY_HEX are unset:
   * .local/ under the working directory (git-ignored), so that `npm start` runs with nothing set.
   */
  developmentDir: string;
  /** ASHERAH_PREWARM_PARTITIONS: loaded during INIT. */
  prewarmPartitions: string[];
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): FunctionConfig {
  return {
    developmentDir: path.join(cwd, '.local'),
    prewarmPartitions: partitionsToPrewarm(env),
  };
}
