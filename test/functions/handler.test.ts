/**
 * The handler as Lambda calls it, on the embedded default (SQLite in a temp dir, a static key), each scenario
 * with a fresh module (a fresh execution environment).
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EventValidationError, InvalidRecordError } from '../../layer/src/index';
import { embeddedHandlerEnv, freshHandlerModule, type HandlerModule } from '../support/handler';

const saved = { ...process.env };
let dir: string;

async function freshHandler(env: Record<string, string> = {}): Promise<HandlerModule> {
  process.env = embeddedHandlerEnv(saved, dir, env);
  return freshHandlerModule();
}

const rowCount = () => {
  const db = new Database(path.join(dir, 'keys.db'), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM encryption_key').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'handler-'));
});
afterEach(() => {
  process.env = { ...saved };
  rmSync(dir, { recursive: true, force: true });
});

test('encrypt then decrypt events round-trip, with the running metrics of the execution environment', async () => {
  const fn = await freshHandler();
  const encrypted = await fn.handler({ Name: 'e', Partition: 'partition-1', Payload: Buffer.from('hello').toString('base64') });
  if (!('DRR' in encrypted)) throw new Error('no DRR');
  expect(encrypted.DRR.Key.ParentKeyMeta!.KeyId).toBe('_IK_partition-1_asherah-starter_encrypt-decrypt');
  expect(encrypted.Metrics).toMatchObject({ ColdStart: true, InvocationCount: 1, KmsCalls: 1, MetastoreCalls: 4, CacheMisses: 2 });
  const decrypted = await fn.handler({ Partition: 'partition-1', DRR: encrypted.DRR });
  expect(decrypted).toMatchObject({ Payload: Buffer.from('hello').toString('base64') });
  expect(decrypted.Metrics).toMatchObject({ ColdStart: false, InvocationCount: 2, KmsCalls: 1, MetastoreCalls: 4, CacheHits: 1 });
  expect(decrypted.Metrics.SecretsInUse).toBe(3);
  expect(decrypted.Metrics.LockedBytes).toBeGreaterThan(0);
});

test('a new execution environment decrypts what another wrote, with 1 KMS call and no metastore write', async () => {
  const writer = await freshHandler();
  const encrypted = await writer.handler({ Partition: 'p', Payload: 'aGk=' });
  const reader = await freshHandler();
  const before = rowCount();
  const decrypted = await reader.handler({ Partition: 'p', DRR: 'DRR' in encrypted ? encrypted.DRR : null });
  expect(decrypted).toMatchObject({ Payload: 'aGk=', Metrics: { ColdStart: true, KmsCalls: 1, MetastoreCalls: 2 } });
  expect(rowCount()).toBe(before);
});

test('ASHERAH_PREWARM_PARTITIONS loads the keys during INIT: the first event hits warm caches', async () => {
  const writer = await freshHandler();
  await writer.handler({ Partition: 'a', Payload: 'aGk=' });
  const fn = await freshHandler({ ASHERAH_PREWARM_PARTITIONS: 'a, b' });
  const first = await fn.handler({ Partition: 'a', Payload: 'aGk=' });
  expect(first.Metrics).toMatchObject({ ColdStart: true, CacheHits: 1 });
  // INIT did the KMS call and the metastore reads (and created b's IK); the event added nothing.
  const second = await fn.handler({ Partition: 'b', Payload: 'aGk=' });
  expect(second.Metrics.KmsCalls).toBe(first.Metrics.KmsCalls);
  expect(second.Metrics.MetastoreCalls).toBe(first.Metrics.MetastoreCalls);
});

test('a rejected event writes nothing to the metastore', async () => {
  const fn = await freshHandler();
  const bad = [{ Partition: '', Payload: 'aGk=' }, { Partition: 'p' }, { Partition: 'p', Payload: '!!' }, { Partition: 'p', Payload: 'aGk=', DRR: {} }];
  // The handler module is loaded in its own registry, so its error classes are matched by name (as Lambda
  // reports them: errorType).
  for (const event of bad) await expect(fn.handler(event)).rejects.toMatchObject({ name: EventValidationError.name });
  await expect(fn.handler({ Partition: 'p', DRR: { Key: {}, Data: 'x' } })).rejects.toMatchObject({ name: InvalidRecordError.name });
  expect(rowCount()).toBe(0);
});

test('a Partition over 1024 UTF-8 bytes is refused, however few characters it has, and nothing is written', async () => {
  const fn = await freshHandler();
  // 1024 × "é" and 700 × "中" were accepted (1024 characters) and made key ids over DynamoDB's 2048 bytes.
  for (const partition of ['é'.repeat(1024), '中'.repeat(700), 'é'.repeat(513)]) {
    await expect(fn.handler({ Partition: partition, Payload: 'aGk=' })).rejects.toMatchObject({
      name: EventValidationError.name,
      message: expect.stringMatching(/^Partition is \d+ bytes as UTF-8; the limit is 1024/),
    });
  }
  expect(rowCount()).toBe(0);
  const atLimit = await fn.handler({ Partition: 'é'.repeat(512), Payload: 'aGk=' });
  expect('DRR' in atLimit).toBe(true);
});

test("an encrypt whose response would pass Lambda's 6 MiB is refused before any key is made; one that fits does", async () => {
  const fn = await freshHandler();
  const limit = 6 * 1024 * 1024;
  // Control characters take 6 bytes each in the response's JSON (\u0001): the largest payload the input rule
  // allows would make a response over the limit with this partition.
  const partition = '\u0001'.repeat(1024);
  const payload = (bytes: number) => Buffer.alloc(bytes, 7).toString('base64');
  const maxPayload = Math.floor((limit * 3) / 4) - 28;
  await expect(fn.handler({ Partition: partition, Payload: payload(maxPayload) })).rejects.toMatchObject({
    name: EventValidationError.name,
    message: expect.stringMatching(/would make a response of up to \d+ bytes, over Lambda's 6291456-byte synchronous limit/),
  });
  expect(rowCount()).toBe(0);
  // Somewhat less data fits, and the response Lambda would send (JSON) is within the limit.
  const response = await fn.handler({ Partition: partition, Payload: payload(maxPayload - 8192) });
  expect(Buffer.byteLength(JSON.stringify(response), 'utf8')).toBeLessThanOrEqual(limit);
});

test('a static master key inside Lambda is refused unless explicitly allowed', async () => {
  const fn = await freshHandler({ AWS_LAMBDA_FUNCTION_NAME: 'f', ASHERAH_KMS: 'static', ASHERAH_METASTORE: 'sqlite' });
  await expect(fn.handler({ Partition: 'p', Payload: 'aGk=' })).rejects.toThrow(/static master key is for local development only/);
  const allowed = await freshHandler({
    AWS_LAMBDA_FUNCTION_NAME: 'f',
    ASHERAH_KMS: 'static',
    ASHERAH_METASTORE: 'sqlite',
    ASHERAH_ALLOW_STATIC_KMS: 'true',
  });
  await expect(allowed.handler({ Partition: 'p', Payload: 'aGk=' })).resolves.toHaveProperty('DRR');
});
