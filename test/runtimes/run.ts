/**
 * npm run test:runtimes: the BUILT function bundle and layer zip on the Node.js versions and architectures Lambda
 * runs them on (nodejs22.x and nodejs24.x on x86_64, nodejs22.x on arm64 under qemu-user, the stack's default), in
 * Lambda's layout and limits (test/runtimes/lambda-sandbox.ts), through the Runtime API, against DynamoDB
 * (dynalite) and AWS KMS (the KMS-protocol server) on loopback. For each: the pre-warm finishes during INIT, an
 * encrypt and its decrypt round-trip, a bad event is refused with its error class, VmLck stays within 64 KiB.
 * Prints one line per runtime and architecture, e.g. `node22 arm64: ok`, and exits 1 if any failed.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DUMMY_CREDENTIALS_ENV, startDynalite, TEST_REGION } from '../../scripts/local-aws/dynalite';
import { keyArn, KmsServer } from '../../scripts/local-aws/kms-server';
import { prepareArtifacts, startFunction, type Artifacts } from '../support/lambda-artifacts';
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

async function runOne(
  artifacts: Artifacts,
  runtime: (typeof RUNTIMES)[number],
  env: NodeJS.ProcessEnv,
  kms: KmsServer,
): Promise<Outcome> {
  const label = `${runtime.name} ${runtime.release.arch}`;
  const node = nodeBinary(runtime.release);
  const client = runtime.release.arch === hostArch() ? ric : undefined;
  const launch = sandboxLaunch(artifacts, { node, arch: runtime.release.arch, major: runtime.major, ric: client });
  kms.resetCounts();
  const fn = await startFunction(artifacts, env, launch);
  try {
    const initMs = await fn.initDone();
    // Nothing invoked yet, and the SK already exists: INIT waited for the pre-warm.
    check(kms.requests.GenerateDataKey === 1, `the pre-warm did not finish during INIT (KMS calls ${JSON.stringify(kms.requests)})`);
    let peakLocked = vmLck(fn.process.pid!);

    const encrypted = await fn.invoke({ Name: 'e', Partition: 'partition-1', Payload: PAYLOAD });
    check(encrypted.ok, `encrypt failed: ${JSON.stringify(encrypted.body)}`);
    const body = encrypted.body as { DRR: { Key: { ParentKeyMeta: { KeyId: string } } }; Metrics: { ColdStart: boolean } };
    check(body.DRR.Key.ParentKeyMeta.KeyId === '_IK_partition-1_asherah-starter_encrypt-decrypt', 'unexpected IK id');
    check(body.Metrics.ColdStart === true, 'the first event was not a cold start');
    peakLocked = Math.max(peakLocked, vmLck(fn.process.pid!));

    const decrypted = await fn.invoke({ Partition: 'partition-1', DRR: body.DRR });
    check(decrypted.ok && (decrypted.body as { Payload?: string }).Payload === PAYLOAD, `decrypt failed: ${JSON.stringify(decrypted.body)}`);
    const rejected = await fn.invoke({ Partition: 'partition-1' });
    check(!rejected.ok && (rejected.body as { errorType?: string }).errorType === 'EventValidationError', `a bad event gave ${JSON.stringify(rejected.body)}`);
    peakLocked = Math.max(peakLocked, vmLck(fn.process.pid!));
    check(peakLocked > 0, 'no memory was locked');
    check(peakLocked <= LAMBDA_MEMLOCK_BYTES, `VmLck ${peakLocked} bytes, over the ${LAMBDA_MEMLOCK_BYTES}-byte limit`);
    check(kms.requests.Decrypt === 0, 'a warm invocation called KMS');
    // koffi's native binary for this architecture was mapped from the layer.
    const koffi = readFileSync(`/proc/${fn.process.pid}/maps`, 'utf8').split('\n').find((line) => line.endsWith('koffi.node'));
    check(koffi?.includes(`/opt/nodejs/node_modules/`) === true && koffi.includes(`linux_${runtime.release.arch}`), `koffi was not loaded from the layer: ${koffi}`);
    const via = client ? 'aws-lambda-ric' : 'bootstrap stand-in';
    return { label, ok: true, detail: `${via}, INIT ${initMs} ms, encrypt ${encrypted.ms.toFixed(0)} ms, decrypt ${decrypted.ms.toFixed(0)} ms, VmLck ${peakLocked} B` };
  } catch (err) {
    // What the function answers now (an INIT error comes back with every invocation) helps tell why.
    const answer = await fn.invoke({ Partition: 'diagnostic', Payload: PAYLOAD }).catch((e: unknown) => String(e));
    return { label, ok: false, detail: `${(err as Error).message}\n${JSON.stringify(answer).slice(0, 2000)}\n${fn.stderr().slice(-4000)}` };
  } finally {
    await fn.stop();
  }
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
  const artifacts = prepareArtifacts();
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
      const outcome = await runOne(artifacts, runtime, env, kms);
      outcomes.push(outcome);
      console.log(`${outcome.label}: ${outcome.ok ? 'ok' : 'FAILED'} (${outcome.detail})`);
    }
  } finally {
    await kms.close();
    await dynamo.close();
    artifacts.dispose();
  }
  if (outcomes.some((o) => !o.ok)) process.exit(1);
}

void main();
