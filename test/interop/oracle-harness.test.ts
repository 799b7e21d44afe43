/**
 * Proves the Rust Asherah oracle harness (test/support/oracle.ts) against the oracle alone: records round-trip
 * through a SQLite file across separate child processes, the rows it writes have the documented shape, static
 * master keys behave, region suffixes work only through the env factory, and failures are reported per op.
 */
import Database from 'better-sqlite3';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  decryptOp,
  describeOracle,
  encryptOp,
  ORACLE_EXPECTED_VERSION,
  ORACLE_NO_SELF_HEAL,
  oracleSqliteConfig,
  oracleVersion,
  resultData,
  resultDrr,
  runOracle,
  runOracleOk,
  TEST_DEBUG_STATIC_KEY,
  type OracleResult,
} from '../support/oracle';

const DRR_PATTERN =
  /^\{"Key":\{"Created":(\d+),"Key":"([A-Za-z0-9+/]+={0,2})","ParentKeyMeta":\{"KeyId":"((?:[^"\\]|\\.)*)","Created":(\d+)\}\},"Data":"([A-Za-z0-9+/]*={0,2})"\}$/;
const B64 = /^[A-Za-z0-9+/]+={0,2}$/;
const GUARD_PREFIX = '__asherah_internal_config_drift_guard_v1__:';
const NO_KEY = 'decrypt failed: decrypt failed and best-effort cross-region recovery found no usable key';

interface Row {
  id: string;
  created: string;
  key_record: string;
}

interface KeyRecord {
  Created: number;
  Key: string;
  ParentKeyMeta?: { KeyId: string; Created: number };
  Revoked?: boolean;
}

function readRows(dbPath: string): Row[] {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT id, created, key_record FROM encryption_key ORDER BY id, created').all() as Row[];
  } finally {
    db.close();
  }
}

const keyRows = (rows: Row[]) => rows.filter((row) => row.id.startsWith('_SK_') || row.id.startsWith('_IK_'));

/** SQLite's own rendering of a unix time, as the oracle's INSERT uses it. */
function sqliteDatetime(seconds: number): string {
  const db = new Database(':memory:');
  try {
    return (db.prepare("SELECT datetime(?, 'unixepoch') AS d").get(seconds) as { d: string }).d;
  } finally {
    db.close();
  }
}

/** Asherah's AEAD blob: ciphertext ‖ tag(16) ‖ nonce(12), AES-256-GCM, no AAD. */
function open(blob: Buffer, key: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, blob.subarray(blob.length - 12));
  decipher.setAuthTag(blob.subarray(blob.length - 28, blob.length - 12));
  return Buffer.concat([decipher.update(blob.subarray(0, blob.length - 28)), decipher.final()]);
}

const hexKey = (byte: number) => Buffer.alloc(32, byte).toString('hex');

describeOracle('Rust Asherah oracle harness (asherah-linux-x64-gnu)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'oracle-harness-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test(`the installed oracle is ${ORACLE_EXPECTED_VERSION}, whose behaviour oracle.ts records`, () => {
    expect(oracleVersion).toBe(ORACLE_EXPECTED_VERSION);
  });

  describe('records written by one child and read back by another, through a SQLite file', () => {
    const cases = [
      { partition: 'p-empty', data: Buffer.alloc(0) },
      { partition: 'p-large', data: randomBytes(1024 * 1024) },
      { partition: 'p-utf8', data: Buffer.from('héllo wörld — 日本語 🦀 e\u0301 \u0000 end', 'utf8') },
      { partition: 'p-utf8', data: Buffer.from('second record, same partition', 'utf8') },
      { partition: 'tenant<&>x', data: Buffer.from('angle brackets and ampersand', 'utf8') },
    ];
    let dbPath: string;
    let drrs: string[];
    let rowsAfterEncrypt: Row[];
    let decrypted: OracleResult[];
    let startedAt: number;

    beforeAll(() => {
      dbPath = path.join(dir, 'roundtrip.db');
      startedAt = Math.floor(Date.now() / 1000);
      drrs = runOracleOk({
        config: oracleSqliteConfig(dbPath),
        ops: cases.map((c) => encryptOp(c.partition, c.data)),
      }).map(resultDrr);
      rowsAfterEncrypt = readRows(dbPath);
      decrypted = runOracleOk({
        config: oracleSqliteConfig(dbPath),
        ops: cases.map((c, i) => decryptOp(c.partition, drrs[i])),
      });
    });

    test('a second child decrypts every record to the original bytes', () => {
      cases.forEach((c, i) => expect(resultData(decrypted[i]).equals(c.data)).toBe(true));
    });

    test('DRR text has the exact field order, raw <&> in the key id, and minute-truncated IK Created', () => {
      const now = Math.floor(Date.now() / 1000);
      cases.forEach((c, i) => {
        const match = DRR_PATTERN.exec(drrs[i]);
        expect(match).not.toBeNull();
        const [, drkCreated, encryptedDrk, keyId, ikCreated, data] = match!;
        expect(keyId).toBe(`_IK_${c.partition}_service_product`);
        expect(Number(ikCreated) % 60).toBe(0);
        expect(Number(drkCreated)).toBeGreaterThanOrEqual(startedAt);
        expect(Number(drkCreated)).toBeLessThanOrEqual(now);
        expect(Number(drkCreated)).toBeGreaterThanOrEqual(Number(ikCreated));
        expect(Buffer.from(encryptedDrk, 'base64')).toHaveLength(32 + 28);
        expect(Buffer.from(data, 'base64')).toHaveLength(c.data.length + 28);
        expect(JSON.stringify(JSON.parse(drrs[i]))).toBe(drrs[i]);
      });
      expect(drrs[4]).toContain('"KeyId":"_IK_tenant<&>x_service_product"');
    });

    test('the file holds one SK and one IK per partition, created = datetime(Created, unixepoch), records decode', () => {
      const rows = readRows(dbPath);
      const keys = keyRows(rows);
      const others = rows.filter((row) => !keys.includes(row));
      expect(others.map((row) => row.id)).toEqual([expect.stringMatching(new RegExp(`^${GUARD_PREFIX}[A-Za-z0-9_-]+$`))]);
      expect(others[0].created).toBe('2000-01-01 00:00:00');

      const sks = keys.filter((row) => row.id.startsWith('_SK_'));
      const iks = keys.filter((row) => row.id.startsWith('_IK_'));
      expect(sks.map((row) => row.id)).toEqual(['_SK_service_product']);
      expect(iks.map((row) => row.id).sort()).toEqual(
        [...new Set(cases.map((c) => `_IK_${c.partition}_service_product`))].sort(),
      );

      const sk = JSON.parse(sks[0].key_record) as KeyRecord;
      expect(Object.keys(sk)).toEqual(['Created', 'Key']);
      for (const row of keys) {
        const record = JSON.parse(row.key_record) as KeyRecord;
        expect(row.created).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
        expect(row.created).toBe(sqliteDatetime(record.Created));
        expect(record.Created % 60).toBe(0);
        expect(record.Key).toMatch(B64);
        expect(Buffer.from(record.Key, 'base64')).toHaveLength(32 + 28);
        expect(record.Revoked).toBeUndefined();
        if (row.id.startsWith('_IK_')) {
          expect(Object.keys(record)).toEqual(['Created', 'Key', 'ParentKeyMeta']);
          expect(record.ParentKeyMeta).toEqual({ KeyId: '_SK_service_product', Created: sk.Created });
        }
      }
      // Every DRR points at a stored IK (id, Created).
      cases.forEach((c, i) => {
        const meta = (JSON.parse(drrs[i]) as { Key: { ParentKeyMeta: { KeyId: string; Created: number } } }).Key.ParentKeyMeta;
        const ik = iks.find((row) => row.id === meta.KeyId);
        expect(ik && (JSON.parse(ik.key_record) as KeyRecord).Created).toBe(meta.Created);
        expect(c.partition).toBeTruthy();
      });
    });

    test('the rows unwrap with node:crypto alone: test-debug master key → SK → IK → DRK → plaintext', () => {
      const rows = keyRows(readRows(dbPath));
      const record = (id: string) => JSON.parse(rows.find((row) => row.id === id)!.key_record) as KeyRecord;
      const sk = open(Buffer.from(record('_SK_service_product').Key, 'base64'), TEST_DEBUG_STATIC_KEY);
      const drr = JSON.parse(drrs[2]) as { Key: { Key: string }; Data: string };
      const ik = open(Buffer.from(record('_IK_p-utf8_service_product').Key, 'base64'), sk);
      const drk = open(Buffer.from(drr.Key.Key, 'base64'), ik);
      expect(open(Buffer.from(drr.Data, 'base64'), drk).equals(cases[2].data)).toBe(true);
    });

    test('decrypting wrote nothing, and the keys really come from the file (another file cannot decrypt)', () => {
      expect(readRows(dbPath)).toEqual(rowsAfterEncrypt);
      const other = runOracleOk({ config: oracleSqliteConfig(path.join(dir, 'empty.db')), ops: [decryptOp('p-utf8', drrs[2])] });
      expect(other[0].error?.message).toBe(NO_KEY);
    });
  });

  describe('static master keys', () => {
    const k1 = hexKey(0x11);
    const k2 = hexKey(0x22);

    test("kms 'static' uses staticMasterKeyHex; another key cannot decrypt, and each failing op is reported alone", () => {
      const dbPath = path.join(dir, 'static.db');
      const config = oracleSqliteConfig(dbPath, { kms: 'static', staticMasterKeyHex: k1 });
      const drr = resultDrr(runOracleOk({ config, ops: [encryptOp('p1', 'under k1')] })[0]);

      const sk = JSON.parse(keyRows(readRows(dbPath)).find((row) => row.id === '_SK_service_product')!.key_record) as KeyRecord;
      expect(open(Buffer.from(sk.Key, 'base64'), Buffer.from(k1, 'hex'))).toHaveLength(32);
      expect(() => open(Buffer.from(sk.Key, 'base64'), TEST_DEBUG_STATIC_KEY)).toThrow();

      const sameKey = runOracleOk({ config, ops: [decryptOp('p1', drr), decryptOp('p1', '{}'), decryptOp('p1', drr)] });
      expect(resultData(sameKey[0]).toString()).toBe('under k1');
      expect(sameKey[1].error?.message).toMatch(/^invalid DataRowRecord JSON: missing field/);
      expect(resultData(sameKey[2]).toString()).toBe('under k1');

      // test-debug-static honours staticMasterKeyHex as an override.
      const override = runOracleOk({ config: { ...config, kms: 'test-debug-static' }, ops: [decryptOp('p1', drr)] });
      expect(resultData(override[0]).toString()).toBe('under k1');

      // The drift guard records only kind "static", so another key starts, then fails per op.
      const rowsBefore = readRows(dbPath);
      for (const wrong of [{ kms: 'static' as const, staticMasterKeyHex: k2 }, { kms: 'test-debug-static' as const }]) {
        const results = runOracleOk(
          {
            config: oracleSqliteConfig(dbPath, wrong),
            ops: [decryptOp('p1', drr), encryptOp('p1', 'x'), encryptOp('p-new', 'x')],
          },
          { env: ORACLE_NO_SELF_HEAL },
        );
        expect(results.map((r) => r.error?.message)).toEqual([
          NO_KEY,
          'encrypt failed: encrypt: failed to get or create intermediate key',
          'encrypt failed: encrypt: failed to get or create intermediate key',
        ]);
        expect(results[0].logs?.join('\n')).toMatch(/StaticKMS decrypt_key failed/);
      }
      expect(readRows(dbPath)).toEqual(rowsBefore);
    });

    test("kms 'static' without a key, or with a short one, is a setup failure (ok: false), not a throw", () => {
      const config = oracleSqliteConfig(path.join(dir, 'static-missing.db'), { kms: 'static' });
      const missing = runOracle({ config, ops: [encryptOp('p1', 'x')] });
      expect(missing).toMatchObject({
        ok: false,
        error: { message: 'setup failed: StaticMasterKeyHex is required when KMS=static', code: 'GenericFailure' },
      });
      expect(missing.error?.stack).toContain('oracle-child.js');
      // The env var is not a substitute for the config field.
      expect(runOracle({ config, ops: [] }, { env: { STATIC_MASTER_KEY_HEX: k1 } }).ok).toBe(false);
      expect(runOracle({ config: { ...config, staticMasterKeyHex: 'abcd' }, ops: [] }).error?.message).toBe(
        'setup failed: invalid key size 2, must be 32 bytes',
      );
    });
  });

  describe('tampered and foreign DRRs', () => {
    let dbPath: string;
    let drr: string;
    beforeAll(() => {
      dbPath = path.join(dir, 'tamper.db');
      drr = resultDrr(runOracleOk({ config: oracleSqliteConfig(dbPath), ops: [encryptOp('p1', 'secret')] })[0]);
    });

    const mutate = (edit: (record: { Key: { Key: string; ParentKeyMeta: { KeyId: string; Created: number } }; Data: string }) => void) => {
      const record = JSON.parse(drr);
      edit(record);
      return JSON.stringify(record);
    };
    const flipByte = (b64: string, fromEnd: number) => {
      const bytes = Buffer.from(b64, 'base64');
      bytes[bytes.length - fromEnd] ^= 1;
      return bytes.toString('base64');
    };

    test('every failure is captured per op with a short sanitized message; the inner reason is in the op logs', () => {
      const before = readRows(dbPath);
      const results = runOracleOk({
        config: oracleSqliteConfig(dbPath),
        ops: [
          decryptOp('p1', mutate((r) => (r.Data = flipByte(r.Data, 20)))), // tag byte
          decryptOp('p1', mutate((r) => (r.Key.Key = flipByte(r.Key.Key, 40)))), // encrypted DRK
          decryptOp('p1', drr),
          decryptOp('p2', drr), // wrong partition
          decryptOp('p1', ''),
          decryptOp('p1', 'not json'),
          decryptOp('p1', mutate((r) => (r.Data = ''))),
          encryptOp('', 'x'),
          { op: 'bogus', partition: 'p1' } as never,
          { op: 'decrypt', partition: 'p1' } as never,
        ],
      });
      expect(results.map((r) => r.error?.message ?? resultData(r).toString())).toEqual([
        NO_KEY,
        NO_KEY,
        'secret',
        NO_KEY,
        'invalid DataRowRecord JSON: EOF while parsing a value at line 1 column 0',
        'invalid DataRowRecord JSON: expected ident at line 1 column 2',
        NO_KEY, // empty ciphertext
        'encrypt failed: partition id cannot be empty',
        'unknown op "bogus"',
        'op "decrypt": drr must be a string',
      ]);
      expect(results[0].error?.code).toBe('GenericFailure');
      expect(results[0].logs?.join('\n')).toMatch(/decrypt: failed to decrypt data with DRK/);
      expect(results[3].logs?.join('\n')).toMatch(/invalid IK id=_IK_p1_service_product for partition/);
      expect(readRows(dbPath)).toEqual(before);
    });

    test('SURPRISE: a DRR with a wrong IK Created or a foreign KeyId still decrypts, and self-heal writes key rows', () => {
      const shifted = mutate((r) => (r.Key.ParentKeyMeta.Created += 120));
      const foreign = mutate((r) => (r.Key.ParentKeyMeta.KeyId = '_IK_zz_service_product'));
      const ik = keyRows(readRows(dbPath)).find((row) => row.id === '_IK_p1_service_product')!;
      const ikCreated = (JSON.parse(ik.key_record) as KeyRecord).Created;

      const before = readRows(dbPath);
      const quiet = runOracleOk({ config: oracleSqliteConfig(dbPath), ops: [decryptOp('p1', shifted), decryptOp('p1', foreign)] }, { env: ORACLE_NO_SELF_HEAL });
      expect(quiet.map((r) => resultData(r).toString())).toEqual(['secret', 'secret']);
      expect(readRows(dbPath)).toEqual(before);

      const healed = runOracleOk({ config: oracleSqliteConfig(dbPath), ops: [decryptOp('p1', shifted), decryptOp('p1', foreign)] });
      expect(healed.map((r) => resultData(r).toString())).toEqual(['secret', 'secret']);
      expect(healed[0].logs?.join('\n')).toMatch(/SELF-HEAL wrote recovered key copy/);
      const added = keyRows(readRows(dbPath)).filter((row) => !before.some((b) => b.id === row.id && b.created === row.created));
      expect(added.map((row) => [row.id, row.created])).toEqual([
        ['_IK_p1_service_product', sqliteDatetime(ikCreated + 120)], // now the partition's latest IK, from the future
        ['_IK_zz_service_product', sqliteDatetime(ikCreated)], // another partition's id, holding p1's IK
      ]);
      for (const row of added) expect(JSON.parse(row.key_record).Key).toBe(JSON.parse(ik.key_record).Key);
    });
  });

  describe('region suffix', () => {
    test('setup() ignores enableRegionSuffix with SQLite, whatever region is given', () => {
      const dbPath = path.join(dir, 'suffix-setup.db');
      const results = runOracleOk(
        {
          config: oracleSqliteConfig(dbPath, { enableRegionSuffix: true, dynamoDbRegion: 'us-west-2', preferredRegion: 'us-west-2' }),
          ops: [encryptOp('p1', 'x')],
        },
        { env: { AWS_REGION: 'us-west-2', AWS_DEFAULT_REGION: 'us-west-2', REGION_SUFFIX: 'us-west-2' } },
      );
      expect(JSON.parse(resultDrr(results[0])).Key.ParentKeyMeta.KeyId).toBe('_IK_p1_service_product');
      const rows = readRows(dbPath);
      expect(keyRows(rows).map((row) => row.id).sort()).toEqual(['_IK_p1_service_product', '_SK_service_product']);
      const guard = JSON.parse(Buffer.from(JSON.parse(rows.find((r) => r.id.startsWith(GUARD_PREFIX))!.key_record).Key, 'base64').toString());
      expect(guard).toMatchObject({ region_suffix_enabled: false, effective_region_suffix: null });
    });

    test("mode 'env' with REGION_SUFFIX writes suffixed SK/IK ids, read back by a second child", () => {
      const dbPath = path.join(dir, 'suffix-env.db');
      const env = { SQLITE_PATH: dbPath, KMS: 'test-debug-static', REGION_SUFFIX: 'us-west-2', SESSION_CACHE: '0' };
      const drr = resultDrr(runOracleOk({ mode: 'env', env, ops: [encryptOp('p1', 'suffixed')] })[0]);
      expect(JSON.parse(drr).Key.ParentKeyMeta.KeyId).toBe('_IK_p1_service_product_us-west-2');
      expect(keyRows(readRows(dbPath)).map((row) => [row.id, JSON.parse(row.key_record).ParentKeyMeta?.KeyId])).toEqual([
        ['_IK_p1_service_product_us-west-2', '_SK_service_product_us-west-2'],
        ['_SK_service_product_us-west-2', undefined],
      ]);
      const back = runOracleOk({ mode: 'env', env, ops: [decryptOp('p1', drr), { op: 'encryptAsync', partition: 'p1', dataB64: '' }] });
      expect(resultData(back[0]).toString()).toBe('suffixed');
      expect(back[1].error?.message).toBe('op "encryptAsync" is not supported in env mode');

      // The drift guard now records the suffix: an unsuffixed setup() on this file is refused…
      const refused = runOracle({ config: oracleSqliteConfig(dbPath), ops: [] });
      expect(refused.error?.message).toMatch(/^setup failed: config drift guard mismatch detected; startup refused before key writes/);
      // …and, when forced, reads the suffixed record through recovery (same id core), writing nothing.
      const before = readRows(dbPath);
      const forced = runOracleOk({ config: oracleSqliteConfig(dbPath), ops: [decryptOp('p1', drr)] }, { env: { ASHERAH_CONFIG_DRIFT_FORCE_RUN: 'true' } });
      expect(resultData(forced[0]).toString()).toBe('suffixed');
      expect(readRows(dbPath)).toEqual(before);
    });
  });

  describe('the harness itself', () => {
    test('async and string ops interoperate with the sync ones', () => {
      const dbPath = path.join(dir, 'async.db');
      const config = oracleSqliteConfig(dbPath);
      const [a, b] = runOracleOk({
        config,
        ops: [
          { op: 'encryptAsync', partition: 'p1', dataB64: Buffer.from('async').toString('base64') },
          { op: 'encryptString', partition: 'p1', text: 'string ✓' },
        ],
      }).map(resultDrr);
      const back = runOracleOk({
        config,
        ops: [decryptOp('p1', a), { op: 'decryptAsync', partition: 'p1', drr: b }, { op: 'decryptString', partition: 'p1', drr: a }],
      });
      expect(resultData(back[0]).toString()).toBe('async');
      expect(resultData(back[1]).toString()).toBe('string ✓');
      expect(back[2].text).toBe('async');
    });

    test('a child that crashes or prints no JSON throws with its stderr', () => {
      expect(() => runOracle({ config: oracleSqliteConfig(path.join(dir, 'x.db')), ops: [] }, { env: { NODE_OPTIONS: '--require ./no-such-module.js' } })).toThrow(
        /oracle child crashed: status 1[\s\S]*--- stderr ---[\s\S]*no-such-module/,
      );
    });

    test('a malformed request is an ok: false response', () => {
      expect(runOracle({ ops: 'nope' } as never)).toMatchObject({ ok: false, error: { message: 'bad oracle request: ops must be an array' } });
    });
  });
});
