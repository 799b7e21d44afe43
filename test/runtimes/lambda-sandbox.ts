/**
 * Lambda's filesystem and limits around a runtime process, on this machine: a private mount namespace in which
 * the function asset is /var/task, the layer is /opt and the AWS SDK /var/runtime/node_modules, all read-only, the
 * Node binary is /var/lang/bin/node; the process runs as nobody (so only /tmp is writable), without CAP_IPC_LOCK
 * and with RLIMIT_MEMLOCK at Lambda's 64 KiB. arm64 binaries run under qemu-user. Needs root (to mount) and
 * util-linux (unshare, setpriv, prlimit); the mounts vanish with the process.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { BOOTSTRAP, type Artifacts, type Launch } from '../support/lambda-artifacts';

export const LAMBDA_MEMLOCK_BYTES = 64 * 1024;
const QEMU_ARM64 = ['qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu'];

export interface SandboxOptions {
  /** The node binary to run as /var/lang/bin/node. */
  node: string;
  arch: 'x64' | 'arm64';
  /** nodejs22.x → 22: the major version in AWS_EXECUTION_ENV and in the layer's /opt/nodejs/nodeNN path. */
  major: number;
  /**
   * The runtime client: the aws-lambda-ric package directory (AWS's Runtime Interface Client, the one Lambda's
   * container images use), mounted at /var/runtime/ric; or, by default, the bootstrap stand-in of test/support.
   */
  ric?: string;
  /** The function's handler setting (_HANDLER). Default 'init.handler', the encrypt/decrypt function's. */
  handler?: string;
}

export function canSandbox(): { ok: true } | { ok: false; why: string } {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return { ok: false, why: 'needs root on Linux (mount namespaces)' };
  for (const tool of ['/usr/bin/unshare', '/usr/bin/setpriv', '/usr/bin/prlimit']) {
    if (!existsSync(tool)) return { ok: false, why: `needs ${tool} (util-linux)` };
  }
  return { ok: true };
}

export function sandboxLaunch(artifacts: Artifacts, options: SandboxOptions): Launch {
  const handler = options.handler ?? 'init.handler';
  for (const dir of [artifacts.taskRoot, artifacts.optRoot, artifacts.runtimeModules, options.node, BOOTSTRAP, options.ric ?? '/']) {
    // /var is replaced inside the namespace: nothing the runtime needs may live under it.
    if (path.resolve(dir).startsWith('/var/')) throw new Error(`${dir} is under /var, which the sandbox replaces`);
  }
  const mounts = [
    'set -e',
    'mount -t tmpfs -o mode=755 tmpfs /var',
    'mkdir -p /var/task /var/runtime/node_modules /var/runtime/ric /var/lang/bin',
    'touch /var/lang/bin/node /var/runtime/bootstrap.mjs',
    ...[
      [artifacts.taskRoot, '/var/task'],
      [artifacts.runtimeModules, '/var/runtime/node_modules'],
      [options.node, '/var/lang/bin/node'],
      [BOOTSTRAP, '/var/runtime/bootstrap.mjs'],
      [artifacts.optRoot, '/opt'],
      ...(options.ric ? [[options.ric, '/var/runtime/ric']] : []),
    ].map(([from, to]) => `mount --bind '${from}' ${to} && mount -o remount,ro,bind ${to}`),
    'cd /var/task',
    'exec "$@"',
  ].join('\n');
  const unprivileged = [
    'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-ipc_lock',
    'prlimit', `--memlock=${LAMBDA_MEMLOCK_BYTES}:${LAMBDA_MEMLOCK_BYTES}`,
    ...(options.arch === 'arm64' && process.arch !== 'arm64' ? QEMU_ARM64 : []),
    '/var/lang/bin/node',
    ...(options.ric ? ['/var/runtime/ric/index.mjs', handler] : ['/var/runtime/bootstrap.mjs']),
  ];
  return {
    command: 'unshare',
    args: ['--mount', '--propagation', 'private', 'sh', '-c', mounts, 'sandbox', ...unprivileged],
    cwd: '/',
    env: {
      // Lambda's NODE_PATH for the nodejsNN.x runtimes.
      NODE_PATH: [`/opt/nodejs/node${options.major}/node_modules`, '/opt/nodejs/node_modules', '/var/runtime/node_modules', '/var/runtime', '/var/task'].join(':'),
      LAMBDA_TASK_ROOT: '/var/task',
      _HANDLER: handler,
      LAMBDA_RUNTIME_DIR: '/var/runtime',
      AWS_EXECUTION_ENV: `AWS_Lambda_nodejs${options.major}.x`,
      PATH: '/var/lang/bin:/usr/local/bin:/usr/bin:/bin',
    },
  };
}
