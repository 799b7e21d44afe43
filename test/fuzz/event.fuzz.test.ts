/**
 * Fuzzing the encrypt/decrypt function's events: parseEvent over arbitrary values and mutations of the
 * sample events, then a smaller number of events through the real handler (SQLite in a temp dir, a static key).
 * Every outcome is a request/response or a named AsherahError; an event the handler encrypts decrypts back to its
 * payload, and a mutated decrypt event that succeeds gives the original payload.
 */
// Runs in this file: 51,500 fast-check cases (see RUNS).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { EventValidationError, InvalidRecordError, type DataRowRecordJson } from '../../layer/src/index';
import { parseEvent, type Request } from '../../functions/encrypt-decrypt/event';
import {
  anyValue,
  applyObjectEdits,
  asyncOutcomeOf,
  hostileString,
  objectEdit,
  outcomeOf,
  revokedProxy,
  SEED,
  throwingGetter,
  throwingProxy,
} from './fuzz-support';
import { embeddedHandlerEnv, type HandlerModule } from '../support/handler';

const RUNS = {
  arbitrary: 15_000,
  shaped: 15_000,
  mutated: 20_000,
  handler: 1_500,
};

const LIMIT = 1024;
const EVENT_ERRORS = ['EventValidationError', 'InvalidRecordError'];
const EVENTS_DIR = path.resolve(__dirname, '../../functions/encrypt-decrypt/events');
const SAMPLES: object[] = readdirSync(EVENTS_DIR)
  .filter((name) => name.endsWith('.json'))
  .map((name) => JSON.parse(readFileSync(path.join(EVENTS_DIR, name), 'utf8')) as object);

const PARTITION = 'partition-1';
const PAYLOAD = Buffer.from('the payload of the fuzzed decrypt event').toString('base64');
/** A DRR object of the shape the handler returns; the handler suite below replaces it with a real one. */
let drr: DataRowRecordJson = {
  Key: {
    Created: 1795858178,
    Key: 'Zd2W6/qAzq0leqSznlb6KaV4FsP7771Mkp5L3rHXysYks2ehUicj6kCsxQ/ntBFWGQIs24R8dS+y/W+l',
    ParentKeyMeta: { KeyId: '_IK_partition_service_product', Created: 1795858140 },
  },
  Data: '5FLqWnVF+Ev5es/r+eR8o1Vgv1BcLn5q0wvfv6hUV8vyRAf2M/4I0uepzv8G02Sh',
};

/** What a request parsed from `event` must satisfy, beyond being one. */
function checkRequest(request: Request): void {
  const ok =
    typeof request.partition === 'string' &&
    request.partition !== '' &&
    Buffer.byteLength(request.partition, 'utf8') <= LIMIT &&
    !/[\ud800-\udfff]/u.test(request.partition) &&
    (request.name === undefined || typeof request.name === 'string') &&
    (request.kind === 'encrypt'
      ? Buffer.isBuffer(request.payload)
      : request.kind === 'decrypt' && Buffer.isBuffer(request.drr.data) && request.drr.key.parentKeyMeta !== undefined);
  if (!ok) throw new Error(`parseEvent returned a malformed ${request.kind} request`);
}

function parseChecked(event: unknown): void {
  const outcome = outcomeOf(() => parseEvent(event), EVENT_ERRORS);
  if ('value' in outcome) {
    checkRequest(outcome.value);
    const e = event as Record<string, unknown>;
    // The request is what the event says: its Partition, its Payload's bytes.
    if (outcome.value.partition !== e.Partition) throw new Error('the request partition is not the event Partition');
    if (outcome.value.kind === 'encrypt' && outcome.value.payload.toString('base64') !== Buffer.from(e.Payload as string, 'base64').toString('base64')) {
      throw new Error('the request payload is not the event Payload');
    }
  }
}

const partitionArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileString(12) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '', ' ', 'p', PARTITION, 'x'.repeat(LIMIT), 'x'.repeat(LIMIT + 1), '\ud800', 'a\udc00b',
      // At the byte limit in multi-byte and control characters, which take more room in a key id and a response.
      'é'.repeat(LIMIT / 2), 'é'.repeat(LIMIT / 2 + 1), '中'.repeat(341), '中'.repeat(342), '\u0001'.repeat(LIMIT), '<'.repeat(LIMIT),
    ),
  },
  { weight: 1, arbitrary: fc.string({ minLength: LIMIT - 2, maxLength: LIMIT + 2 }) },
  { weight: 1, arbitrary: anyValue },
);

const payloadArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 48 }).map((b) => Buffer.from(b).toString('base64')) },
  { weight: 1, arbitrary: fc.base64String({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '=', '====', 'aGk', 'aGk==', 'aGk=\n', 'aG-=', 'aG_=', 'aGl=', 'a===', '\u0141GkA') },
  { weight: 2, arbitrary: hostileString(16) },
  { weight: 1, arbitrary: anyValue },
);

/** Events with the sample's fields, each present or not, of any value. */
const shapedEvent: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    Name: fc.oneof(hostileString(8), anyValue),
    Partition: partitionArb,
    Payload: payloadArb,
    DRR: fc.oneof(
      objectEditsArb().map((edits) => applyObjectEdits(drr, edits)),
      fc.constant(null).map(() => structuredClone(drr)),
      anyValue,
    ),
  },
  { requiredKeys: [] },
);

function objectEditsArb() {
  return fc.array(objectEdit, { minLength: 1, maxLength: 3 });
}

describe('parseEvent', () => {
  test('any value is a request or an EventValidationError / InvalidRecordError', () => {
    fc.assert(
      fc.property(anyValue, (value) => {
        parseChecked(value);
        parseChecked({ Partition: PARTITION, DRR: value });
        parseChecked({ Partition: value, Payload: 'aGk=' });
        parseChecked({ Partition: PARTITION, Payload: value, Name: value });
      }),
      { seed: SEED, numRuns: RUNS.arbitrary },
    );
  });

  test('events with the sample fields present or absent, of any value', () => {
    fc.assert(fc.property(shapedEvent, parseChecked), { seed: SEED, numRuns: RUNS.shaped });
  });

  test('mutations of the sample events and of a decrypt event (drop, retype, rename, getters, Proxies)', () => {
    const valid = fc.constantFrom<object>(...SAMPLES, { Partition: PARTITION, DRR: drr }, { Name: 'n', Partition: 'p', DRR: drr });
    fc.assert(
      fc.property(valid, objectEditsArb(), (event, edits) => parseChecked(applyObjectEdits(event, edits))),
      { seed: SEED, numRuns: RUNS.mutated },
    );
  });

  test('the cases the properties found stay fixed', () => {
    for (const event of [
      throwingGetter('Partition', { Payload: 'aGk=' }),
      throwingGetter('Name', { Partition: 'p', Payload: 'aGk=' }),
      throwingProxy(),
      revokedProxy(),
      { Partition: 'p', DRR: revokedProxy() },
    ]) {
      expect(() => parseEvent(event)).toThrow(EventValidationError);
    }
    // Read once: a getter that answers differently the second time cannot slip a string DRR past the object check.
    let reads = 0;
    const flipping = { Partition: 'p', get DRR() { return reads++ === 0 ? { ...drr } : JSON.stringify(drr); } };
    const request = outcomeOf(() => parseEvent(flipping), EVENT_ERRORS);
    expect(reads).toBe(1);
    expect('value' in request && request.value.kind).toBe('decrypt');
    // A DRR in bytes is not the object Lambda delivers: refused like DRR text.
    expect(() => parseEvent({ Partition: 'p', DRR: Buffer.from(JSON.stringify(drr)) })).toThrow(/DRR must be the DataRowRecord object/);
    // A lone surrogate cannot survive the JSON round trip of the DRR's KeyId (it becomes U+FFFD), so a partition
    // holding one could encrypt but never decrypt.
    for (const partition of ['\ud800', 'a\udc00', 'ab\ud83d']) {
      expect(() => parseEvent({ Partition: partition, Payload: 'aGk=' })).toThrow(/Partition must be well-formed Unicode/);
    }
    expect(parseEvent({ Partition: '🔐', Payload: 'aGk=' }).partition).toBe('🔐');
    expect(() => parseEvent({ Partition: 'p', DRR: { ...drr, Key: throwingProxy() } })).toThrow(InvalidRecordError);
  });
});

describe('the handler (SQLite in a temp dir, static key)', () => {
  const saved = { ...process.env };
  let dir: string;
  let fn: HandlerModule;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'fuzz-handler-'));
    process.env = embeddedHandlerEnv(saved, dir);
    delete process.env.AWS_LAMBDA_FUNCTION_NAME;
    delete process.env.ASHERAH_PREWARM_PARTITIONS;
    // Loaded in this test file's module registry, so its errors are the AsherahError classes imported above.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    fn = require('../../functions/encrypt-decrypt/handler') as HandlerModule;
    await fn.ready;
    const encrypted = await fn.handler({ Partition: PARTITION, Payload: PAYLOAD });
    if (!('DRR' in encrypted)) throw new Error('no DRR');
    drr = encrypted.DRR;
  });

  afterAll(() => {
    process.env = { ...saved };
    rmSync(dir, { recursive: true, force: true });
  });

  test('any event: a response or a named error; what encrypts decrypts back; a mutated DRR never gives other data', async () => {
    const event: fc.Arbitrary<unknown> = fc.oneof(
      { weight: 3, arbitrary: objectEditsArb().map((edits) => applyObjectEdits({ Partition: PARTITION, DRR: drr }, edits)) },
      { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...SAMPLES), objectEditsArb()).map(([e, edits]) => applyObjectEdits(e, edits)) },
      { weight: 2, arbitrary: fc.record({ Partition: partitionArb, Payload: payloadArb }) },
      { weight: 1, arbitrary: shapedEvent },
      { weight: 1, arbitrary: anyValue },
    );
    await fc.assert(
      fc.asyncProperty(event, async (e) => {
        const outcome = await asyncOutcomeOf(() => fn.handler(e), undefined, [PAYLOAD, drr.Data.slice(4, 16)]);
        if (!('value' in outcome)) return;
        const response = outcome.value;
        if ('DRR' in response) {
          // Encrypted: the same partition decrypts it back to the event's payload.
          const request = parseEvent(e);
          if (request.kind !== 'encrypt') throw new Error('an encrypt response for a decrypt event');
          const back = await fn.handler({ Partition: request.partition, DRR: response.DRR });
          if (!('Payload' in back) || back.Payload !== request.payload.toString('base64')) {
            throw new Error('an encrypted event did not decrypt back to its payload');
          }
        } else if (response.Payload !== PAYLOAD) {
          throw new Error('a decrypt event gave other data than was encrypted');
        }
      }),
      { seed: SEED, numRuns: RUNS.handler },
    );
  });
});
