/**
 * Log lines and error messages stay small whatever a client sends. The handler runs as in
 * handler.test.ts (SQLite in a temp dir, a static key, a fresh module), but with logging and EMF on, and with
 * everything written to stdout and stderr captured: Powertools' Logger and Metrics write through a Console on
 * process.stdout/stderr, as in Lambda, where each line becomes one CloudWatch event.
 */
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { boundedField, boundedText, LOGGED_FIELD_CHARS } from '../../functions/encrypt-decrypt/log-fields';
import {
  AsherahError,
  ClosedError,
  ConfigError,
  DecryptError,
  EventValidationError,
  InvalidRecordError,
  KeyNotFoundError,
  KmsError,
  MetastoreError,
} from '../../layer/src/index';
import { embeddedHandlerEnv, freshHandlerModule, type HandlerModule } from '../support/handler';

const MAX_LINE_BYTES = 8 * 1024;
const MiB = 1024 * 1024;
// The handler module is loaded in its own registry, so its errors are matched by name (Lambda's errorType).
const ERROR_CLASSES = [AsherahError, ConfigError, InvalidRecordError, DecryptError, KeyNotFoundError, KmsError];
const ERROR_NAMES = new Set([...ERROR_CLASSES, MetastoreError, EventValidationError, ClosedError].map((c) => c.name));

const saved = { ...process.env };
let dir: string;
let lines: string[];
let restoreOutput: (() => void) | undefined;

/** From now until the test ends, what goes to stdout and stderr is kept in `lines` instead of printed. */
function captureOutput(): void {
  lines = [];
  const pending = { text: '' };
  const keep = (chunk: unknown): boolean => {
    pending.text += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    const parts = pending.text.split('\n');
    pending.text = parts.pop()!;
    lines.push(...parts);
    return true;
  };
  const out = jest.spyOn(process.stdout, 'write').mockImplementation(keep as typeof process.stdout.write);
  const err = jest.spyOn(process.stderr, 'write').mockImplementation(keep as typeof process.stderr.write);
  restoreOutput = () => {
    out.mockRestore();
    err.mockRestore();
    if (pending.text !== '') lines.push(pending.text);
  };
}

async function freshHandler(): Promise<HandlerModule> {
  process.env = embeddedHandlerEnv(saved, dir, { POWERTOOLS_LOG_LEVEL: 'INFO', POWERTOOLS_METRICS_DISABLED: 'false' });
  delete process.env.POWERTOOLS_DEV; // the Console on process.stdout/stderr that Lambda gets, not the global one
  return freshHandlerModule();
}

const bytes = (line: string) => Buffer.byteLength(line, 'utf8');

function expectEveryLineSmall(): void {
  expect(lines.length).toBeGreaterThan(0);
  const largest = Math.max(...lines.map(bytes));
  expect(largest).toBeLessThan(MAX_LINE_BYTES);
}

/** The Powertools log entry with this message; there must be exactly one. */
function logEntry(message: string): Record<string, unknown> {
  const entries = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const matching = entries.filter((e) => e.message === message);
  expect(matching).toHaveLength(1);
  return matching[0];
}

/** What Lambda logs for an error a handler throws: errorType, errorMessage and the stack. */
function expectSmallNamedError(err: unknown, filler: string): void {
  expect(err).toBeInstanceOf(Error);
  const e = err as Error;
  expect(ERROR_NAMES).toContain(e.name);
  expect(bytes(e.message)).toBeLessThan(MAX_LINE_BYTES);
  expect(bytes(e.stack ?? '')).toBeLessThan(MAX_LINE_BYTES);
  expect(e.message).not.toContain(filler.repeat(32));
}

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'log-bounds-'));
  captureOutput();
});
afterEach(() => {
  restoreOutput?.();
  restoreOutput = undefined;
  process.env = { ...saved };
  rmSync(dir, { recursive: true, force: true });
});

describe('boundedField', () => {
  test('keeps a short value whole, with its length', () => {
    expect(boundedField('name', 'e')).toEqual({ name: 'e', nameLength: 1 });
    expect(boundedField('name', '')).toEqual({ name: '', nameLength: 0 });
    expect(boundedField('name', undefined)).toEqual({});
  });

  test('cuts a 1 MiB value to its first 256 characters and keeps the original length', () => {
    const value = 'abc'.repeat(MiB / 2).slice(0, MiB);
    expect(boundedField('name', value)).toEqual({ name: value.slice(0, LOGGED_FIELD_CHARS), nameLength: MiB });
  });

  test('does not cut a surrogate pair in half', () => {
    const astral = '😀'; // U+1F600, two UTF-16 code units
    const split = 'a'.repeat(LOGGED_FIELD_CHARS - 1) + astral + 'z';
    expect(boundedText(split)).toBe('a'.repeat(LOGGED_FIELD_CHARS - 1));
    const whole = 'a'.repeat(LOGGED_FIELD_CHARS - 2) + astral + 'z';
    expect(boundedText(whole)).toBe('a'.repeat(LOGGED_FIELD_CHARS - 2) + astral);
    expect(boundedText(astral.repeat(LOGGED_FIELD_CHARS))).toBe(astral.repeat(LOGGED_FIELD_CHARS / 2));
  });

  test('property: a prefix of at most 256 code units, at least 255 when cut, never half a pair it cut', () => {
    const wellFormed = (s: string) => !/\p{Cs}/u.test(s);
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 600 }), (s) => {
        const cut = boundedText(s);
        expect(s.startsWith(cut)).toBe(true);
        expect(cut.length).toBeLessThanOrEqual(LOGGED_FIELD_CHARS);
        if (s.length > LOGGED_FIELD_CHARS) expect(cut.length).toBeGreaterThanOrEqual(LOGGED_FIELD_CHARS - 1);
        else expect(cut).toBe(s);
        expect(wellFormed(cut)).toBe(wellFormed(s)); // 'binary' strings are well-formed, so the cut must be too
      }),
      { seed: 20240613, numRuns: 500 },
    );
  });
});

describe('the handler with a 1 MiB Name', () => {
  test('logs the first 256 characters and the length, and every log line stays under 8 KiB', async () => {
    const fn = await freshHandler();
    const name = 'N'.repeat(MiB);
    const encrypted = await fn.handler({ Name: name, Partition: 'p', Payload: 'aGk=' });
    if (!('DRR' in encrypted)) throw new Error('no DRR');
    const decrypted = await fn.handler({ Name: name, Partition: 'p', DRR: encrypted.DRR });
    expect(decrypted).toHaveProperty('Payload', 'aGk=');
    expectEveryLineSmall();
    for (const kind of ['encrypt', 'decrypt']) {
      expect(logEntry(kind)).toMatchObject({ name: 'N'.repeat(LOGGED_FIELD_CHARS), nameLength: MiB });
    }
  });

  test('a Name of 256 characters or fewer is logged whole', async () => {
    const fn = await freshHandler();
    const name = 'n'.repeat(LOGGED_FIELD_CHARS);
    await fn.handler({ Name: name, Partition: 'p', Payload: 'aGk=' });
    expect(logEntry('encrypt')).toMatchObject({ name, nameLength: LOGGED_FIELD_CHARS });
  });
});

describe('rejected events with huge fields', () => {
  test('give a named error whose message and stack are under 8 KiB and do not echo the field', async () => {
    const fn = await freshHandler();
    const encrypted = await fn.handler({ Partition: 'p', Payload: 'aGk=' });
    if (!('DRR' in encrypted)) throw new Error('no DRR');
    const drr = encrypted.DRR;
    const meta = drr.Key.ParentKeyMeta!;
    // [event, the character it repeats a MiB of]
    const withKeyId = (keyId: string) => ({ ...drr, Key: { ...drr.Key, ParentKeyMeta: { ...meta, KeyId: keyId } } });
    const cases: [unknown, string][] = [
      [{ Name: 'x', Partition: 'P'.repeat(MiB), Payload: 'aGk=' }, 'P'],
      [{ Name: 'Q'.repeat(MiB), Partition: 'Q'.repeat(MiB), Payload: 'aGk=' }, 'Q'],
      [{ Name: ['R'.repeat(MiB)], Partition: 'p', Payload: 'aGk=' }, 'R'],
      [{ Partition: 'p', Payload: '!'.repeat(MiB) }, '!'],
      [{ Partition: 'p', Payload: 'S'.repeat(6 * MiB) }, 'S'], // valid base64, too large to encrypt
      [{ Partition: 'p', Payload: 7, DRR: 'T'.repeat(MiB) }, 'T'],
      [{ Partition: 'p', DRR: 'U'.repeat(MiB) }, 'U'],
      [{ Partition: 'p', DRR: { ...drr, Data: '#'.repeat(MiB) } }, '#'],
      [{ Partition: 'p', DRR: { ...drr, Data: 'V'.repeat(MiB) } }, 'V'], // valid base64, fails authentication
      [{ Partition: 'p', DRR: { ...drr, Key: { ...drr.Key, Key: 'W'.repeat(MiB) } } }, 'W'],
      [{ Partition: 'p', DRR: withKeyId('X'.repeat(MiB)) }, 'X'],
      [{ Partition: 'p', DRR: withKeyId(meta.KeyId + 'Y'.repeat(MiB)) }, 'Y'],
      [{ Partition: 'p', DRR: { ...drr, Key: { ...drr.Key, Created: 'Z'.repeat(MiB) } } }, 'Z'],
    ];
    for (const [event, filler] of cases) {
      const err = await fn.handler(event).then(
        () => new Error(`accepted: ${filler}`),
        (e: unknown) => e,
      );
      expectSmallNamedError(err, filler);
    }
    expectEveryLineSmall();
  });
});

describe('property: any Name', () => {
  // Code units that stress JSON escaping and UTF-8 (controls, quotes, U+2028, astral characters, lone surrogates).
  const unit = fc.oneof(
    fc.constantFrom('a', '\u0000', '\u001f', '"', '\\', '\u2028', 'é', '€', '😀'),
    fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff'),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  );
  // A pattern repeated up to ~100k code units; slicing can leave half a pair at either end.
  const longText = fc
    .tuple(fc.string({ unit, minLength: 1, maxLength: 40 }), fc.nat({ max: 100_000 }), fc.nat({ max: 3 }))
    .map(([pattern, length, skip]) =>
      pattern.repeat(Math.ceil((length + skip) / pattern.length) + 1).slice(skip, skip + length),
    );
  const name = fc.oneof(
    { weight: 3, arbitrary: longText },
    // around the cut, where a pair can straddle it
    { weight: 2, arbitrary: fc.string({ unit, minLength: LOGGED_FIELD_CHARS - 4, maxLength: LOGGED_FIELD_CHARS + 4 }) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  );

  test('the handler returns a value or a named error, and every log line stays under 8 KiB', async () => {
    const fn = await freshHandler();
    const encrypted = await fn.handler({ Partition: 'p', Payload: 'aGk=' });
    if (!('DRR' in encrypted)) throw new Error('no DRR');
    await fc.assert(
      fc.asyncProperty(name, fc.boolean(), async (Name, encrypt) => {
        lines.length = 0;
        const event = encrypt
          ? { Name, Partition: 'p', Payload: 'aGk=' }
          : { Name, Partition: 'p', DRR: encrypted.DRR };
        const outcome = await fn.handler(event).then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        );
        for (const line of lines) expect(bytes(line)).toBeLessThan(MAX_LINE_BYTES);
        if ('error' in outcome) {
          expect(typeof Name === 'string' || Name === undefined || Name === null).toBe(false);
          expectSmallNamedError(outcome.error, '\u0000');
          return;
        }
        expect(outcome.value).toHaveProperty(encrypt ? 'DRR' : 'Payload');
        const entry = logEntry(encrypt ? 'encrypt' : 'decrypt');
        if (typeof Name === 'string') {
          // Powertools leaves out empty strings, so an empty Name shows as nameLength 0 alone.
          const expected = Name === '' ? { nameLength: 0 } : { name: boundedText(Name), nameLength: Name.length };
          expect(entry).toMatchObject(expected);
        } else {
          expect(entry).not.toHaveProperty('name');
          expect(entry).not.toHaveProperty('nameLength');
        }
      }),
      { seed: 1306, numRuns: 80 },
    );
  });
});
