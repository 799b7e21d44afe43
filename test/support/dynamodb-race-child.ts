/**
 * One process of the DynamoDB key-creation race (test/integration/dynamodb-race.test.ts). Builds a SessionFactory
 * on a DynamoDbMetastore, prints "ready", waits for "go" on stdin (the parent's barrier), then encrypts one record
 * for every partition at once, in its own order, and prints ONE JSON line:
 *   { worker, drrs: { [partition]: drrJson }, stores: { won, lost }, metrics }
 *
 * argv[2]: JSON { worker, endpoint, tableName, partitions, nowMs }. The clock is fixed at nowMs in every process, so
 * that all of them create keys with the same (minute-truncated) Created and race on the same (Id, Created).
 */
import {
  encodeDataRowRecord,
  SecretFactory,
  SessionFactory,
  StaticKms,
  TEST_DEBUG_STATIC_MASTER_KEY_HEX,
  type EnvelopeKeyRecord,
  type Metastore,
} from '../../layer/src/index';
import { DynamoDbMetastore } from '../../layer/src/appencryption/metastore/dynamodb-metastore';
import { localDynamoDbClient } from '../../scripts/local-aws/dynalite';

export interface RaceChildInput {
  worker: number;
  endpoint: string;
  tableName: string;
  partitions: string[];
  nowMs: number;
}

export interface RaceChildOutput {
  worker: number;
  drrs: Record<string, string>;
  /** PutItem outcomes: won = stored, lost = another process had stored that (Id, Created) first. */
  stores: { won: number; lost: number };
  metrics: Record<string, unknown>;
}

/** Counts store outcomes, to show that the processes really contended. */
class StoreOutcomes implements Metastore {
  won = 0;
  lost = 0;
  constructor(private readonly inner: DynamoDbMetastore) {}
  load(id: string, created: number) {
    return this.inner.load(id, created);
  }
  loadLatest(id: string) {
    return this.inner.loadLatest(id);
  }
  async store(id: string, created: number, record: EnvelopeKeyRecord) {
    const stored = await this.inner.store(id, created, record);
    if (stored) this.won++;
    else this.lost++;
    return stored;
  }
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = (seed + 1) >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0; // a small LCG: each worker its own fixed order
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function waitForGo(): Promise<void> {
  return new Promise((resolve, reject) => {
    let input = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => {
      input += chunk;
      if (input.includes('go\n')) resolve();
    });
    process.stdin.on('end', () => reject(new Error('stdin closed before "go"')));
  });
}

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2]) as RaceChildInput;
  const client = localDynamoDbClient(input.endpoint);
  const secrets = new SecretFactory();
  const metastore = new StoreOutcomes(new DynamoDbMetastore(client, { tableName: input.tableName }));
  const factory = SessionFactory.create({
    serviceName: 'service',
    productId: 'product',
    metastore,
    kms: new StaticKms(TEST_DEBUG_STATIC_MASTER_KEY_HEX, secrets),
    secrets,
    clock: { now: () => input.nowMs },
  });
  // Warm up before the barrier: the SDK loads its signing and HTTP code, and opens a connection, on the first
  // request. Without this, whichever process warms up first creates most keys alone and there is little race.
  await metastore.loadLatest('_warm-up_');
  const go = waitForGo();
  process.stdout.write('ready\n');
  await go;

  const order = shuffled(input.partitions, input.worker);
  const records = await Promise.all(
    order.map(async (partition) => {
      const session = factory.getSession(partition);
      try {
        return [partition, encodeDataRowRecord(await session.encrypt(Buffer.from(`${partition} from worker ${input.worker}`)))];
      } finally {
        session.close();
      }
    }),
  );
  const output: RaceChildOutput = {
    worker: input.worker,
    drrs: Object.fromEntries(records),
    stores: { won: metastore.won, lost: metastore.lost },
    metrics: { ...factory.metrics(), secureMemory: undefined },
  };
  await factory.close();
  secrets.close();
  client.destroy();
  process.stdout.write(JSON.stringify(output) + '\n');
  process.stdin.destroy();
}

main().catch((err: unknown) => {
  process.stderr.write(`dynamodb-race-child: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
  process.stdin.destroy();
});
