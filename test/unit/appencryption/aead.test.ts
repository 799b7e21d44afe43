import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { SecretFactory, type Secret } from '../../../layer/src/index';
import { decrypt, decryptToSecret, encrypt, encryptKey, KEY_SIZE, OVERHEAD } from '../../../layer/src/appencryption/aead';
import { DecryptError, InvalidRecordError } from '../../../layer/src/appencryption/errors';
import { ConfigError } from '../../../layer/src/errors';

// best-effort: these tests are about the cipher, and must run on hosts that may lock no memory.
const factory = new SecretFactory({ mlock: 'best-effort' });
afterAll(() => factory.close());

const STATIC_MASTER_KEY = 'thisIsAStaticMasterKeyForTesting';

function secretFrom(bytes: Uint8Array): Secret {
  return factory.createFrom(Uint8Array.from(bytes)); // createFrom wipes its argument, so hand it a copy
}

/** Asherah's layout opened with plain node:crypto (docs/wire-format.md §8.4), independent of the code under test. */
function openIndependently(data: Buffer, key: Buffer): Buffer {
  const nonce = data.subarray(data.length - 12);
  const tag = data.subarray(data.length - 28, data.length - 12);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(data.subarray(0, data.length - 28)), decipher.final()]);
}

function expectDecryptError(fn: () => unknown): DecryptError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DecryptError);
    expect((err as Error).name).toBe('DecryptError');
    return err as DecryptError;
  }
  throw new Error('expected a DecryptError, but nothing was thrown');
}

describe('AES-256-GCM (Asherah layout)', () => {
  it('round-trips data under a key held in secure memory', () => {
    const key = factory.createRandom(KEY_SIZE);
    for (const size of [0, 1, 15, 16, 17, 100, 4096, 100_000]) {
      const plaintext = randomBytes(size);
      const sealed = encrypt(plaintext, key);
      expect(decrypt(sealed, key).equals(plaintext)).toBe(true);
    }
    key.close();
  });

  it('writes ciphertext || tag || nonce, n + 28 bytes, that plain node:crypto opens', () => {
    const rawKey = randomBytes(32);
    const key = secretFrom(rawKey);
    const plaintext = Buffer.from('hello asherah');
    const sealed = encrypt(plaintext, key);
    expect(sealed.length).toBe(plaintext.length + 28);
    expect(OVERHEAD).toBe(28);
    expect(openIndependently(sealed, rawKey).equals(plaintext)).toBe(true);
    key.close();
  });

  it('encrypts an empty plaintext to 28 bytes that decrypt to nothing', () => {
    const key = factory.createRandom(KEY_SIZE);
    const sealed = encrypt(new Uint8Array(0), key);
    expect(sealed.length).toBe(28);
    expect(decrypt(sealed, key).length).toBe(0);
    key.close();
  });

  it('decrypts what node:crypto sealed in the same layout, reading the nonce from the end', () => {
    const rawKey = randomBytes(32);
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', rawKey, nonce);
    const plaintext = Buffer.from('nonce comes last');
    const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag(), nonce]);
    const key = secretFrom(rawKey);
    expect(decrypt(sealed, key).equals(plaintext)).toBe(true);
    key.close();
  });

  it('decrypts the upstream Go raw AEAD vector (docs/wire-format.md §8.3.5)', () => {
    const key = secretFrom(Buffer.from(STATIC_MASTER_KEY, 'utf8'));
    const sealed = Buffer.from('l87yIWixD7PlY4+aASgaAkOERI/mUMb4+xQ36XjWNDsUkXE+bDwi2hs=', 'base64');
    expect(sealed.length).toBe(41);
    expect(decrypt(sealed, key).toString('utf8')).toBe('hello asherah');
    key.close();
  });

  it('rejects every single flipped bit of a ciphertext with DecryptError', () => {
    const key = factory.createRandom(KEY_SIZE);
    const sealed = encrypt(Buffer.from('tamper-evident'), key);
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const tampered = Buffer.from(sealed);
      tampered[bit >> 3] ^= 1 << (bit & 7);
      const err = expectDecryptError(() => decrypt(tampered, key));
      expect(err.message).toMatch(/tampered with or encrypted under another key/);
      expect(String((err.cause as Error).message)).toMatch(/unable to authenticate data/); // OpenSSL's error
    }
    key.close();
  });

  it('rejects data encrypted under another key with DecryptError', () => {
    const key = factory.createRandom(KEY_SIZE);
    const other = factory.createRandom(KEY_SIZE);
    expectDecryptError(() => decrypt(encrypt(Buffer.from('x'), key), other));
    key.close();
    other.close();
  });

  it('rejects input shorter than tag + nonce (28 bytes) with DecryptError', () => {
    const key = factory.createRandom(KEY_SIZE);
    for (const size of [0, 1, 11, 12, 27]) {
      const err = expectDecryptError(() => decrypt(new Uint8Array(size), key));
      expect(err.message).toMatch(/shorter than the 28-byte tag and nonce/);
    }
    key.close();
  });

  it('never repeats a nonce over 10,000 encryptions', () => {
    const key = factory.createRandom(KEY_SIZE);
    const nonces = new Set<string>();
    const plaintext = Buffer.from('same plaintext every time');
    for (let i = 0; i < 10_000; i++) {
      const sealed = encrypt(plaintext, key);
      nonces.add(sealed.subarray(sealed.length - 12).toString('hex'));
    }
    expect(nonces.size).toBe(10_000);
    key.close();
  });

  it('refuses a key that is not 32 bytes: ConfigError on encrypt, DecryptError on decrypt', () => {
    const short = factory.createRandom(16);
    expect(() => encrypt(Buffer.from('x'), short)).toThrow(ConfigError);
    expectDecryptError(() => decrypt(new Uint8Array(40), short));
    short.close();
  });
});

describe('decryptToSecret', () => {
  it('unwraps a key into a Secret that encrypts like the original', () => {
    const kek = factory.createRandom(KEY_SIZE);
    const rawKey = randomBytes(32);
    const wrapped = encrypt(rawKey, kek);
    const unwrapped = decryptToSecret(wrapped, kek, factory);
    expect(unwrapped.length).toBe(32);
    expect(unwrapped.withBytes((bytes) => Buffer.compare(bytes, rawKey))).toBe(0);
    const sealed = encrypt(Buffer.from('data'), unwrapped);
    expect(openIndependently(sealed, rawKey).toString()).toBe('data');
    unwrapped.close();
    kek.close();
  });

  it('zeroes the transient plaintext when the secret cannot be created', () => {
    const kek = factory.createRandom(KEY_SIZE);
    const wrapped = encrypt(randomBytes(32), kek);
    let seen: Uint8Array | undefined;
    const failing = {
      createFrom(bytes: Uint8Array): Secret {
        seen = bytes;
        throw new Error('no secure memory left');
      },
    } as unknown as SecretFactory;
    expect(() => decryptToSecret(wrapped, kek, failing)).toThrow('no secure memory left');
    expect(seen).toBeDefined();
    expect(seen!.every((b) => b === 0)).toBe(true);
    kek.close();
  });

  it('refuses a wrapped value that is not a 32-byte key with InvalidRecordError, making no secret', () => {
    const kek = factory.createRandom(KEY_SIZE);
    const before = factory.stats().factorySecretsInUse;
    for (const size of [0, 16, 33, 64]) {
      expect(() => decryptToSecret(encrypt(randomBytes(size), kek), kek, factory, 'the test key')).toThrow(
        new InvalidRecordError(`the test key unwrapped to ${size} bytes, not the 32 bytes of an AES-256 key`),
      );
    }
    expect(factory.stats().factorySecretsInUse).toBe(before);
    kek.close();
  });

  it('throws DecryptError and makes no secret for a tampered wrapped key', () => {
    const kek = factory.createRandom(KEY_SIZE);
    const wrapped = encrypt(randomBytes(32), kek);
    wrapped[0] ^= 1;
    const before = factory.stats().factorySecretsInUse;
    expectDecryptError(() => decryptToSecret(wrapped, kek, factory));
    expect(factory.stats().factorySecretsInUse).toBe(before);
    kek.close();
  });
});

describe('encryptKey', () => {
  test('wraps a key held in secure memory so that plain node:crypto opens it to the same bytes', () => {
    const kekBytes = randomBytes(KEY_SIZE);
    const keyBytes = randomBytes(KEY_SIZE);
    const kek = secretFrom(kekBytes);
    const key = secretFrom(keyBytes);
    const wrapped = encryptKey(key, kek);
    expect(wrapped.length).toBe(KEY_SIZE + OVERHEAD);
    expect(openIndependently(wrapped, kekBytes).equals(keyBytes)).toBe(true);
    key.close();
    kek.close();
  });
});
