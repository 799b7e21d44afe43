/**
 * Cold and warm invocations of the BUILT function (the bundle and the layer zip, in Lambda's layout, driven
 * through a local Runtime API; DynamoDB on dynalite, AWS KMS on the KMS-protocol test server), with and without
 * ASHERAH_PREWARM_PARTITIONS. Each "environment" is a new runtime process, as a Lambda cold start is. Reports the
 * medians of INIT time, the first invocation, later (warm) invocations, and the KMS and metastore calls each
 * phase costs. Local loopback servers answer in well under a millisecond, so these times are the library's own
 * cost; real KMS and DynamoDB add their round trips to each call counted here.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { canSandbox, sandboxLaunch } from '../test/runtimes/lambda-sandbox';
import { NODE_22_X64, nodeBinary } from '../test/runtimes/node-binaries';
import { DUMMY_CREDENTIALS_ENV, startDynalite, TEST_REGION } from '../scripts/local-aws/dynalite';
import { keyArn, KmsServer } from '../scripts/local-aws/kms-server';
import { prepareArtifacts, startFunction, type Artifacts, type Launch } from '../test/support/lambda-artifacts';

interface Sample {
  initMs: number;
  firstMs: number;
  warmMs: number;
  initKms: number;
  firstKms: number;
  warmKms: number;
  initMetastore: number;
  firstMetastore: number;
  warmMetastore: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Floors for INIT, measured in the same run: handlers that do nothing but what any function of this kind must
 * (nothing at all; load koffi from the layer and make the AWS SDK clients the function uses).
 */
const FLOORS: Record<string, string> = {
  'floor: empty handler': 'exports.handler = async () => ({});\n',
  'floor: koffi + SDK clients': [
    "require('koffi');",
    "const { DynamoDBClient } = require('@aws-sdk/client-dynamodb');",
    "const { KMSClient } = require('@aws-sdk/client-kms');",
    'new DynamoDBClient({}); new KMSClient({});',
    'exports.handler = async () => ({});',
    '',
  ].join('\n'),
};

/** Node 22 in Lambda's layout and limits where this host allows it (root), else Node 22 on the repo's layout. */
function node22Launch(artifacts: Artifacts): Launch | undefined {
  const node = nodeBinary(NODE_22_X64);
  if (canSandbox().ok) return sandboxLaunch(artifacts, { node, arch: 'x64', major: 22 });
  return undefined;
}

export interface FloorSample {
  initMs: number;
  firstMs: number;
}

/** INIT and first-invoke medians of the floor handlers, each in `environments` fresh processes. */
export async function runFloors(artifacts: Artifacts, environments: number): Promise<Record<string, FloorSample>> {
  const results: Record<string, FloorSample> = {};
  for (const [label, source] of Object.entries(FLOORS)) {
    const taskRoot = mkdtempSync(path.join(tmpdir(), 'floor-'));
    try {
      chmodSync(taskRoot, 0o755); // mkdtemp makes it 0700; the runtime runs as nobody
      writeFileSync(path.join(taskRoot, 'index.js'), source);
      const floor = { ...artifacts, taskRoot };
      const inits: number[] = [];
      const firsts: number[] = [];
      for (let i = 0; i < environments; i++) {
        const fn = await startFunction(floor, { ...DUMMY_CREDENTIALS_ENV, AWS_REGION: TEST_REGION, _HANDLER: 'index.handler' }, node22Launch(floor));
        inits.push(await fn.initDone());
        firsts.push((await fn.invoke({})).ms);
        await fn.stop();
      }
      results[label] = { initMs: median(inits), firstMs: median(firsts) };
    } finally {
      rmSync(taskRoot, { recursive: true, force: true });
    }
  }
  return results;
}

export async function runColdStartBench(environments = 5, warmInvocations = 50): Promise<Record<string, Sample | FloorSample>> {
  const artifacts = prepareArtifacts();
  const dynamo = await startDynalite();
  const arn = keyArn(TEST_REGION);
  const kms = await KmsServer.start({ keys: [arn] });
  const kmsCalls = () => kms.requests.GenerateDataKey + kms.requests.Encrypt + kms.requests.Decrypt;
  const results: Record<string, Sample | FloorSample> = {};
  try {
    Object.assign(results, await runFloors(artifacts, environments));
    // Keys exist before the measured cold starts, as in a running system: each cold start loads, never creates.
    const seed = await startFunction(artifacts, env(dynamo.endpoint, arn, kms.endpoint, ''), node22Launch(artifacts));
    await seed.initDone();
    await seed.invoke({ Partition: 'tenant-1', Payload: 'aGk=' });
    await seed.stop();

    for (const [label, prewarm] of [['no pre-warm', ''], ['ASHERAH_PREWARM_PARTITIONS=tenant-1', 'tenant-1']] as const) {
      const samples: Sample[] = [];
      for (let i = 0; i < environments; i++) {
        const kmsBefore = kmsCalls();
        const fn = await startFunction(artifacts, env(dynamo.endpoint, arn, kms.endpoint, prewarm), node22Launch(artifacts));
        const initMs = await fn.initDone();
        const initKms = kmsCalls() - kmsBefore;
        const first = await fn.invoke({ Partition: 'tenant-1', Payload: 'aGk=' });
        const m1 = (first.body as { Metrics: { KmsCalls: number; MetastoreCalls: number } }).Metrics;
        const warm: number[] = [];
        let last = m1;
        for (let w = 0; w < warmInvocations; w++) {
          const r = await fn.invoke({ Partition: 'tenant-1', Payload: 'aGk=' });
          warm.push(r.ms);
          last = (r.body as { Metrics: typeof m1 }).Metrics;
        }
        await fn.stop();
        const initMetastore = prewarm ? m1.MetastoreCalls : 0;
        samples.push({
          initMs,
          firstMs: first.ms,
          warmMs: median(warm),
          initKms,
          firstKms: m1.KmsCalls - initKms,
          warmKms: (last.KmsCalls - m1.KmsCalls) / warmInvocations,
          initMetastore,
          firstMetastore: m1.MetastoreCalls - initMetastore,
          warmMetastore: (last.MetastoreCalls - m1.MetastoreCalls) / warmInvocations,
        });
      }
      const pick = (k: keyof Sample) => median(samples.map((s) => s[k]));
      results[label] = Object.fromEntries(Object.keys(samples[0]).map((k) => [k, pick(k as keyof Sample)])) as unknown as Sample;
    }
  } finally {
    await kms.close();
    await dynamo.close();
    artifacts.dispose();
  }
  return results;
}

function env(endpoint: string, arn: string, kmsEndpoint: string, prewarm: string): NodeJS.ProcessEnv {
  return {
    ...DUMMY_CREDENTIALS_ENV,
    AWS_REGION: TEST_REGION,
    ASHERAH_DYNAMODB_ENDPOINT: endpoint,
    ASHERAH_KMS_KEY_ARN: arn,
    ASHERAH_KMS_ENDPOINT: kmsEndpoint,
    ASHERAH_PREWARM_PARTITIONS: prewarm,
    POWERTOOLS_LOG_LEVEL: 'WARN',
  };
}

export function printColdStartTable(results: Record<string, Sample | FloorSample>): void {
  console.log('\n## Cold start and warm invocations of the built function on Node 22 (medians of 5 environments)\n');
  console.log('Each environment is a fresh runtime process in Lambda\'s layout (read-only /var/task and /opt, nobody, 64 KiB memlock).');
  console.log('| setup | INIT | INIT over the koffi + SDK floor | 1st invoke | warm invoke | KMS calls INIT / 1st / warm | metastore calls INIT / 1st / warm |');
  console.log('|---|---:|---:|---:|---:|---|---|');
  const floor = results['floor: koffi + SDK clients']?.initMs ?? NaN;
  for (const [label, s] of Object.entries(results)) {
    const over = `${(s.initMs - floor).toFixed(0)} ms (${(s.initMs / floor).toFixed(2)}x)`;
    if (!('warmMs' in s)) {
      console.log(`| ${label} | ${s.initMs.toFixed(0)} ms | ${over} | ${s.firstMs.toFixed(1)} ms | | | |`);
      continue;
    }
    console.log(
      `| ${label} | ${s.initMs.toFixed(0)} ms | ${over} | ${s.firstMs.toFixed(1)} ms | ${s.warmMs.toFixed(2)} ms | ` +
        `${s.initKms} / ${s.firstKms} / ${s.warmKms} | ${s.initMetastore} / ${s.firstMetastore} / ${s.warmMetastore} |`,
    );
  }
}

if (require.main === module) void runColdStartBench().then(printColdStartTable);
