import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { SecretFactory, type Secret } from '../../../layer/src/index';
import { decrypt, decryptToSecret } from '../../../layer/src/appencryption/aead';
import { intermediateKeyId, systemKeyId } from '../../../layer/src/appencryption/key-ids';
import { isValidIntermediateKeyId } from '../../support/key-ids';
import { decodeDataRowRecord, decodeEnvelopeKeyRecord, type KeyMeta } from '../../../layer/src/appencryption/record-codec';

// Known-answer vectors written by upstream Go Asherah (test/vectors/README.md), decrypted here
// with only the AEAD, the record codec and the key ids: master key → SK → IK → DRK → plaintext.
const VECTORS_DIR = path.resolve(__dirname, '../../vectors');

interface VectorFile {
  schema: string;
  kms: string;
  master_key_hex: string;
  cases: {
    service: string;
    product: string;
    partition: string;
    plaintext_b64: string;
    metastore_rows: { id: string; created: number; key_record: string }[];
    drr: string;
  }[];
}

const files = readdirSync(VECTORS_DIR).filter((name) => name.endsWith('.json'));
const cases = files.flatMap((name) => {
  const file = JSON.parse(readFileSync(path.join(VECTORS_DIR, name), 'utf8')) as VectorFile;
  return file.cases.map((c, i) => ({ label: `${name}#${i}`, file, c }));
});

// best-effort: these tests are about the key hierarchy, and must run on hosts that may lock no memory.
const factory = new SecretFactory({ mlock: 'best-effort' });
afterAll(() => factory.close());

it('finds the vendored vector files (test/vectors)', () => {
  expect(files.length).toBeGreaterThanOrEqual(2);
  expect(cases.length).toBeGreaterThanOrEqual(2);
});

describe.each(cases)('$label', ({ file, c }) => {
  it('decrypts the DRR to the expected plaintext through SK, IK and DRK', () => {
    expect(file.schema).toBe('asherah-oracle-vector/1');
    expect(file.kms).toBe('static');

    const drr = decodeDataRowRecord(c.drr);
    const ikMeta = drr.key.parentKeyMeta!;
    expect(ikMeta.keyId).toBe(intermediateKeyId(c.partition, c.service, c.product));
    expect(isValidIntermediateKeyId(ikMeta.keyId, c.partition, c.service, c.product)).toBe(true);
    expect(isValidIntermediateKeyId(ikMeta.keyId, `${c.partition}x`, c.service, c.product)).toBe(false);

    const load = (meta: KeyMeta) => {
      const row = c.metastore_rows.find((r) => r.id === meta.keyId && r.created === meta.created);
      if (!row) throw new Error(`no metastore row for ${meta.keyId}@${meta.created}`);
      return decodeEnvelopeKeyRecord(row.key_record);
    };
    const ikRecord = load(ikMeta);
    const skMeta = ikRecord.parentKeyMeta!;
    expect(skMeta.keyId).toBe(systemKeyId(c.service, c.product));
    const skRecord = load(skMeta);
    expect(skRecord.parentKeyMeta).toBeUndefined();

    const opened: Secret[] = [];
    try {
      // Static KMS: the SK is AES-GCM under the master key's bytes (docs/wire-format.md §4.2).
      const masterKey = factory.createFrom(Buffer.from(file.master_key_hex, 'hex'));
      opened.push(masterKey);
      const sk = decryptToSecret(skRecord.encryptedKey, masterKey, factory);
      opened.push(sk);
      const ik = decryptToSecret(ikRecord.encryptedKey, sk, factory);
      opened.push(ik);
      const drk = decryptToSecret(drr.key.encryptedKey, ik, factory);
      opened.push(drk);
      for (const key of [sk, ik, drk]) expect(key.length).toBe(32);

      const plaintext = decrypt(drr.data, drk);
      expect(plaintext.toString('base64')).toBe(c.plaintext_b64);
    } finally {
      for (const secret of opened) secret.close();
    }
  });
});
