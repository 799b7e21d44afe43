/**
 * Key-creation races between processes on one DynamoDB table (docs/wire-format.md §1.5): separate Node processes,
 * released together by a barrier, each create the SK and the IKs of the same partitions. The conditional PutItem must
 * let exactly one creator win each (Id, Created), and every process must then use the winner's key.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { decodeDataRowRecord } from '../../layer/src/index';
import { DynamoDbMetastore } from '../../layer/src/appencryption/metastore/dynamodb-metastore';
import type { RaceChildInput, RaceChildOutput } from '../support/dynamodb-race-child';
import { testFactory } from '../support/envelope';
import { useDynalite } from '../support/local-aws';

const WORKERS = 4;
const PARTITIONS = Array.from({ length: 50 }, (_, i) => `race-${i}`);
const CHILD = path.resolve(__dirname, '../support/dynamodb-race-child.ts');
const REPO_ROOT = path.resolve(__dirname, '../..');

// In this process: the children are spawned asynchronously, so its event loop stays free to serve them.
const local = useDynalite();

interface Worker {
  ready: Promise<void>;
  done: Promise<RaceChildOutput>;
  go(): void;
}

function startWorker(input: RaceChildInput): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(input)], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let signalReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (signalReady = resolve));
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    stdout += chunk;
    if (stdout.startsWith('ready\n')) signalReady();
  });
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<RaceChildOutput>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const lines = stdout.trim().split('\n');
      if (code !== 0 || lines.length < 2) {
        reject(new Error(`worker ${input.worker} failed (code ${code}, signal ${signal})\n${stderr}\n${stdout}`));
        return;
      }
      resolve(JSON.parse(lines[lines.length - 1]) as RaceChildOutput);
    });
  });
  // A worker that dies before "ready" must fail the test, not hang the barrier.
  const readyOrDead = Promise.race([ready, done.then(() => Promise.reject(new Error(`worker ${input.worker} exited before ready`)))]);
  return { ready: readyOrDead, done, go: () => child.stdin.write('go\n') };
}

test(`${WORKERS} processes creating the keys of the same ${PARTITIONS.length} partitions at once store one SK and one IK per partition, and every record decrypts`, async () => {
  const nowMs = Date.UTC(2026, 10, 28, 12, 0, 30);
  const workers = Array.from({ length: WORKERS }, (_, worker) =>
    startWorker({ worker, endpoint: local.dynamo.endpoint, tableName: 'EncryptionKey', partitions: PARTITIONS, nowMs }),
  );
  // The barrier: nobody starts until every process has loaded, built its factory and connected nothing yet.
  await Promise.all(workers.map((w) => w.ready));
  for (const w of workers) w.go();
  const outputs = await Promise.all(workers.map((w) => w.done));

  // Exactly one item per key id, and only the keys that should exist.
  const { Items = [] } = await local.client.send(new ScanCommand({ TableName: 'EncryptionKey', ConsistentRead: true }));
  const ids = Items.map((item) => item.Id.S as string).sort();
  expect(ids).toEqual([...PARTITIONS.map((p) => `_IK_${p}_service_product`), '_SK_service_product'].sort());

  // Every process converged on the stored IK of each partition: all records of a partition name the same key.
  for (const partition of PARTITIONS) {
    const parents = new Set(outputs.map((o) => JSON.stringify(decodeDataRowRecord(o.drrs[partition]).key.parentKeyMeta)));
    expect([partition, parents.size]).toEqual([partition, 1]);
  }

  // Every record any of them wrote decrypts here, from the table alone.
  const reader = testFactory({ metastore: new DynamoDbMetastore(local.client) });
  try {
    for (const output of outputs) {
      for (const partition of PARTITIONS) {
        const plaintext = await reader.factory.getSession(partition).decrypt(decodeDataRowRecord(output.drrs[partition]));
        expect(plaintext.toString()).toBe(`${partition} from worker ${output.worker}`);
      }
    }
  } finally {
    await reader.close();
  }

  // Won stores are exactly the items; every other store lost the conditional put and loaded the winner's key.
  const won = outputs.reduce((n, o) => n + o.stores.won, 0);
  const lost = outputs.reduce((n, o) => n + o.stores.lost, 0);
  expect(won).toBe(PARTITIONS.length + 1);
  console.info(`race: ${WORKERS} processes, ${won} stores won, ${lost} lost (conditional PutItem refused a duplicate)`);
});
