/**
 * Runs the BUILT artifacts as Lambda does: the function asset that `cdk synth` bundles (index.js + init.mjs) in a
 * /var/task-like folder, the unzipped layer in an /opt-like folder, Lambda's NODE_PATH, and a runtime process
 * that polls a local Runtime API. The AWS SDK comes from a /var/runtime-like folder holding only @aws-sdk and its
 * dependencies, as the managed runtime provides them, so nothing else of this repo can leak in.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import AdmZip from 'adm-zip';
import { addStarterStack } from '../../infra/asherah-app';
import { testApp, layerZip } from './cdk';
import { LambdaRuntimeApi, type InvocationResult } from './lambda-runtime-api';

const ROOT = path.resolve(__dirname, '..', '..');

export interface Artifacts {
  /** The /var/task-like folder with the bundled function. */
  taskRoot: string;
  /** The /opt-like folder with the unzipped layer. */
  optRoot: string;
  /** The /var/runtime/node_modules-like folder with the AWS SDK. */
  runtimeModules: string;
  dispose(): void;
}

/** The starter stack's functions: the asset file that tells each one's bundle apart, and its handler setting. */
export const STACK_FUNCTIONS = {
  'encrypt-decrypt': { marker: 'init.mjs', handler: 'init.handler' },
  'esm-sample': { marker: 'index.mjs', handler: 'index.handler' },
} as const;
export type StackFunction = keyof typeof STACK_FUNCTIONS;

/**
 * Synthesizes the stack (bundling its functions with esbuild, as `cdk deploy` would) and lays out the artifacts of
 * one function (default the encrypt/decrypt function).
 */
export function prepareArtifacts(fn: StackFunction = 'encrypt-decrypt'): Artifacts {
  const work = mkdtempSync(path.join(tmpdir(), 'lambda-artifacts-'));
  // Without an outdir the App synthesizes into a fresh temporary directory of its own.
  const app = testApp();
  addStarterStack(app, layerZip());
  const out = app.synth().directory;
  const { marker } = STACK_FUNCTIONS[fn];
  const asset = readdirSync(out)
    .map((name) => path.join(out, name))
    .find((dir) => existsSync(path.join(dir, marker)));
  if (asset === undefined) throw new Error(`no function asset with ${marker} in ${out}`);

  const taskRoot = path.join(work, 'var', 'task');
  cpSync(asset, taskRoot, { recursive: true });
  const optRoot = path.join(work, 'opt');
  new AdmZip(layerZip()).extractAllTo(optRoot, true);
  const runtimeModules = path.join(work, 'var', 'runtime', 'node_modules');
  linkSdk(runtimeModules, ['@aws-sdk/client-dynamodb', '@aws-sdk/client-kms']);
  return {
    taskRoot,
    optRoot,
    runtimeModules,
    dispose: () => {
      rmSync(work, { recursive: true, force: true });
      rmSync(out, { recursive: true, force: true });
    },
  };
}

/**
 * The same layout for a function other than the starter stack's, with no synth: `files` (name → contents, e.g. a
 * bundled handler.mjs) as the task root, the layer zip unzipped as /opt, and the runtime's AWS SDK.
 */
export function prepareTaskArtifacts(files: Record<string, string | Uint8Array>): Artifacts {
  const work = mkdtempSync(path.join(tmpdir(), 'lambda-artifacts-'));
  const taskRoot = path.join(work, 'var', 'task');
  mkdirSync(taskRoot, { recursive: true });
  for (const [name, data] of Object.entries(files)) writeFileSync(path.join(taskRoot, name), data);
  const optRoot = path.join(work, 'opt');
  new AdmZip(layerZip()).extractAllTo(optRoot, true);
  const runtimeModules = path.join(work, 'var', 'runtime', 'node_modules');
  linkSdk(runtimeModules, ['@aws-sdk/client-dynamodb', '@aws-sdk/client-kms']);
  return { taskRoot, optRoot, runtimeModules, dispose: () => rmSync(work, { recursive: true, force: true }) };
}

/** Symlinks the packages and their dependency closure from this repo's node_modules. */
function linkSdk(target: string, roots: string[]): void {
  mkdirSync(target, { recursive: true });
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const dir = path.join(ROOT, 'node_modules', name);
    if (!existsSync(dir)) return; // an optional dependency for another platform
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    const link = path.join(target, name);
    mkdirSync(path.dirname(link), { recursive: true });
    symlinkSync(dir, link, 'dir');
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep);
  };
  roots.forEach(visit);
}

export interface RunningFunction {
  api: LambdaRuntimeApi;
  process: ChildProcess;
  /** When the runtime process was started, as Date.now(). */
  startedAt: number;
  stderr: () => string;
  invoke(event: unknown): Promise<InvocationResult & { ms: number }>;
  /** Resolves once INIT is over (the runtime asked for its first event), or rejects if the process exits first. */
  initDone(): Promise<number>;
  stop(): Promise<void>;
}

/** The runtime bootstrap that polls the Runtime API (a stand-in for the managed runtime's). */
export const BOOTSTRAP = path.join(__dirname, 'lambda-bootstrap.mjs');

/** How to start the runtime process: by default this Node.js, with the artifacts where prepareArtifacts put them. */
export interface Launch {
  command: string;
  args: string[];
  /** Where the runtime sees the artifacts and what Lambda sets for them (NODE_PATH, LAMBDA_TASK_ROOT, …). */
  env: NodeJS.ProcessEnv;
  cwd: string;
}

function defaultLaunch(artifacts: Artifacts): Launch {
  const opt = artifacts.optRoot;
  const nodePath = [path.join(opt, 'nodejs', 'node22', 'node_modules'), path.join(opt, 'nodejs', 'node_modules'), artifacts.runtimeModules, artifacts.taskRoot].join(':');
  return {
    command: process.execPath,
    args: [BOOTSTRAP],
    cwd: artifacts.taskRoot,
    env: { NODE_PATH: nodePath, LAMBDA_TASK_ROOT: artifacts.taskRoot, AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x' },
  };
}

/** Starts a runtime process on the artifacts, as one Lambda execution environment. */
export async function startFunction(
  artifacts: Artifacts,
  env: NodeJS.ProcessEnv,
  launch: Launch = defaultLaunch(artifacts),
): Promise<RunningFunction> {
  const api = await LambdaRuntimeApi.start();
  const startedAt = Date.now();
  const child = spawn(launch.command, launch.args, {
    cwd: launch.cwd,
    env: {
      PATH: process.env.PATH,
      LANG: 'en_US.UTF-8',
      TZ: ':UTC',
      _HANDLER: 'init.handler',
      AWS_LAMBDA_RUNTIME_API: api.address,
      AWS_LAMBDA_FUNCTION_NAME: 'asherah-starter',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/asherah-starter',
      AWS_LAMBDA_LOG_STREAM_NAME: '2026/12/03/[$LATEST]00000000000000000000000000000000',
      ...launch.env,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    api,
    process: child,
    startedAt,
    stderr: () => stderr,
    async invoke(event) {
      const start = process.hrtime.bigint();
      const result = await Promise.race([
        api.invoke(event),
        exited.then((code) => Promise.reject(new Error(`runtime exited (${code}) during an invocation:\n${stderr}`))),
      ]);
      return { ...result, ms: Number(process.hrtime.bigint() - start) / 1e6 };
    },
    async initDone() {
      for (;;) {
        if (api.initDoneAt !== undefined) return api.initDoneAt - startedAt;
        if (child.exitCode !== null) throw new Error(`runtime exited (${child.exitCode}) during INIT:\n${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
    async stop() {
      child.kill();
      await exited;
      await api.close();
    },
  };
}
