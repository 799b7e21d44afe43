/**
 * Key lifecycle on a real SQLite metastore with a clock the test moves (docs/wire-format.md §1.4–1.5): expiry,
 * revocation (set the way upstream's revoke scripts do: rewrite key_record with "Revoked":true), cache re-checks,
 * races.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteMetastore, type DataRowRecord } from '../../layer/src/index';
import { TestClock, testFactory, type TestFactory } from '../support/envelope';

const DAY = 24 * 3600;

describe('key lifecycle', () => {
  let dir: string;
  let file: string;
  const open: TestFactory[] = [];
  const make = (clock: TestClock, policy = {}) => {
    const t = testFactory({ metastore: new SqliteMetastore(file), clock, policy });
    open.push(t);
    return t;
  };
  const revoke = (idPrefix: string) => {
    const db = new Database(file);
    const rows = db.prepare('SELECT id, created, key_record FROM encryption_key WHERE id LIKE ?').all(`${idPrefix}%`) as {
      id: string;
      created: string;
      key_record: string;
    }[];
    for (const row of rows) {
      const record = JSON.parse(row.key_record);
      record.Revoked = true;
      db.prepare('UPDATE encryption_key SET key_record = ? WHERE id = ? AND created = ?').run(
        JSON.stringify(record),
        row.id,
        row.created,
      );
    }
    db.close();
    return rows.length;
  };
  const rowsLike = (prefix: string) => {
    const db = new Database(file, { readonly: true });
    try {
      return db.prepare('SELECT id, created FROM encryption_key WHERE id LIKE ? ORDER BY created').all(`${prefix}%`);
    } finally {
      db.close();
    }
  };
  const ikRows = () => rowsLike('_IK_');
  const skRows = () => rowsLike('_SK_');

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'lifecycle-'));
    file = path.join(dir, 'keys.db');
  });
  afterEach(async () => {
    for (const t of open.splice(0)) await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an expired IK and SK are replaced on the next write; records under the old keys still decrypt', async () => {
    const clock = new TestClock();
    const t = make(clock, { expireAfterSeconds: 30 * DAY });
    const session = t.factory.getSession('p');
    const old = await session.encrypt(Buffer.from('before'));
    clock.advanceSeconds(31 * DAY);
    const fresh = await session.encrypt(Buffer.from('after'));
    expect(fresh.key.parentKeyMeta!.created).toBeGreaterThan(old.key.parentKeyMeta!.created);
    expect(ikRows()).toHaveLength(2);
    expect(skRows()).toHaveLength(2);
    expect((await session.decrypt(old)).toString()).toBe('before');
    // A cold factory reads both generations from the metastore.
    const cold = make(clock, { expireAfterSeconds: 30 * DAY });
    expect((await cold.factory.getSession('p').decrypt(old)).toString()).toBe('before');
    expect((await cold.factory.getSession('p').decrypt(fresh)).toString()).toBe('after');
  });

  test('a revoked IK is replaced on write once the cache re-checks it, and still decrypts old records', async () => {
    const clock = new TestClock();
    const t = make(clock, { checkIntervalSeconds: 600 });
    const session = t.factory.getSession('p');
    const old = await session.encrypt(Buffer.from('old'));
    expect(revoke('_IK_p_')).toBe(1);
    clock.advanceSeconds(60);
    // Within the check interval the cached IK is still trusted (upstream behaviour).
    const stillOld = await session.encrypt(Buffer.from('x'));
    expect(stillOld.key.parentKeyMeta!.created).toBe(old.key.parentKeyMeta!.created);
    clock.advanceSeconds(600);
    const replaced = await session.encrypt(Buffer.from('new'));
    expect(replaced.key.parentKeyMeta!.created).toBeGreaterThan(old.key.parentKeyMeta!.created);
    expect(ikRows()).toHaveLength(2);
    expect((await session.decrypt(old)).toString()).toBe('old');
    expect((await make(clock).factory.getSession('p').decrypt(old)).toString()).toBe('old');
  });

  test('a revoked SK makes the next new IK come with a new SK; records under the revoked SK still decrypt', async () => {
    const clock = new TestClock();
    const first = make(clock);
    const old = await first.factory.getSession('p').encrypt(Buffer.from('old'));
    revoke('_SK_');
    revoke('_IK_');
    clock.advanceSeconds(120);
    const second = make(clock);
    const drr = await second.factory.getSession('p').encrypt(Buffer.from('new'));
    const sks = skRows() as { created: string }[];
    expect(sks).toHaveLength(2);
    expect(ikRows()).toHaveLength(2);
    expect((await second.factory.getSession('p').decrypt(old)).toString()).toBe('old');
    expect((await second.factory.getSession('p').decrypt(drr)).toString()).toBe('new');
  });

  test('an IK whose SK is older than the cached latest SK loads its own SK', async () => {
    const clock = new TestClock();
    const t = make(clock, { expireAfterSeconds: 30 * DAY });
    const a = await t.factory.getSession('a').encrypt(Buffer.from('a'));
    clock.advanceSeconds(31 * DAY);
    await t.factory.getSession('b').encrypt(Buffer.from('b')); // makes a second SK
    const cold = make(clock, { expireAfterSeconds: 30 * DAY });
    await cold.factory.getSession('b').encrypt(Buffer.from('warm the new SK'));
    expect((await cold.factory.getSession('a').decrypt(a)).toString()).toBe('a');
  });

  test('two factories racing to create one IK end with one row, and each uses it', async () => {
    const clock = new TestClock();
    const one = make(clock);
    const two = make(clock);
    const results: DataRowRecord[] = await Promise.all([
      one.factory.getSession('race').encrypt(Buffer.from('1')),
      two.factory.getSession('race').encrypt(Buffer.from('2')),
      one.factory.getSession('race').encrypt(Buffer.from('3')),
      two.factory.getSession('race').encrypt(Buffer.from('4')),
    ]);
    expect(ikRows()).toHaveLength(1);
    expect(skRows()).toHaveLength(1);
    // Both really tried: one store of each key lost the race and fell back to the winner's row.
    expect(one.metastore.calls.store + two.metastore.calls.store).toBe(4);
    expect(new Set(results.map((r) => r.key.parentKeyMeta!.created)).size).toBe(1);
    for (const [i, drr] of results.entries()) {
      expect((await one.factory.getSession('race').decrypt(drr)).toString()).toBe(String(i + 1));
    }
  });
});
