/**
 * Cold and warm invocations of the BUILT function (the bundle and the layer zip, in Lambda's layout, driven
 * through a local Runtime API; DynamoDB on dynalite, AWS KMS on the KMS-protocol test server), with and without
 * ASHERAH_PREWARM_PARTITIONS. Each "environment" is a new runtime process, as a Lambda cold start is. Reports the
 * medians of INIT time, the first invocation, later (warm) invocations, and the KMS and metastore calls each
 * phase costs. Local loopback servers answer in well under a millisecond, so these times are the library's own
 * cost; real KMS and DynamoDB add their round trips to each call counted here.
 */
import { DUMMY_CREDENTIALS_ENV, startDynalite, TEST_REGION } from '../test/support/dynalite';
import { keyArn, KmsServer } from '../test/support/kms-server';
import { prepareArtifacts, startFunction } from '../test/support/lambda-artifacts';

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

export async function runColdStartBench(environments = 5, warmInvocations = 50): Promise<Record<string, Sample>> {
  const artifacts = prepareArtifacts();
  const dynamo = await startDynalite();
  const arn = keyArn(TEST_REGION);
  const kms = await KmsServer.start({ keys: [arn] });
  const kmsCalls = () => kms.requests.GenerateDataKey + kms.requests.Encrypt + kms.requests.Decrypt;
  const results: Record<string, Sample> = {};
  try {
    // Keys exist before the measured cold starts, as in a running system: each cold start loads, never creates.
    const seed = await startFunction(artifacts, env(dynamo.endpoint, arn, kms.endpoint, ''));
    await seed.initDone();
    await seed.invoke({ Partition: 'tenant-1', Payload: 'aGk=' });
    await seed.stop();

    for (const [label, prewarm] of [['no pre-warm', ''], ['ASHERAH_PREWARM_PARTITIONS=tenant-1', 'tenant-1']] as const) {
      const samples: Sample[] = [];
      for (let i = 0; i < environments; i++) {
        const kmsBefore = kmsCalls();
        const fn = await startFunction(artifacts, env(dynamo.endpoint, arn, kms.endpoint, prewarm));
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

export function printColdStartTable(results: Record<string, Sample>): void {
  console.log('\n## Cold start and warm invocations of the built function (medians)\n');
  console.log('| setup | INIT | 1st invoke | warm invoke | KMS calls INIT / 1st / warm | metastore calls INIT / 1st / warm |');
  console.log('|---|---:|---:|---:|---|---|');
  for (const [label, s] of Object.entries(results)) {
    console.log(
      `| ${label} | ${s.initMs.toFixed(0)} ms | ${s.firstMs.toFixed(1)} ms | ${s.warmMs.toFixed(2)} ms | ` +
        `${s.initKms} / ${s.firstKms} / ${s.warmKms} | ${s.initMetastore} / ${s.firstMetastore} / ${s.warmMetastore} |`,
    );
  }
}

if (require.main === module) void runColdStartBench().then(printColdStartTable);
