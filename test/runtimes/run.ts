/**
 * npm run test:runtimes: the BUILT function bundle and layer zip on the Node.js versions and architectures Lambda
 * runs them on (nodejs22.x and nodejs24.x on x86_64, nodejs22.x on arm64 under qemu-user, the stack's default), in
 * Lambda's layout and limits (test/runtimes/lambda-sandbox.ts), through the Runtime API, against DynamoDB
 * (dynalite) and AWS KMS (the KMS-protocol server) on loopback. For each: the pre-warm finishes during INIT, an
 * encrypt and its decrypt round-trip, a bad event is refused with its error class, VmLck stays within 64 KiB.
 * Then the stack's ES module sample, on the same table: it decrypts the first function's record and round-trips
 * its own. Prints one line per function, runtime and architecture, e.g. `node22 arm64: ok`, and exits 1 if any
 * failed.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DUMMY_CREDENTIALS_ENV, startDynalite, TEST_REGION } from '../../scripts/local-aws/dynalite';
import { keyArn, KmsServer } from '../../scripts/local-aws/kms-server';
import { prepareArtifacts, STACK_FUNCTIONS, startFunction, type Artifacts, type RunningFunction, type StackFunction } from '../support/lambda-artifacts';
import { canSandbox, LAMBDA_MEMLOCK_BYTES, sandboxLaunch } from './lambda-sandbox';
import { NODE_22_ARM64, NODE_22_X64, NODE_24_X64, nodeBinary, type NodeRelease } from './node-binaries';

const RUNTIMES: { name: string; major: number; release: NodeRelease }[] = [
  { name: 'node22', major: 22, release: NODE_22_X64 },
  { name: 'node24', major: 24, release: NODE_24_X64 },
  { name: 'node22', major: 22, release: NODE_22_ARM64 },
];
const PAYLOAD = Buffer.from('mysupersecrettext').toString('base64');
/**
 * AWS's Runtime Interface Client, an optional dependency that installs (compiling its native part) on Node 22 and
 * later. It drives the x86_64 runs when present; arm64 runs use the stand-in bootstrap, because its native part
 * is built for this machine's architecture only.
 */
const RIC = path.resolve(__dirname, '..', '..', 'node_modules', 'aws-lambda-ric');
const ric = existsSync(path.join(RIC, 'rapid-client.node')) ? RIC : undefined;

interface Outcome {
  label: string;
  ok: boolean;
  detail: string;
}

function vmLck(pid: number): number {
  const match = /^VmLck:\s*(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(what);
}

/** What a run of one function checks beyond the common part (INIT, VmLck, koffi); returns its timings. */
type Checks = (fn: RunningFunction, kms: KmsServer) => Promise<string>;

async function runOne(
  artifacts: Artifacts,
  runtime: (typeof RUNTIMES)[number],
  fnName: StackFunction,
  env: NodeJS.ProcessEnv,
  kms: KmsServer,
  checks: Checks,
): Promise<Outcome> {
  const label = `${runtime.name} ${runtime.release.arch}${fnName === 'esm-sample' ? ' (ES module sample)' : ''}`;
  const node = nodeBinary(runtime.release);
  const client = runtime.release.arch === hostArch() ? ric : undefined;
  const { handler } = STACK_FUNCTIONS[fnName];
  const launch = sandboxLaunch(artifacts, { node, arch: runtime.release.arch, major: runtime.major, ric: client, handler });
  kms.resetCounts();
  const fn = await startFunction(artifacts, env, launch);
  try {
    const initMs = await fn.initDone();
    let peakLocked = vmLck(fn.process.pid!);
    const timings = await checks(fn, kms);
    peakLocked = Math.max(peakLocked, vmLck(fn.process.pid!));
    check(peakLocked > 0, 'no memory was locked');
    check(peakLocked <= LAMBDA_MEMLOCK_BYTES, `VmLck ${peakLocked} bytes, over the ${LAMBDA_MEMLOCK_BYTES}-byte limit`);
    // koffi's native binary for this architecture was mapped from the layer.
    const koffi = readFileSync(`/proc/${fn.process.pid}/maps`, 'utf8').split('\n').find((line) => line.endsWith('koffi.node'));
    check(koffi?.includes(`/opt/nodejs/node_modules/`) === true && koffi.includes(`linux_${runtime.release.arch}`), `koffi was not loaded from the layer: ${koffi}`);
    const via = client ? 'aws-lambda-ric' : 'bootstrap stand-in';
    return { label, ok: true, detail: `${via}, INIT ${initMs} ms, ${timings}, VmLck ${peakLocked} B` };
  } catch (err) {
    // What the function answers now (an INIT error comes back with every invocation) helps tell why.
    const answer = await fn.invoke({ Partition: 'diagnostic', Payload: PAYLOAD }).catch((e: unknown) => String(e));
    return { label, ok: false, detail: `${(err as Error).message}\n${JSON.stringify(answer).slice(0, 2000)}\n${fn.stderr().slice(-4000)}` };
  } finally {
    await fn.stop();
  }
}

type Drr = { Key: { ParentKeyMeta: { KeyId: string } } };
const IK_ID = '_IK_partition-1_asherah-starter_encrypt-decrypt';

/**
 * The encrypt/decrypt function, first on its table: INIT creates the keys, an encrypt and its decrypt round-trip,
 * a bad event is refused with its class, a warm invocation calls no KMS. Hands its record to the sample's run.
 */
function encryptDecryptChecks(records: Drr[]): Checks {
  return async (fn, kms) => {
    // Nothing invoked yet, and the SK already exists: INIT waited for the pre-warm.
    check(kms.requests.GenerateDataKey === 1, `the pre-warm did not finish during INIT (KMS calls ${JSON.stringify(kms.requests)})`);
    const encrypted = await fn.invoke({ Name: 'e', Partition: 'partition-1', Payload: PAYLOAD });
    check(encrypted.ok, `encrypt failed: ${JSON.stringify(encrypted.body)}`);
    const body = encrypted.body as { DRR: Drr; Metrics: { ColdStart: boolean } };
    check(body.DRR.Key.ParentKeyMeta.KeyId === IK_ID, 'unexpected IK id');
    check(body.Metrics.ColdStart === true, 'the first event was not a cold start');
    const decrypted = await fn.invoke({ Partition: 'partition-1', DRR: body.DRR });
    check(decrypted.ok && (decrypted.body as { Payload?: string }).Payload === PAYLOAD, `decrypt failed: ${JSON.stringify(decrypted.body)}`);
    const rejected = await fn.invoke({ Partition: 'partition-1' });
    check(!rejected.ok && (rejected.body as { errorType?: string }).errorType === 'EventValidationError', `a bad event gave ${JSON.stringify(rejected.body)}`);
    check(kms.requests.Decrypt === 0, 'a warm invocation called KMS');
    records.push(body.DRR);
    return `encrypt ${encrypted.ms.toFixed(0)} ms, decrypt ${decrypted.ms.toFixed(0)} ms`;
  };
}

/**
 * The ES module sample on the same table (its keys exist): INIT loads them (one KMS Decrypt of the SK), it
 * decrypts the encrypt/decrypt function's record, and its own encrypt round-trips.
 */
function esmSampleChecks(records: Drr[]): Checks {
  return async (fn, kms) => {
    check(kms.requests.Decrypt === 1 && kms.requests.GenerateDataKey === 0, `the pre-warm did not load the keys during INIT (KMS calls ${JSON.stringify(kms.requests)})`);
    const record = records.at(-1);
    check(record !== undefined, 'the encrypt/decrypt function left no record to decrypt');
    const theirs = await fn.invoke({ Partition: 'partition-1', DRR: record });
    check(theirs.ok && (theirs.body as { Payload?: string }).Payload === PAYLOAD, `decrypt of the other function's record failed: ${JSON.stringify(theirs.body)}`);
    const encrypted = await fn.invoke({ Partition: 'partition-1', Payload: PAYLOAD });
    const drr = (encrypted.body as { DRR?: Drr }).DRR;
    check(encrypted.ok && drr?.Key.ParentKeyMeta.KeyId === IK_ID, `encrypt failed: ${JSON.stringify(encrypted.body)}`);
    const decrypted = await fn.invoke({ Partition: 'partition-1', DRR: drr });
    check(decrypted.ok && (decrypted.body as { Payload?: string }).Payload === PAYLOAD, `decrypt failed: ${JSON.stringify(decrypted.body)}`);
    const rejected = await fn.invoke({ Partition: 'partition-1' });
    check(!rejected.ok && (rejected.body as { errorType?: string }).errorType === 'EventValidationError', `a bad event gave ${JSON.stringify(rejected.body)}`);
    check(kms.requests.Decrypt === 1, 'a warm invocation called KMS');
    return `decrypt of the other's record ${theirs.ms.toFixed(0)} ms, encrypt ${encrypted.ms.toFixed(0)} ms, decrypt ${decrypted.ms.toFixed(0)} ms`;
  };
}

function hostArch(): 'x64' | 'arm64' {
  return process.arch === 'arm64' ? 'arm64' : 'x64';
}

async function main(): Promise<void> {
  const can = canSandbox();
  if (!can.ok) {
    console.error(`test:runtimes ${can.why}`);
    process.exit(1);
  }
  if (process.argv.includes('--require-ric') && ric === undefined) {
    console.error('test:runtimes --require-ric: aws-lambda-ric is not installed (it installs with npm ci on Node 22 or later)');
    process.exit(1);
  }
  const artifacts = prepareArtifacts('encrypt-decrypt');
  const sample = prepareArtifacts('esm-sample');
  const tables = RUNTIMES.map((_, i) => `EncryptionKey${i}`);
  const dynamo = await startDynalite({ tables });
  const arn = keyArn(TEST_REGION);
  const kms = await KmsServer.start({ keys: [arn] });
  const outcomes: Outcome[] = [];
  try {
    for (const [i, runtime] of RUNTIMES.entries()) {
      const env = {
        ...DUMMY_CREDENTIALS_ENV,
        AWS_REGION: TEST_REGION,
        ASHERAH_METASTORE: 'dynamodb',
        // A table per runtime, so each starts cold and creates its own keys.
        ASHERAH_METASTORE_TABLE_NAME: tables[i],
        ASHERAH_DYNAMODB_ENDPOINT: dynamo.endpoint,
        ASHERAH_KMS_KEY_ARN: arn,
        ASHERAH_KMS_ENDPOINT: kms.endpoint,
        ASHERAH_PREWARM_PARTITIONS: 'partition-1',
      };
      const records: Drr[] = [];
      for (const outcome of [
        await runOne(artifacts, runtime, 'encrypt-decrypt', env, kms, encryptDecryptChecks(records)),
        await runOne(sample, runtime, 'esm-sample', env, kms, esmSampleChecks(records)),
      ]) {
        outcomes.push(outcome);
        console.log(`${outcome.label}: ${outcome.ok ? 'ok' : 'FAILED'} (${outcome.detail})`);
      }
    }
  } finally {
    await kms.close();
    await dynamo.close();
    artifacts.dispose();
    sample.dispose();
  }
  if (outcomes.some((o) => !o.ok)) process.exit(1);
}

void main();
