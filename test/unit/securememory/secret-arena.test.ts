import { createHash } from 'node:crypto';
import { SecretFactory, SecureMemoryError, type Secret } from '../../../layer/src/index';
import { SecretArena, type Allocation } from '../../../layer/src/securememory/secret-arena';
import { allocationOf } from '../../../layer/src/securememory/secret';
import { UNIT_BYTES } from '../../../layer/src/securememory/locked-region';
import { mappingAt, nextTurn } from '../../support/smaps';

const pattern = (seed: string) => createHash('sha256').update(seed).digest();

describe('SecretArena memory', () => {
  let arena: SecretArena;
  beforeEach(() => {
    arena = new SecretArena({ logger: { warn: () => undefined } });
  });
  afterEach(() => arena.shutdown());

  function allocateWith(bytes: Buffer): Allocation {
    const a = arena.allocate(bytes.length, true);
    arena.write(a, bytes);
    return a;
  }

  test('key pages are PROT_NONE between turns, read-write only in the turn that uses them', async () => {
    const a = allocateWith(pattern('p1'));
    const address = a.region!.address;
    expect(mappingAt(address).perms).toBe('rw-p');
    await nextTurn();
    expect(mappingAt(address).perms).toBe('---p');
    expect(Buffer.from(arena.access(a)).equals(pattern('p1'))).toBe(true);
    expect(mappingAt(address).perms).toBe('rw-p');
    await nextTurn();
    expect(mappingAt(address).perms).toBe('---p');
  });

  test('data pages are locked and excluded from core dumps, and PROT_NONE guard pages surround them', async () => {
    const a = allocateWith(pattern('p2'));
    const region = a.region!;
    await nextTurn();
    const data = mappingAt(region.address);
    expect(data.vmFlags).toEqual(expect.arrayContaining(['dd', 'lo']));
    expect(data.locked).toBe(region.dataBytes);
    const page = BigInt(arena.pageSize);
    const below = mappingAt(region.address - page);
    const above = mappingAt(region.address + BigInt(region.dataBytes));
    for (const guard of [below, above]) {
      expect(guard.perms).toBe('---p');
      expect(guard.vmFlags).not.toContain('lo');
    }
  });

  test('freeing a secret zeroes its units, and a canary overwrite is detected', () => {
    const a = allocateWith(pattern('p3'));
    const region = a.region!;
    const start = a.first * UNIT_BYTES;
    arena.free(a);
    arena.ensureOpen(region);
    expect(region.bytes.subarray(start, start + UNIT_BYTES).every((b) => b === 0)).toBe(true);

    const b = allocateWith(pattern('p4'));
    // Simulate native code writing one byte past the secret's end.
    b.region!.bytes[b.first * UNIT_BYTES + 32] ^= 0xff;
    expect(() => arena.free(b)).toThrow(/canary check failed/);
    expect(b.region).toBeNull();
  });

  test('shutdown unmaps every region', async () => {
    const a = allocateWith(pattern('p5'));
    const address = a.region!.address;
    arena.shutdown();
    await nextTurn();
    expect(() => mappingAt(address)).toThrow(/no mapping/);
    expect(() => arena.access(a)).toThrow(SecureMemoryError);
  });
});

describe('SecretArena beyond its locked budget', () => {
  test('a one-page budget serves 5,000 secrets: the rest are sealed and unsealed on use, all correct', async () => {
    const warnings: string[] = [];
    const arena = new SecretArena({ maxLockedBytes: 4096, logger: { warn: (m) => warnings.push(m) } });
    const factory = new SecretFactory({ arena });
    const secrets: Secret[] = [];
    for (let i = 0; i < 5000; i++) secrets.push(factory.createFrom(pattern(`s${i}`)));
    for (let i = 4999; i >= 0; i--) {
      expect(secrets[i].withBytes((bytes) => Buffer.compare(bytes, pattern(`s${i}`)))).toBe(0);
    }
    const stats = factory.stats();
    expect(stats.lockedBytes).toBe(4096);
    expect(stats.keysThatFit).toBe(47);
    expect(stats.residentSecrets).toBe(47);
    expect(stats.sealedSecrets).toBe(5000 - 47);
    expect(stats.seals).toBeGreaterThan(5000);
    expect(warnings).toEqual([expect.stringMatching(/budget reached/)]);
    factory.close();
    expect(arena.stats().secretsInUse).toBe(0);
    expect(arena.stats().sealedSecrets).toBe(0);
    arena.shutdown();
  });

  test('nested withBytes pins secrets so sealing never takes bytes in use', () => {
    const arena = new SecretArena({ maxLockedBytes: 4096, logger: { warn: () => undefined } });
    const factory = new SecretFactory({ arena });
    const secrets = Array.from({ length: 200 }, (_, i) => factory.createFrom(pattern(`n${i}`)));
    const outer = secrets[0];
    const sum = outer.withBytes((outerBytes) => {
      let ok = 0;
      for (let i = 1; i < 200; i++) {
        ok += secrets[i].withBytes((bytes) => Number(Buffer.compare(bytes, pattern(`n${i}`)) === 0));
      }
      return ok + Number(Buffer.compare(outerBytes, pattern('n0')) === 0);
    });
    expect(sum).toBe(200);
    factory.close();
    arena.shutdown();
  });

  test('a tampered sealed secret fails authentication with a typed error', () => {
    const arena = new SecretArena({ maxLockedBytes: 4096, logger: { warn: () => undefined } });
    const factory = new SecretFactory({ arena });
    const secrets = Array.from({ length: 100 }, (_, i) => factory.createFrom(pattern(`t${i}`)));
    const sealed = secrets.find((s) => allocationOf(s).sealed !== null)!;
    allocationOf(sealed).sealed![0] ^= 1;
    expect(() => sealed.withBytes(() => 1)).toThrow(/failed authentication/);
    expect(() => sealed.withBytes(() => 1)).toThrow(/failed authentication/);
    expect(secrets.filter((s) => s !== sealed).every((s) => s.withBytes((b) => b.length === 32))).toBe(true);
    factory.close();
    arena.shutdown();
  });
});

describe('secrets larger than a page', () => {
  test('past a full budget, strict refuses with the real reason and best-effort uses unlocked pages', () => {
    const warnings: string[] = [];
    const arena = new SecretArena({ maxLockedBytes: 4096, logger: { warn: (m) => warnings.push(m) } });
    const strict = new SecretFactory({ arena });
    const small = strict.createRandom(32);
    expect(() => strict.createRandom(10_000)).toThrow(/needs 3 locked pages of its own/);
    const lenient = new SecretFactory({ arena, mlock: 'best-effort' });
    const big = lenient.createRandom(10_000);
    expect(big.withBytes((bytes) => bytes.length)).toBe(10_000);
    expect(lenient.stats()).toMatchObject({ lockState: 'mixed', lockedBytes: 4096, unlockedBytes: 12288 });
    expect(warnings).toEqual([expect.stringMatching(/larger than the free locked budget goes to UNLOCKED/)]);
    expect(small.withBytes((bytes) => bytes.length)).toBe(32);
    strict.close();
    lenient.close();
    arena.shutdown();
  });
});

describe('an open secret stays readable however full the budget gets', () => {
  test('best-effort: secrets of a megabyte on unlocked pages, then thousands of small ones', () => {
    const arena = new SecretArena({ maxLockedBytes: 4096, logger: { warn: () => undefined } });
    const factory = new SecretFactory({ arena, mlock: 'best-effort' });
    // Eight of 245 pages each nearly fill the unlocked cap (8 MiB): were one sealed, there would be no room to
    // place it anew.
    const big = Array.from({ length: 8 }, () => factory.createRandom(1_000_000));
    const digests = big.map((s) => s.withBytes((b) => createHash('sha256').update(b).digest('hex')));
    const small = Array.from({ length: 3000 }, (_, i) => factory.createFrom(pattern(`b${i}`)));
    expect(big.map((s) => s.withBytes((b) => createHash('sha256').update(b).digest('hex')))).toEqual(digests);
    expect(small.every((s, i) => s.withBytes((b) => Buffer.from(b).equals(pattern(`b${i}`))))).toBe(true);
    factory.close();
    arena.shutdown();
  });

  test('strict: a secret of 25 pages inside a 40-page budget, then thousands of small ones', () => {
    const arena = new SecretArena({ maxLockedBytes: 40 * 4096, logger: { warn: () => undefined } });
    const factory = new SecretFactory({ arena });
    const big = factory.createRandom(100_000);
    const digest = big.withBytes((b) => createHash('sha256').update(b).digest('hex'));
    const small = Array.from({ length: 3000 }, (_, i) => factory.createFrom(pattern(`s${i}`)));
    expect(factory.stats().sealedSecrets).toBeGreaterThan(0);
    expect(big.withBytes((b) => createHash('sha256').update(b).digest('hex'))).toBe(digest);
    expect(small.every((s, i) => s.withBytes((b) => Buffer.from(b).equals(pattern(`s${i}`))))).toBe(true);
    factory.close();
    arena.shutdown();
  });
});

describe("protect: 'per-access'", () => {
  test('pages are PROT_NONE as soon as the last read returns, and after create and close, in the same turn', () => {
    const arena = new SecretArena({ logger: { warn: () => undefined } });
    const factory = new SecretFactory({ arena, protect: 'per-access' });
    const secret = factory.createFrom(pattern('pa'));
    const address = allocationOf(secret).region!.address;
    expect(mappingAt(address).perms).toBe('---p');
    const inside = secret.withBytes((bytes) => {
      const outer = mappingAt(address).perms;
      // A nested read of another secret leaves this page readable until the outer read returns.
      const other = factory.createRandom(32);
      other.withBytes(() => undefined);
      return [outer, mappingAt(address).perms, Buffer.from(bytes).equals(pattern('pa'))];
    });
    expect(inside).toEqual(['rw-p', 'rw-p', true]);
    expect(mappingAt(address).perms).toBe('---p');
    secret.close();
    expect(mappingAt(address).perms).toBe('---p');
    factory.close();
    arena.shutdown();
  });

  test('a per-turn secret read around a per-access one keeps its page readable', () => {
    const arena = new SecretArena({ logger: { warn: () => undefined } });
    const perTurn = new SecretFactory({ arena }).createFrom(pattern('outer'));
    const perAccess = new SecretFactory({ arena, protect: 'per-access' }).createFrom(pattern('inner'));
    const ok = perTurn.withBytes((outer) => {
      perAccess.withBytes(() => undefined);
      return Buffer.from(outer).equals(pattern('outer')); // would be SIGSEGV if the page had been closed
    });
    expect(ok).toBe(true);
    arena.shutdown();
  });
});
