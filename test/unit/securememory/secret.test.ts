import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import * as publicApi from '../../../layer/src/index';
import { SecretFactory, SecureMemoryError, type Secret } from '../../../layer/src/index';
import { withKeyBytes } from '../../../layer/src/securememory/secret';

describe('Secret', () => {
  let factory: SecretFactory;
  beforeEach(() => {
    factory = new SecretFactory();
  });
  afterEach(() => factory.close());

  test('createFrom keeps the bytes and wipes the source buffer', () => {
    const original = randomBytes(32);
    const source = Buffer.from(original);
    const secret = factory.createFrom(source);
    expect(source.equals(Buffer.alloc(32))).toBe(true);
    expect(secret.length).toBe(32);
    expect(secret.withBytes((bytes) => Buffer.compare(bytes, original))).toBe(0);
  });

  test('createRandom gives secrets of the asked length that differ from each other', () => {
    const seen = new Set<string>();
    for (const length of [1, 12, 32, 48, 64, 100, 1008, 1009, 4000, 5000, 70_000]) {
      const secret = factory.createRandom(length);
      expect(secret.length).toBe(length);
      const hex = secret.withBytes((bytes) => {
        expect(bytes.length).toBe(length);
        return Buffer.from(bytes).toString('hex');
      });
      expect(hex).not.toBe('00'.repeat(length));
      seen.add(hex);
    }
    expect(seen.size).toBe(11);
  });

  test('withBytes returns what the callback returns and passes bytes node:crypto accepts as a key', () => {
    const key = randomBytes(32);
    const secret = factory.createFrom(Buffer.from(key));
    const iv = randomBytes(12);
    const sealed = secret.withBytes((bytes) => {
      const cipher = createCipheriv('aes-256-gcm', bytes, iv);
      return Buffer.concat([cipher.update('hello'), cipher.final(), cipher.getAuthTag()]);
    });
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAuthTag(sealed.subarray(5));
    expect(Buffer.concat([decipher.update(sealed.subarray(0, 5)), decipher.final()]).toString()).toBe('hello');
  });

  test('use after close is a SecureMemoryError, and close is idempotent', () => {
    const secret = factory.createRandom(32);
    secret.close();
    secret.close();
    expect(secret.isClosed).toBe(true);
    expect(() => secret.withBytes(() => 1)).toThrow(SecureMemoryError);
    expect(() => secret.withBytes(() => 1)).toThrow(/closed/);
  });

  test('closing a secret inside its own withBytes takes effect when the callback returns', () => {
    const secret = factory.createFrom(Buffer.from('0123456789abcdef0123456789abcdef'));
    const seenInside = secret.withBytes((bytes) => {
      secret.close();
      return Buffer.from(bytes).toString();
    });
    expect(seenInside).toBe('0123456789abcdef0123456789abcdef');
    expect(() => secret.withBytes(() => 1)).toThrow(SecureMemoryError);
  });

  test('an async withBytes callback is refused with a typed error', () => {
    const secret = factory.createRandom(32);
    expect(() => secret.withBytes(async () => 1)).toThrow(/synchronous/);
    expect(secret.withBytes((bytes) => bytes.length)).toBe(32);
  });

  test("a secret's view reaches its own bytes only, not the page that holds its neighbours", () => {
    const a = factory.createFrom(Buffer.alloc(32, 0xaa));
    const b = factory.createFrom(Buffer.alloc(32, 0xbb));
    const seen = a.withBytes((bytes) => {
      // Everything reachable from the view: its whole buffer, read through a new view, and written to.
      const whole = new Uint8Array(bytes.buffer);
      const reach = { offset: bytes.byteOffset, bufferLength: bytes.buffer.byteLength, sawNeighbour: whole.includes(0xbb) };
      whole.fill(0);
      return reach;
    });
    expect(seen).toEqual({ offset: 0, bufferLength: 32, sawNeighbour: false });
    expect(b.withBytes((bytes) => Buffer.from(bytes).equals(Buffer.alloc(32, 0xbb)))).toBe(true);
  });

  // Each callback marks that its body ran: a refused callback must never start (its body would read the page
  // after withBytes returned).
  type MakeCallback = (mark: () => void) => (bytes: Uint8Array) => unknown;
  test.each<[string, MakeCallback]>([
    ['an async function', (mark) => async (bytes) => {
      mark();
      return bytes[0];
    }],
    ['an async function that awaits first', (mark) => async (bytes) => {
      await Promise.resolve();
      mark();
      return bytes[0];
    }],
    ['a generator function', (mark) => function* (bytes) {
      mark();
      yield bytes[0];
    }],
    ['an async generator function', (mark) => async function* (bytes) {
      mark();
      yield bytes[0];
    }],
  ])('%s is refused with a typed error before it starts', async (_, make) => {
    const secret = factory.createRandom(32);
    let ran = 0;
    const callback = make(() => ran++);
    expect(() => secret.withBytes(callback)).toThrow(SecureMemoryError);
    expect(() => secret.withBytes(callback)).toThrow(/synchronous/);
    await new Promise((resolve) => setImmediate(resolve));
    expect(ran).toBe(0);
    expect(secret.withBytes((bytes) => bytes.length)).toBe(32);
  });

  test('bad lengths and sources are SecureMemoryErrors', () => {
    expect(() => factory.createRandom(0)).toThrow(SecureMemoryError);
    expect(() => factory.createRandom(1.5)).toThrow(SecureMemoryError);
    expect(() => factory.createFrom('abc' as unknown as Uint8Array)).toThrow(SecureMemoryError);
  });

  test('factory.close closes every secret it made and the factory refuses further use', () => {
    const secrets: Secret[] = [];
    for (let i = 0; i < 100; i++) secrets.push(factory.createRandom(32));
    secrets[3].close();
    expect(factory.stats().factorySecretsInUse).toBe(99);
    factory.close();
    for (const secret of secrets) expect(secret.isClosed).toBe(true);
    expect(() => factory.createRandom(32)).toThrow(/closed/);
  });

  test('the mlock option is checked', () => {
    expect(() => new SecretFactory({ mlock: 'sometimes' as 'strict' })).toThrow(/mlock must be/);
    expect(() => new SecretFactory({ maxLockedBytes: 100 })).toThrow(/maxLockedBytes/);
    expect(() => new SecretFactory({ protect: 'never' as 'per-turn' })).toThrow(/protect must be "per-turn" or "per-access"/);
  });

  describe("withKeyBytes (for the library's own AES calls)", () => {
    test("reads the same bytes as withBytes, whose view is the secret's own and detached as the call returns", () => {
      const key = randomBytes(32);
      const secret = factory.createFrom(Buffer.from(key));
      expect(withKeyBytes(secret, (bytes) => Buffer.compare(bytes, key))).toBe(0);
      let kept: Uint8Array | undefined;
      secret.withBytes((bytes) => {
        expect(bytes.buffer.byteLength).toBe(32);
        kept = bytes;
      });
      expect(kept!.buffer.byteLength).toBe(0);
      expect(secret.withBytes((bytes) => Buffer.compare(bytes, key))).toBe(0);
    });

    test('a closed secret is a SecureMemoryError, and close() inside the call waits for it to return', () => {
      const secret = factory.createFrom(randomBytes(32));
      const before = factory.stats().factorySecretsInUse;
      const first = withKeyBytes(secret, (bytes) => {
        secret.close();
        return bytes[0]; // still readable: the release waits for the call to return
      });
      expect(typeof first).toBe('number');
      expect(factory.stats().factorySecretsInUse).toBe(before - 1);
      expect(() => withKeyBytes(secret, () => 0)).toThrow(SecureMemoryError);
    });

    test('is not part of the public API', () => {
      expect('withKeyBytes' in publicApi).toBe(false);
      expect('allocationOf' in publicApi).toBe(false);
    });
  });
});
