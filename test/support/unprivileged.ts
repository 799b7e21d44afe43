/**
 * Runs a TypeScript entry point in a child node process, optionally without CAP_IPC_LOCK and with a given
 * RLIMIT_MEMLOCK, as in Lambda. The kernel checks the capability, not the uid, so dropping it from the bounding
 * set is enough: the child stays root and can read the checkout wherever CI clones it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

export const repoRoot = path.resolve(__dirname, '../..');

export interface ChildOptions {
  /** Drop CAP_IPC_LOCK and set RLIMIT_MEMLOCK soft and hard to this many bytes. */
  memlockBytes?: number;
  nodeFlags?: string[];
  env?: NodeJS.ProcessEnv;
}

export function canDropPrivileges(): boolean {
  return process.platform === 'linux' && process.getuid?.() === 0 && existsSync('/usr/bin/setpriv') && existsSync('/usr/bin/prlimit');
}

export function runTs(entry: string, args: string[], options: ChildOptions = {}) {
  const node = [process.execPath, ...(options.nodeFlags ?? []), '--import', 'tsx', path.join(repoRoot, entry), ...args];
  const command =
    options.memlockBytes === undefined
      ? node
      : [
          'setpriv', '--inh-caps=-ipc_lock', '--bounding-set=-ipc_lock',
          'prlimit', `--memlock=${options.memlockBytes}:${options.memlockBytes}`, ...node,
        ];
  const result = spawnSync(command[0], command.slice(1), {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, ...options.env },
    timeout: 110_000,
  });
  if (result.error) throw result.error;
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

/** The last line of stdout, parsed as JSON (the children print one JSON line). */
export function lastJson<T = Record<string, unknown>>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}
