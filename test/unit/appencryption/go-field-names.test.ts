/**
 * Field names are read as Go's encoding/json reads them, by one helper for the records and the AWS KMS envelope:
 * an exact or case-folded match, in the order of the keys, so the last of duplicates wins, exact or not
 * (docs/wire-format.md §3.6). The envelope used to prefer an exact name over a later folded one; Go does not.
 */
import { decodeDataRowRecord, decodeEnvelopeKeyRecord } from '../../../layer/src/index';
import { goFieldReader } from '../../../layer/src/appencryption/go-json';
import { parseEnvelope } from '../../../layer/src/appencryption/kms/aws-kms-envelope';

const b64 = (fill: number, length = 60) => Buffer.alloc(length, fill).toString('base64');

describe("Go's rule for field names", () => {
  test('the last key that names a field wins, whether it matches exactly or by folding', () => {
    const read = goFieldReader(['Key', 'Data']);
    expect(read({ Key: 1, key: 2 })).toEqual({ Key: 2 });
    expect(read({ key: 1, Key: 2 })).toEqual({ Key: 2 });
    expect(read({ KEY: 1, ſ: 0, 'Kſy': 5 })).toEqual({ Key: 1 }); // ſ folds to S: "KSY" names no field
    expect(read({ 'K\u212aEY': 3, ḱey: 4, data: 'd' })).toEqual({ Data: 'd' });
    expect(read({ '\u212aey': 7 })).toEqual({ Key: 7 }); // the Kelvin sign folds to K
  });

  test('a DataRowRecord and an EnvelopeKeyRecord read the last duplicate', () => {
    const key = (fill: number) => ({ Created: 1795858178, Key: b64(fill), ParentKeyMeta: { KeyId: `_IK_p${fill}_s_p`, Created: 1795858140 } });
    const drr = decodeDataRowRecord(`{"Key": ${JSON.stringify(key(1))}, "key": ${JSON.stringify(key(2))}, "Data": "${b64(3, 40)}"}`);
    expect(drr.key.parentKeyMeta?.keyId).toBe('_IK_p2_s_p');
    const ekr = decodeEnvelopeKeyRecord(`{"Created": 1795858140, "Key": "${b64(1)}", "KEY": "${b64(2)}"}`);
    expect(ekr.encryptedKey).toEqual(Buffer.alloc(60, 2));
  });

  test('the AWS KMS envelope reads the last duplicate too, a folded one after an exact one included', () => {
    const text = JSON.stringify({
      encryptedKey: b64(1),
      kmsKeks: [{ region: 'us-west-2', arn: 'arn:a', encryptedKek: b64(4, 32), Region: 'us-east-1' }],
    }).replace('"kmsKeks"', `"EncryptedKey": "${b64(2)}", "kmsKeks"`);
    const envelope = parseEnvelope(Buffer.from(text));
    expect(envelope.encryptedKey).toEqual(Buffer.alloc(60, 2));
    expect(envelope.kmsKeks[0].region).toBe('us-east-1');
  });
});
