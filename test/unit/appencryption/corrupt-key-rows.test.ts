/**
 * Stored data that authenticates but is not a key: an SK or IK row (or a DRR's data row key) that unwraps to 0,
 * 16, 64 or over 1 MiB bytes. Each is an InvalidRecordError naming the row (id and Created) and what was wrong,
 * never its bytes; never a ConfigError or SecureMemoryError, and no secret is left behind.
 */
import { decrypt, encrypt } from '../../../layer/src/appencryption/aead';
import {
  InvalidRecordError,
  MemoryMetastore,
  SecretFactory,
  SessionFactory,
  StaticKms,
  type DataRowRecord,
} from '../../../layer/src/index';
import { TestClock } from '../../support/envelope';

const MASTER_HEX = '5a'.repeat(32);
const SIZES = [0, 16, 64, 1024 * 1024 + 1];
const clock = new TestClock();
const created = Math.floor(clock.now() / 60_000) * 60; // on the minute, as SK and IK Created are

function setup() {
  const secrets = new SecretFactory();
  const master = secrets.createFrom(Buffer.from(MASTER_HEX, 'hex'));
  const sk = secrets.createFrom(Buffer.alloc(32, 7));
  const metastore = new MemoryMetastore();
  const kms = new StaticKms(MASTER_HEX, secrets);
  const factory = SessionFactory.create({ serviceName: 'svc', productId: 'prod', metastore, kms, secrets, clock });
  const close = async () => {
    await factory.close();
    kms.close();
    master.close();
    sk.close();
    secrets.close();
  };
  return { secrets, master, sk, metastore, factory, close };
}

/** The bytes of a wrong-size key, recognisable if they ever showed up in a message. */
const keyBytes = (size: number) => Buffer.alloc(size, 0xab);
const leaks = (message: string) => /abab|q6ur|ABAB/.test(message);

describe.each(SIZES)('a key that unwraps to %i bytes', (size) => {
  test('an SK row: InvalidRecordError naming the SK id and Created, on encrypt and on decrypt', async () => {
    const t = setup();
    await t.metastore.store('_SK_svc_prod', created, { created, encryptedKey: encrypt(keyBytes(size), t.master) });
    const inUse = t.secrets.stats().factorySecretsInUse;
    const failure = await t.factory.getSession('alice').encrypt('x').catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(InvalidRecordError);
    const message = (failure as Error).message;
    expect(message).toContain(`the system key _SK_svc_prod (Created ${created}) in the metastore is not a valid key`);
    expect(message).toContain(`unwrapped to ${size} bytes, not the 32 bytes of an AES-256 key`);
    expect(leaks(message)).toBe(false);
    expect(t.secrets.stats().factorySecretsInUse).toBe(inUse);
    // The decrypt path reaches the SK through an IK row.
    await t.metastore.store('_IK_bob_svc_prod', created, {
      created,
      encryptedKey: encrypt(Buffer.alloc(32, 1), t.sk),
      parentKeyMeta: { keyId: '_SK_svc_prod', created },
    });
    const drr: DataRowRecord = {
      key: { created, encryptedKey: Buffer.alloc(60), parentKeyMeta: { keyId: '_IK_bob_svc_prod', created } },
      data: Buffer.alloc(40),
    };
    await expect(t.factory.getSession('bob').decrypt(drr)).rejects.toThrow(/the system key _SK_svc_prod .* unwrapped to/);
    await t.close();
  });

  test('an IK row: InvalidRecordError naming the IK id and Created, on encrypt and on decrypt', async () => {
    const t = setup();
    const skBytes = Buffer.alloc(32, 7);
    await t.metastore.store('_SK_svc_prod', created, { created, encryptedKey: encrypt(skBytes, t.master) });
    await t.metastore.store('_IK_alice_svc_prod', created, {
      created,
      encryptedKey: encrypt(keyBytes(size), t.sk),
      parentKeyMeta: { keyId: '_SK_svc_prod', created },
    });
    const session = t.factory.getSession('alice');
    const failure = await session.encrypt('x').catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(InvalidRecordError);
    const message = (failure as Error).message;
    expect(message).toContain(`the intermediate key _IK_alice_svc_prod (Created ${created}) in the metastore is not a valid key`);
    expect(message).toContain(`unwrapped to ${size} bytes`);
    expect(leaks(message)).toBe(false);
    const drr: DataRowRecord = {
      key: { created, encryptedKey: Buffer.alloc(60), parentKeyMeta: { keyId: '_IK_alice_svc_prod', created } },
      data: Buffer.alloc(40),
    };
    await expect(session.decrypt(drr)).rejects.toThrow(InvalidRecordError);
    await t.close();
  });

  test("a DRR's data row key: InvalidRecordError, nothing decrypted", async () => {
    const t = setup();
    const session = t.factory.getSession('carol');
    const good = await session.encrypt('x');
    // Re-wrap a wrong-size key under the partition's real IK: only someone holding the IK could write this.
    const ikRow = (await t.metastore.load('_IK_carol_svc_prod', good.key.parentKeyMeta!.created))!;
    const skRow = (await t.metastore.load('_SK_svc_prod', ikRow.parentKeyMeta!.created))!;
    const sk = t.secrets.createFrom(decrypt(skRow.encryptedKey, t.master));
    const ik = t.secrets.createFrom(decrypt(ikRow.encryptedKey, sk));
    const forged: DataRowRecord = { ...good, key: { ...good.key, encryptedKey: encrypt(keyBytes(size), ik) } };
    sk.close();
    ik.close();
    await expect(session.decrypt(forged)).rejects.toThrow(
      new RegExp(`the record's data row key \\(Key.Key\\) unwrapped to ${size} bytes`),
    );
    await t.close();
  });
});
