/**
 * Shared pieces of the fuzz suite: outcome checks and adversarial generators. Not a test
 * file itself (jest runs *.test.ts only).
 */
import fc from 'fast-check';
import { AsherahError } from '../../layer/src/index';

/** One seed for the whole suite, so every failure is reproducible; fast-check prints the counterexample path. */
export const SEED = 20260808;

export type Outcome<T> = { value: T } | { error: AsherahError };

/**
 * Checks that `err` is one of the library's named errors: an AsherahError whose `name` is its class name, with a
 * message; never a TypeError, RangeError or SyntaxError leaking from inside. `allowed` narrows the class names.
 * `secrets` are strings that must not appear in the message (key ids, base64 of keys or data, plaintext).
 */
export function expectNamedError(err: unknown, allowed?: readonly string[], secrets: readonly string[] = []): AsherahError {
  if (!(err instanceof AsherahError)) {
    const kind = err instanceof Error ? `${err.name}: ${err.message}` : `a thrown ${typeof err}`;
    throw new Error(`expected a named AsherahError, got ${kind}`, { cause: err });
  }
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) {
    throw new Error(`an AsherahError must not also be a ${err.constructor.name}`);
  }
  if (err.name !== err.constructor.name) throw new Error(`err.name ${err.name} is not its class ${err.constructor.name}`);
  if (allowed !== undefined && !allowed.includes(err.name)) {
    throw new Error(`expected one of ${allowed.join(', ')}, got ${err.name}: ${err.message}`, { cause: err });
  }
  if (typeof err.message !== 'string' || err.message.trim() === '') throw new Error(`${err.name} has an empty message`);
  for (const secret of secrets) {
    if (secret.length >= 8 && err.message.includes(secret)) {
      throw new Error(`${err.name} message contains a record field or plaintext: ${err.message}`);
    }
  }
  return err;
}

export function outcomeOf<T>(call: () => T, allowed?: readonly string[], secrets?: readonly string[]): Outcome<T> {
  try {
    return { value: call() };
  } catch (err) {
    return { error: expectNamedError(err, allowed, secrets) };
  }
}

export async function asyncOutcomeOf<T>(
  call: () => Promise<T>,
  allowed?: readonly string[],
  secrets?: readonly string[],
): Promise<Outcome<T>> {
  try {
    return { value: await call() };
  } catch (err) {
    return { error: expectNamedError(err, allowed, secrets) };
  }
}

// ---- strings --------------------------------------------------------------------------------------------------

/** One UTF-16 unit or code point of the kinds that break parsers: JSON syntax, controls, lone surrogates, folds. */
export const hostileChar: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...'aAzZ09+/=-_ .,:;{}[]"\\\'@$') },
  { weight: 2, arbitrary: fc.nat(0x7f).map((c) => String.fromCharCode(c)) },
  { weight: 2, arbitrary: fc.nat(0x10ffff).map((c) => String.fromCodePoint(c)) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) },
  {
    weight: 1,
    // NUL, line/paragraph separators, BOM, replacement, and the runes Go folds to ASCII (İ ı ſ Kelvin).
    arbitrary: fc.constantFrom('\u0000', '\u2028', '\u2029', '\ufeff', '\ufffd', '\u0130', '\u0131', '\u017f', '\u212a', '\u00e9'),
  },
);

export const hostileString = (maxLength = 24): fc.Arbitrary<string> => fc.string({ unit: hostileChar, maxLength });

// ---- numbers --------------------------------------------------------------------------------------------------

/** Boundary numbers: zero and minus zero, fractions just below whole, huge, non-finite, just past 2^53. */
export const BOUNDARY_NUMBERS: readonly number[] = [
  0, -0, 1, -1, 0.5, 59.9, 60, 1e-300, 1e308, -1e308, Infinity, -Infinity, NaN, Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 2, 2 ** 53, 2 ** 64, Number.MIN_VALUE, Number.EPSILON, 1795858140, 2 ** 31, 2 ** 32 - 1,
];

export const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...BOUNDARY_NUMBERS) },
  { weight: 2, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.maxSafeNat() },
);

// ---- values ---------------------------------------------------------------------------------------------------

class Boom extends Error {}

/** An object whose `name` property is a getter that throws (what a hostile or buggy caller can pass). */
export function throwingGetter(name: string, base: object = {}): object {
  const target = Object.defineProperty({ ...base }, name, {
    enumerable: true,
    configurable: true,
    get() {
      throw new Boom(`getter ${name} threw`);
    },
  });
  // How fast-check prints it in a counterexample (its printer would call the getter).
  return Object.defineProperty(target, fc.toStringMethod, { value: () => `throwingGetter(${JSON.stringify(name)})` });
}

/**
 * A Proxy whose every trap throws: even listing its keys fails. fast-check's own symbols are answered (it asks
 * every generated value whether it clones itself, and how to print it), so the Proxy can be a generated value.
 */
export function throwingProxy(): object {
  const trap = () => {
    throw new Boom('proxy trap threw');
  };
  const print = () => 'throwingProxy()';
  const ours = (key: string | symbol) => typeof key === 'symbol' && key.description?.startsWith('fast-check/') === true;
  return new Proxy(
    {},
    {
      get: (_t, key) => (key === fc.toStringMethod ? print : ours(key) ? undefined : trap()),
      has: (_t, key) => (key === fc.toStringMethod ? true : ours(key) ? false : trap()),
      ownKeys: trap,
      getOwnPropertyDescriptor: trap,
    },
  );
}

/**
 * A revoked Proxy: every operation on it, even Array.isArray, throws a TypeError. fast-check cannot carry one as
 * a generated value (it inspects each value), so the tests use it in explicit examples.
 */
export function revokedProxy(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

/** A value that is neither JSON nor plain: Symbols, BigInt, functions, class instances, Proxies, getters. */
export const exoticValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(Symbol('s'), Symbol.iterator, 10n, -1n, 2n ** 64n),
  // Factories, so that no object is shared between runs (an edit may add fields to it).
  fc
    .constantFrom<() => unknown>(
      () => () => 1,
      () => new Date(0),
      () => new Date(NaN),
      () => new Map([['Key', 1]]),
      () => new Set([1]),
      () => /re/,
      () => new Error('e'),
      () => new ArrayBuffer(4),
      () => new Uint8Array([123, 125]),
      () => Buffer.from('{}'),
      () => new Float64Array(2),
      () => new String('s'),
      () => new Number(1),
      () => new Boolean(false),
      () => Object.create(null),
      () => Promise.resolve(1),
      () => new WeakMap(),
      () => throwingProxy(),
      () => new Proxy(new Uint8Array([123, 125]), {}), // passes instanceof Uint8Array; its .buffer throws
      () => Object.defineProperty({}, '__proto__', { value: { Key: 1 }, enumerable: true }),
      () => ({
        [Symbol.toPrimitive]: () => {
          throw new Boom('toPrimitive');
        },
        toString: () => {
          throw new Boom('toString');
        },
      }),
    )
    .map((make) => make()),
  fc.string().map((name) => throwingGetter(name)),
);

/** Anything at all: JSON values, fast-check's `anything` (with null prototypes, -0, NaN, boxed values), and exotics. */
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  {
    weight: 3,
    arbitrary: fc.anything({
      maxDepth: 3,
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withObjectString: true,
      withSparseArray: true,
      withTypedArray: true,
      withUnicodeString: true,
      key: fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'Key', 'Data')),
    }),
  },
  { weight: 2, arbitrary: exoticValue },
  { weight: 2, arbitrary: hostileNumber },
  { weight: 2, arbitrary: hostileString() },
);

/** JSON text nested `depth` levels deep in arrays or objects (parsers that recurse overflow the stack). */
export function deeplyNestedText(depth: number, asArray = false): string {
  return asArray ? '['.repeat(depth) + '1' + ']'.repeat(depth) : '{"Key":'.repeat(depth) + '1' + '}'.repeat(depth);
}

// ---- mutations of valid JSON text --------------------------------------------------------------------------------

/** JSON fragments worth inserting into a valid record. */
const JSON_JUNK = [
  '{', '}', '[', ']', '"', ':', ',', '\\', '\\u', '\\ud800', '=', '==', '-', '_', '0', '-0', '1e999', '1.5', 'null',
  'true', ' ', '\n', '\r', '\u0000', 'é', '\ud800', '\udfff', '\u2028', 'NaN', 'Infinity', '"__proto__":{}',
  '"constructor":1', '"Key":', '"Data":"AAAA",', '"Revoked":true,', '"ParentKeyMeta":null,', '"Created":-1,',
];

export type TextEdit =
  | { op: 'delete'; at: number; count: number }
  | { op: 'insert'; at: number; text: string }
  | { op: 'replace'; at: number; char: string }
  | { op: 'truncate'; at: number }
  | { op: 'duplicate'; at: number; from: number; count: number }
  | { op: 'flipCase'; at: number; count: number }
  | { op: 'swap'; at: number; from: number };

const position = fc.nat(1 << 16);

export const textEdit: fc.Arbitrary<TextEdit> = fc.oneof(
  fc.record({ op: fc.constant('delete' as const), at: position, count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({
    op: fc.constant('insert' as const),
    at: position,
    text: fc.oneof(fc.constantFrom(...JSON_JUNK), hostileString(6)),
  }),
  fc.record({ op: fc.constant('replace' as const), at: position, char: hostileChar }),
  fc.record({ op: fc.constant('truncate' as const), at: position }),
  fc.record({ op: fc.constant('duplicate' as const), at: position, from: position, count: fc.integer({ min: 1, max: 24 }) }),
  fc.record({ op: fc.constant('flipCase' as const), at: position, count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('swap' as const), at: position, from: position }),
);

export function applyTextEdits(text: string, edits: readonly TextEdit[]): string {
  let s = text;
  for (const edit of edits) {
    const at = s.length === 0 ? 0 : edit.at % (s.length + 1);
    switch (edit.op) {
      case 'delete': s = s.slice(0, at) + s.slice(at + edit.count); break;
      case 'insert': s = s.slice(0, at) + edit.text + s.slice(at); break;
      case 'replace': s = s.slice(0, at) + edit.char + s.slice(at + 1); break;
      case 'truncate': s = s.slice(0, at); break;
      case 'duplicate': {
        const from = s.length === 0 ? 0 : edit.from % s.length;
        s = s.slice(0, at) + s.slice(from, from + edit.count) + s.slice(at);
        break;
      }
      case 'flipCase': {
        const span = s.slice(at, at + edit.count);
        const flipped = [...span].map((c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())).join('');
        s = s.slice(0, at) + flipped + s.slice(at + edit.count);
        break;
      }
      case 'swap': {
        if (s.length < 2) break;
        const a = Math.min(at, s.length - 1);
        const b = edit.from % s.length;
        const chars = s.split('');
        [chars[a], chars[b]] = [chars[b], chars[a]];
        s = chars.join('');
        break;
      }
    }
  }
  return s;
}

// ---- mutations of valid objects ----------------------------------------------------------------------------------

/** Variants of a field name: case flips, Go's non-ASCII folds (K→Kelvin, i→dotless, s→long s), and near misses. */
export function nameVariants(name: string): string[] {
  return [
    name.toLowerCase(),
    name.toUpperCase(),
    name.slice(0, 1).toLowerCase() + name.slice(1),
    name.replace(/k/gi, '\u212a'),
    name.replace(/i/g, '\u0131').replace(/I/g, '\u0130'),
    name.replace(/s/gi, '\u017f'),
    ` ${name}`,
    `${name}\u0000`,
    name.slice(0, -1),
    `${name}s`,
    name.normalize('NFKD'),
  ];
}

export type ObjectEdit =
  | { op: 'drop'; path: number }
  | { op: 'retype'; path: number; value: unknown }
  | { op: 'rename'; path: number; variant: number }
  | { op: 'duplicate'; path: number; variant: number; value: unknown }
  | { op: 'add'; path: number; name: string; value: unknown }
  | { op: 'getter'; path: number }
  | { op: 'proxy'; path: number }
  | { op: 'protoKey'; path: number };

export const objectEdit: fc.Arbitrary<ObjectEdit> = fc.oneof(
  fc.record({ op: fc.constant('drop' as const), path: fc.nat() }),
  fc.record({ op: fc.constant('retype' as const), path: fc.nat(), value: anyValue }),
  fc.record({ op: fc.constant('rename' as const), path: fc.nat(), variant: fc.nat() }),
  fc.record({ op: fc.constant('duplicate' as const), path: fc.nat(), variant: fc.nat(), value: anyValue }),
  fc.record({
    op: fc.constant('add' as const),
    path: fc.nat(),
    name: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toJSON', 'ID', 'Revoked', 'hasOwnProperty'), hostileString(8)),
    value: anyValue,
  }),
  fc.record({ op: fc.constant('getter' as const), path: fc.nat() }),
  fc.record({ op: fc.constant('proxy' as const), path: fc.nat() }),
  fc.record({ op: fc.constant('protoKey' as const), path: fc.nat() }),
);

type Obj = Record<string, unknown>;

/**
 * Every (parent object, field name) pair of the copied tree, root first. Only objects of the copy are walked into,
 * never a generated value put there by an earlier edit (fast-check may still print it) or a getter or Proxy.
 */
function fieldsOf(root: Obj, copied: WeakSet<object>): [Obj, string][] {
  const out: [Obj, string][] = [];
  const walk = (o: Obj) => {
    for (const name of Object.keys(o)) {
      out.push([o, name]);
      const descriptor = Object.getOwnPropertyDescriptor(o, name);
      const v: unknown = descriptor !== undefined && 'value' in descriptor ? descriptor.value : undefined;
      if (v !== null && typeof v === 'object' && copied.has(v)) walk(v as Obj);
    }
  };
  walk(root);
  return out;
}

function markCopied(value: unknown, copied: WeakSet<object>): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) return;
  copied.add(value);
  for (const v of Object.values(value)) markCopied(v, copied);
}

/**
 * Applies the edits to a deep copy of `valid` (JSON values, and byte arrays, which are copied and never walked
 * into); the result may hold getters and Proxies.
 */
export function applyObjectEdits(valid: object, edits: readonly ObjectEdit[]): Obj {
  const root = structuredClone(valid) as Obj;
  const copied = new WeakSet<object>();
  markCopied(root, copied);
  for (const edit of edits) {
    const fields = fieldsOf(root, copied);
    if (fields.length === 0) {
      if (edit.op === 'add') defineField(root, edit.name, edit.value);
      continue;
    }
    const [parent, name] = fields[edit.path % fields.length];
    switch (edit.op) {
      case 'drop': delete parent[name]; break;
      case 'retype': defineField(parent, name, edit.value); break;
      case 'rename': {
        // The descriptor moves as it is: a getter stays a getter.
        const variants = nameVariants(name);
        const descriptor = Object.getOwnPropertyDescriptor(parent, name)!;
        delete parent[name];
        Object.defineProperty(parent, variants[edit.variant % variants.length], descriptor);
        break;
      }
      case 'duplicate': {
        // A second field whose name differs only in case, before or after the original (order decides in Go).
        const variants = nameVariants(name);
        const other = variants[edit.variant % variants.length];
        if (other !== name) defineField(parent, other, edit.value);
        break;
      }
      case 'add': defineField(parent, edit.name, edit.value); break;
      case 'getter': {
        Object.defineProperty(parent, name, { enumerable: true, configurable: true, get: () => { throw new Boom('getter'); } });
        break;
      }
      case 'proxy': defineField(parent, name, throwingProxy()); break;
      case 'protoKey': {
        // An own "__proto__" field (as JSON.parse makes) holding the field, which must not be read through it.
        const descriptor = Object.getOwnPropertyDescriptor(parent, name)!;
        defineField(parent, '__proto__', Object.defineProperty({}, name, descriptor));
        break;
      }
    }
  }
  return root;
}

/** An own enumerable data property, even for names like `__proto__` that assignment would not create. */
function defineField(target: Obj, name: string, value: unknown): void {
  Object.defineProperty(target, name, { value, enumerable: true, configurable: true, writable: true });
}

/** JSON text of anything (BigInt as a string; a value that cannot be written, e.g. a throwing getter, as "null"). */
export function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}` : v)) ?? 'null';
  } catch {
    return 'null';
  }
}
