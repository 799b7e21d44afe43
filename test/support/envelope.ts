/**
 * Test helpers for the envelope core: a clock the test moves, a metastore wrapper that counts calls, and a
 * factory wired to the static test key.
 */
import {
  MemoryMetastore,
  SecretFactory,
  SessionFactory,
  StaticKms,
  TEST_DEBUG_STATIC_MASTER_KEY_HEX,
  type Clock,
  type CryptoPolicyOptions,
  type EnvelopeKeyRecord,
  type KeyManagementService,
  type Metastore,
} from '../../layer/src/index';

export class TestClock implements Clock {
  constructor(private ms = Date.UTC(2026, 10, 28, 12, 0, 30)) {}
  now(): number {
    return this.ms;
  }
  advanceSeconds(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

export class CountingMetastore implements Metastore {
  calls = { load: 0, loadLatest: 0, store: 0 };
  constructor(readonly inner: Metastore = new MemoryMetastore()) {}
  async load(id: string, created: number) {
    this.calls.load++;
    return this.inner.load(id, created);
  }
  async loadLatest(id: string) {
    this.calls.loadLatest++;
    return this.inner.loadLatest(id);
  }
  async store(id: string, created: number, record: EnvelopeKeyRecord) {
    this.calls.store++;
    return this.inner.store(id, created, record);
  }
  regionSuffix() {
    return this.inner.regionSuffix?.();
  }
}

export class CountingKms implements KeyManagementService {
  calls = { encryptKey: 0, decryptKey: 0 };
  constructor(readonly inner: KeyManagementService) {}
  async encryptKey(...args: Parameters<KeyManagementService['encryptKey']>) {
    this.calls.encryptKey++;
    return this.inner.encryptKey(...args);
  }
  async decryptKey(...args: Parameters<KeyManagementService['decryptKey']>) {
    this.calls.decryptKey++;
    return this.inner.decryptKey(...args);
  }
}

export interface TestFactory {
  factory: SessionFactory;
  metastore: CountingMetastore;
  kms: CountingKms;
  clock: TestClock;
  secrets: SecretFactory;
  close(): Promise<void>;
}

export function testFactory(
  options: { metastore?: Metastore; clock?: TestClock; policy?: CryptoPolicyOptions; masterKeyHex?: string } = {},
): TestFactory {
  const secrets = new SecretFactory();
  const metastore = new CountingMetastore(options.metastore);
  const kms = new CountingKms(new StaticKms(options.masterKeyHex ?? TEST_DEBUG_STATIC_MASTER_KEY_HEX, secrets));
  const clock = options.clock ?? new TestClock();
  const factory = SessionFactory.create({
    serviceName: 'service',
    productId: 'product',
    metastore,
    kms,
    clock,
    policy: options.policy,
    secrets,
  });
  return {
    factory,
    metastore,
    kms,
    clock,
    secrets,
    close: async () => {
      await factory.close();
      secrets.close();
    },
  };
}
