/**
 * Partition isolation, proven over names drawn from alphabets rich in "_" and region-like parts: two tuples
 * (partition, service, product, region suffix) that config accepts never share a key id, and a session never
 * decrypts another tuple's record, except its own partition's records written in other regions.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import {
  checkKeyIdNames,
  intermediateKeyId,
  systemKeyId,
} from '../../../layer/src/appencryption/key-ids';
import { isValidIntermediateKeyId } from '../../support/key-ids';
import {
  ConfigError,
  DecryptError,
  DynamoDbMetastore,
  MemoryMetastore,
  SecretFactory,
  SessionFactory,
  StaticKms,
  TEST_DEBUG_STATIC_MASTER_KEY_HEX,
  type Metastore,
} from '../../../layer/src/index';

interface Tuple {
  partition: string;
  service: string;
  product: string;
  suffix: string | undefined;
}

// Parts that make near-collisions likely: separators, pieces of names and of region names, whole region names.
const PARTS = ['_', '_', 'a', 'b', 'svc', 'prod', 'eu', 'west', '-', '2', 'us-west-2', 'eu-west-1', '_us-west-2'];
const name = fc.array(fc.constantFrom(...PARTS), { minLength: 1, maxLength: 4 }).map((parts) => parts.join(''));
const suffix = fc.option(fc.constantFrom('us-west-2', 'eu-west-1', 'us-gov-east-1', 'b', 'prod', 'us_west_2', '2'), {
  nil: undefined,
});
const anyTuple: fc.Arbitrary<Tuple> = fc.record({ partition: name, service: name, product: name, suffix });
const accepts = (t: Tuple) => {
  try {
    checkKeyIdNames(t.service, t.product, t.suffix, false);
    return true;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return false;
  }
};
const acceptedTuple = anyTuple.filter(accepts);

// Pairs built to be adversarial: the same names with "_" moved between fields, or another region's suffix.
const shifted = acceptedTuple.map((t): Tuple => ({ ...t, partition: `${t.partition}_${t.service}`, service: t.product }));
const otherRegion = fc
  .tuple(acceptedTuple, suffix)
  .map(([t, s]): [Tuple, Tuple] => [t, { ...t, suffix: s }]);
const pairs: fc.Arbitrary<[Tuple, Tuple]> = fc.oneof(
  fc.tuple(acceptedTuple, acceptedTuple),
  fc.tuple(acceptedTuple, shifted.filter(accepts)),
  otherRegion.filter(([, b]) => accepts(b)),
);

const same = (a: Tuple, b: Tuple) =>
  a.partition === b.partition && a.service === b.service && a.product === b.product && (a.suffix ?? '') === (b.suffix ?? '');
/** B may read A's records: same partition, service and product; B has a suffix, or neither has one. */
const mayRead = (reader: Tuple, writer: Tuple) =>
  reader.partition === writer.partition &&
  reader.service === writer.service &&
  reader.product === writer.product &&
  (reader.suffix !== undefined || writer.suffix === undefined);

const ikId = (t: Tuple) => intermediateKeyId(t.partition, t.service, t.product, t.suffix);
const skId = (t: Tuple) => systemKeyId(t.service, t.product, t.suffix);

test('two distinct accepted tuples never share an IK or SK id (10,000 pairs)', () => {
  fc.assert(
    fc.property(pairs, ([a, b]) => {
      if (!same(a, b)) expect(ikId(a)).not.toBe(ikId(b));
      const sameSystem = a.service === b.service && a.product === b.product && (a.suffix ?? '') === (b.suffix ?? '');
      if (!sameSystem) expect(skId(a)).not.toBe(skId(b));
      const reads = isValidIntermediateKeyId(ikId(a), b.partition, b.service, b.product, b.suffix);
      expect(reads).toBe(mayRead(b, a));
    }),
    { seed: 1301, numRuns: 10_000 },
  );
});

describe('sessions on one shared metastore', () => {
  const secrets = new SecretFactory();
  const kms = new StaticKms(TEST_DEBUG_STATIC_MASTER_KEY_HEX, secrets);
  afterAll(() => {
    kms.close();
    secrets.close();
  });

  /** A factory for the tuple's service and product whose metastore reports the tuple's suffix. */
  const factoryFor = (t: Tuple, shared: MemoryMetastore) => {
    const metastore: Metastore = {
      load: (id, created) => shared.load(id, created),
      loadLatest: (id) => shared.loadLatest(id),
      store: (id, created, record) => shared.store(id, created, record),
      regionSuffix: () => t.suffix,
    };
    return SessionFactory.create({ serviceName: t.service, productId: t.product, metastore, kms, secrets });
  };

  test('a session decrypts another tuple\'s record only if it is its own partition in another region (10,000 pairs)', async () => {
    let crossRegionReads = 0;
    await fc.assert(
      fc.asyncProperty(pairs, async ([writer, reader]) => {
        const shared = new MemoryMetastore();
        const a = factoryFor(writer, shared);
        const b = factoryFor(reader, shared);
        try {
          const drr = await a.getSession(writer.partition).encrypt('secret of the writer');
          const attempt = b.getSession(reader.partition).decrypt(drr);
          if (mayRead(reader, writer)) {
            expect((await attempt).toString()).toBe('secret of the writer');
            if (!same(reader, writer)) crossRegionReads++;
          } else {
            await expect(attempt).rejects.toThrow(DecryptError);
          }
        } finally {
          await a.close();
          await b.close();
        }
      }),
      { seed: 1302, numRuns: 10_000 },
    );
    expect(crossRegionReads).toBeGreaterThan(100);
  });

  test('the same partition in us-west-2 and eu-west-1 reads the other region\'s records, both directions', async () => {
    const shared = new MemoryMetastore();
    const west = factoryFor({ partition: 'alice', service: 'svc', product: 'prod', suffix: 'us-west-2' }, shared);
    const east = factoryFor({ partition: 'alice', service: 'svc', product: 'prod', suffix: 'eu-west-1' }, shared);
    const fromWest = await west.getSession('alice').encrypt('west');
    const fromEast = await east.getSession('alice').encrypt('east');
    expect(fromWest.key.parentKeyMeta!.keyId).toBe('_IK_alice_svc_prod_us-west-2');
    expect(fromEast.key.parentKeyMeta!.keyId).toBe('_IK_alice_svc_prod_eu-west-1');
    expect((await east.getSession('alice').decrypt(fromWest)).toString()).toBe('west');
    expect((await west.getSession('alice').decrypt(fromEast)).toString()).toBe('east');
    await west.close();
    await east.close();
  });

  test('partition "alice" cannot read partitions "alice_svc_prod" or "alice_svc_prod_x" (upstream\'s prefix test can)', async () => {
    const shared = new MemoryMetastore();
    const legacy = { service: 'svc', product: 'prod', suffix: 'us-west-2' };
    const victim1 = factoryFor({ partition: 'alice_svc_prod', ...legacy }, shared);
    const victim2 = factoryFor({ partition: 'alice_svc_prod_x', ...legacy }, shared);
    const attacker = factoryFor({ partition: 'alice', ...legacy }, shared);
    for (const [victim, partition] of [
      [victim1, 'alice_svc_prod'],
      [victim2, 'alice_svc_prod_x'],
    ] as const) {
      const drr = await victim.getSession(partition).encrypt('not for alice');
      await expect(attacker.getSession('alice').decrypt(drr)).rejects.toThrow(DecryptError);
      await victim.close();
    }
    await attacker.close();
  });

  test('services "billing" and "eu_billing" cannot share a key: config refuses the name unless opted in', async () => {
    const shared = new MemoryMetastore();
    expect(() => factoryFor({ partition: 'acme', service: 'eu_billing', product: 'prod', suffix: undefined }, shared)).toThrow(
      ConfigError,
    );
    // The documented opt-in keeps upstream's behaviour, collision included: this is what it accepts.
    const store: Metastore = {
      load: (id, created) => shared.load(id, created),
      loadLatest: (id) => shared.loadLatest(id),
      store: (id, created, record) => shared.store(id, created, record),
    };
    const opts = { metastore: store, kms, secrets, legacyKeyIdNames: true };
    const billing = SessionFactory.create({ serviceName: 'billing', productId: 'prod', ...opts });
    const euBilling = SessionFactory.create({ serviceName: 'eu_billing', productId: 'prod', ...opts });
    const drr = await billing.getSession('acme_eu').encrypt('billing data');
    expect(drr.key.parentKeyMeta!.keyId).toBe('_IK_acme_eu_billing_prod');
    expect((await euBilling.getSession('acme').decrypt(drr)).toString()).toBe('billing data');
    await billing.close();
    await euBilling.close();
  });
});

test('metastore options refuse a region suffix that is not a region name, unless opted in', () => {
  const client = new DynamoDBClient({ region: 'us-west-2' });
  try {
    expect(() => new DynamoDbMetastore(client, { regionSuffix: 'primary' })).toThrow(
      /DynamoDbMetastore regionSuffix "primary" is not an AWS region name.*legacyKeyIdNames: true/,
    );
    expect(new DynamoDbMetastore(client, { regionSuffix: 'primary', legacyKeyIdNames: true }).regionSuffix()).toBe('primary');
  } finally {
    client.destroy();
  }
  expect(() => new MemoryMetastore({ regionSuffix: 'us_west_2' })).toThrow(ConfigError);
  // A custom metastore reporting such a suffix is refused where the factory reads it.
  const custom: Metastore = { ...new MemoryMetastore(), regionSuffix: () => 'primary' } as unknown as Metastore;
  expect(() =>
    SessionFactory.create({ serviceName: 's', productId: 'p', metastore: custom, kms: {} as never, secrets: new SecretFactory() }),
  ).toThrow(/the region suffix \(the metastore's regionSuffix\) "primary" is not an AWS region name/);
});
