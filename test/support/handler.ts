/**
 * The encrypt/decrypt handler as the function tests run it: on the embedded default (SQLite in a temp dir, a static
 * key), each execution environment a fresh module.
 */
import path from 'node:path';

export type HandlerModule = typeof import('../../functions/encrypt-decrypt/handler');

// The environment every handler test starts from, written once: `base` (the saved process.env), SQLite at
// <dir>/keys.db, a static key, Powertools quiet; `extra` on top.
export function embeddedHandlerEnv(base: NodeJS.ProcessEnv, dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...base,
    ASHERAH_SQLITE_PATH: path.join(dir, 'keys.db'),
    ASHERAH_STATIC_MASTER_KEY_HEX: '11'.repeat(32),
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    ...extra,
  };
}

// A new execution environment: the handler module loaded in a module registry of its own, once its INIT is done.
export async function freshHandlerModule(): Promise<HandlerModule> {
  let mod: HandlerModule | undefined;
  jest.isolateModules(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require('../../functions/encrypt-decrypt/handler');
  });
  await mod!.ready;
  return mod!;
}
