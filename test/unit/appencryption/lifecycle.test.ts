/**
 * Close means closed: sessions of a closed factory fail with ClosedError and its keys are wiped; shutdownAsync()
 * and an awaited close() let started operations finish; shutdown() and a timed-out close() make them fail with
 * ClosedError, never with an error from deep inside (SecureMemoryError, MetastoreError).
 */
import {
  ClosedError,
  decodeDataRowRecord,
  encryptStringAsync,
  MemoryMetastore,
  SecretFactory,
  SessionFactory,
  setup,
  shutdown,
  shutdownAsync,
  StaticKms,
  TEST_DEBUG_STATIC_MASTER_KEY_HEX,
  type Metastore,
} from '../../../layer/src/index';
import { canDropPrivileges, lastJson, runTs } from '../../support/unprivileged';

const CLOSED = /the SessionFactory was closed \(close\(\), shutdown\(\) or shutdownAsync\(\)\)/;

/** A metastore whose reads wait until the test lets them go: operations stay in flight as long as needed. */
class GatedMetastore implements Metastore {
  readonly inner = new MemoryMetastore();
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => undefined;
  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }
  release(): void {
    this.open();
  }
  async load(id: string, created: number) {
    await this.gate;
    return this.inner.load(id, created);
  }
  async loadLatest(id: string) {
    await this.gate;
    return this.inner.loadLatest(id);
  }
  store: Metastore['store'] = (id, created, record) => this.inner.store(id, created, record);
}

function build() {
  const kmsSecrets = new SecretFactory();
  const kms = new StaticKms(TEST_DEBUG_STATIC_MASTER_KEY_HEX, kmsSecrets);
  const secrets = new SecretFactory();
  const metastore = new GatedMetastore();
  const factory = SessionFactory.create({ serviceName: 'svc', productId: 'prod', metastore, kms, secrets });
  return {
    factory,
    metastore,
    secrets,
    kms,
    done: () => {
      kms.close();
      kmsSecrets.close();
      secrets.close();
    },
  };
}

test('after close, every operation of the sessions made before fails with ClosedError, and every cached key is wiped', async () => {
  const t = build();
  const session = t.factory.getSession('alice');
  const drr = await session.encrypt('before close');
  expect(t.secrets.stats().factorySecretsInUse).toBe(2); // the SK and the IK, cached
  await t.factory.close();
  expect(t.secrets.stats().factorySecretsInUse).toBe(0);
  await expect(session.encrypt('after')).rejects.toThrow(ClosedError);
  await expect(session.encrypt('after')).rejects.toThrow(CLOSED);
  await expect(session.decrypt(drr)).rejects.toThrow(CLOSED);
  expect(() => t.factory.getSession('alice')).toThrow(CLOSED);
  await expect(t.factory.prewarm(['alice'])).rejects.toThrow(CLOSED);
  await t.factory.close(); // idempotent
  t.done();
});

test('close() lets operations already started finish, refuses new ones meanwhile, then wipes', async () => {
  const t = build();
  t.metastore.hold();
  const started = Array.from({ length: 50 }, (_, i) => t.factory.getSession(`p${i}`).encrypt(`r${i}`));
  const closed = t.factory.close();
  expect(() => t.factory.getSession('late')).toThrow(ClosedError);
  await expect(t.factory.prewarm(['late'])).rejects.toThrow(ClosedError);
  t.metastore.release();
  const drrs = await Promise.all(started);
  await closed;
  expect(drrs).toHaveLength(50);
  expect(t.secrets.stats().factorySecretsInUse).toBe(0);
  // The records are sound: a new factory on the same metastore decrypts them.
  const again = SessionFactory.create({ serviceName: 'svc', productId: 'prod', metastore: t.metastore.inner, kms: t.kms, secrets: t.secrets });
  expect((await again.getSession('p7').decrypt(drrs[7])).toString()).toBe('r7');
  await again.close();
  t.done();
});

test('what is still running when close() times out, or at close({ timeoutMs: 0 }), fails with ClosedError', async () => {
  for (const timeoutMs of [0, 20]) {
    const t = build();
    t.metastore.hold();
    const started = Array.from({ length: 20 }, (_, i) => t.factory.getSession(`p${i}`).encrypt(`r${i}`));
    await t.factory.close({ timeoutMs });
    expect(t.secrets.stats().factorySecretsInUse).toBe(0);
    t.metastore.release();
    const outcomes = await Promise.allSettled(started);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(ClosedError);
    }
    expect(t.metastore.inner.rows()).toHaveLength(0); // nothing was created for a closed factory
    t.done();
  }
});

test('encrypt, decrypt and prewarm waiting on a metastore call that never settles fail with ClosedError at the close deadline', async () => {
  for (const timeoutMs of [0, 20]) {
    const t = build();
    // A record to decrypt cold: written by another factory on the same rows.
    const writer = SessionFactory.create({ serviceName: 'svc', productId: 'prod', metastore: t.metastore.inner, kms: t.kms, secrets: t.secrets });
    const drr = await writer.getSession('p1').encrypt('cold');
    await writer.close();
    t.metastore.hold(); // never released: the reads hang for good
    const started = [
      t.factory.getSession('p1').encrypt('x'),
      t.factory.getSession('p1').decrypt(drr),
      t.factory.prewarm(['p2', 'p3']),
    ];
    await t.factory.close({ timeoutMs });
    const outcomes = await Promise.allSettled(started);
    expect(outcomes.map((o) => (o.status === 'rejected' ? (o.reason as Error).name : o.status))).toEqual([
      'ClosedError',
      'ClosedError',
      'ClosedError',
    ]);
    expect(t.secrets.stats().factorySecretsInUse).toBe(0);
    t.done();
  }
});

test('a KMS call that never settles fails with ClosedError at close; a system key the KMS returns after the close is closed at once', async () => {
  const kmsSecrets = new SecretFactory();
  const inner = new StaticKms(TEST_DEBUG_STATIC_MASTER_KEY_HEX, kmsSecrets);
  const secrets = new SecretFactory();
  const metastore = new MemoryMetastore();
  const writer = SessionFactory.create({ serviceName: 'svc', productId: 'prod', metastore, kms: inner, secrets });
  const drr = await writer.getSession('p1').encrypt('cold');
  await writer.close();
  let letDecryptGo: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (letDecryptGo = resolve));
  const kms = {
    encryptKey: () => new Promise<Buffer>(() => undefined), // never settles
    decryptKey: async (encryptedKey: Uint8Array, into: SecretFactory) => {
      await gate;
      return inner.decryptKey(encryptedKey, into);
    },
  };
  const reader = SessionFactory.create({ serviceName: 'svc', productId: 'prod', metastore, kms, secrets });
  const creator = SessionFactory.create({ serviceName: 'svc2', productId: 'prod', metastore, kms, secrets });
  const decrypting = reader.getSession('p1').decrypt(drr);
  const creating = creator.getSession('p1').encrypt('new');
  await new Promise((resolve) => setTimeout(resolve, 10));
  const before = secrets.stats().factorySecretsInUse;
  await Promise.all([reader.close({ timeoutMs: 0 }), creator.close({ timeoutMs: 0 })]);
  await expect(decrypting).rejects.toThrow(ClosedError);
  await expect(creating).rejects.toThrow(ClosedError);
  letDecryptGo(); // the SK arrives now, for nobody
  await new Promise((resolve) => setImmediate(resolve));
  expect(secrets.stats().factorySecretsInUse).toBeLessThanOrEqual(before);
  expect(secrets.stats().factorySecretsInUse).toBe(0);
  inner.close();
  kmsSecrets.close();
  secrets.close();
});

test('a StaticKms used after its own close() fails with ClosedError', async () => {
  const secrets = new SecretFactory();
  const kms = new StaticKms(TEST_DEBUG_STATIC_MASTER_KEY_HEX, secrets);
  const sk = secrets.createRandom(32);
  const wrapped = await kms.encryptKey(sk);
  kms.close();
  await expect(kms.encryptKey(sk)).rejects.toThrow(/the StaticKms was closed/);
  await expect(kms.decryptKey(wrapped, secrets)).rejects.toThrow(ClosedError);
  secrets.close();
});

describe('the module functions', () => {
  const config = { ServiceName: 'svc', ProductID: 'prod', Metastore: 'memory', KMS: 'test-debug-static' } as const;

  test('1,000 cold encrypts in flight at shutdown() all fail with ClosedError', async () => {
    setup(config);
    const inFlight = Array.from({ length: 1000 }, (_, i) => encryptStringAsync(`partition-${i}`, `record ${i}`));
    shutdown();
    const outcomes = await Promise.allSettled(inFlight);
    const reasons = outcomes.map((o) => (o.status === 'rejected' ? o.reason : undefined));
    expect(reasons.filter((r) => r instanceof ClosedError)).toHaveLength(1000);
  });

  test('1,000 cold encrypts in flight at shutdownAsync() all succeed', async () => {
    setup(config);
    const inFlight = Array.from({ length: 1000 }, (_, i) => encryptStringAsync(`partition-${i}`, `record ${i}`));
    await shutdownAsync();
    const drrs = await Promise.all(inFlight);
    expect(drrs.map((d) => decodeDataRowRecord(d).key.parentKeyMeta!.keyId)).toContain('_IK_partition-999_svc_prod');
  });

  (canDropPrivileges() ? test : test.skip)(
    'under a 64 KiB memlock limit: shutdownAsync() mid-flight, set up again, every record round-trips, VmLck back to the start',
    () => {
      const result = runTs('test/support/lifecycle-child.ts', [], { memlockBytes: 65536 });
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      const report = lastJson<{
        lockedAtStart: number;
        lockedAfterShutdown: number;
        lockedAtEnd: number;
        failed: number;
        failures: string[];
        roundTrips: number;
      }>(result.stdout);
      expect(report.failures).toEqual([]);
      expect(report.roundTrips).toBe(1000);
      expect(report.lockedAfterShutdown).toBe(report.lockedAtStart);
      expect(report.lockedAtEnd).toBe(report.lockedAtStart);
    },
  );
});
