import { EventValidationError, InvalidRecordError } from '../../layer/src/index';
import { MAX_PAYLOAD_BYTES, parseEvent } from '../../functions/encrypt-decrypt/event';

const drr = {
  Key: {
    Created: 1795858178,
    Key: 'Zd2W6/qAzq0leqSznlb6KaV4FsP7771Mkp5L3rHXysYks2ehUicj6kCsxQ/ntBFWGQIs24R8dS+y/W+l',
    ParentKeyMeta: { KeyId: '_IK_partition_service_product', Created: 1795858140 },
  },
  Data: '5FLqWnVF+Ev5es/r+eR8o1Vgv1BcLn5q0wvfv6hUV8vyRAf2M/4I0uepzv8G02Sh',
};

describe('event checks', () => {
  test('the Go sample\'s encrypt and decrypt events are accepted', () => {
    expect(parseEvent({ Name: 'n', Partition: 'p', Payload: 'aGk=' })).toEqual({
      kind: 'encrypt',
      name: 'n',
      partition: 'p',
      payload: Buffer.from('hi'),
    });
    const decrypt = parseEvent({ Partition: 'p', DRR: drr });
    expect(decrypt.kind).toBe('decrypt');
  });

  test.each([
    [null, /must be a JSON object/],
    [[1], /must be a JSON object/],
    [{ Payload: 'aGk=' }, /Partition must be a non-empty string/],
    [{ Partition: '', Payload: 'aGk=' }, /Partition must be a non-empty string/],
    [{ Partition: 7, Payload: 'aGk=' }, /Partition must be a non-empty string/],
    [{ Partition: 'x'.repeat(1025), Payload: 'aGk=' }, /Partition is 1025 bytes as UTF-8; the limit is 1024/],
    [{ Partition: 'é'.repeat(513), Payload: 'aGk=' }, /Partition is 1026 bytes as UTF-8; the limit is 1024/],
    [{ Partition: '中'.repeat(342), Payload: 'aGk=' }, /Partition is 1026 bytes as UTF-8; the limit is 1024/],
    [{ Partition: 'p' }, /must contain a Payload \(for encryption\) or a DRR \(for decryption\)/],
    [{ Partition: 'p', Payload: 'aGk=', DRR: drr }, /both Payload and DRR/],
    [{ Partition: 'p', Payload: 'not base64!' }, /Payload must be standard base64/],
    [{ Partition: 'p', Payload: 'aGk' }, /Payload must be standard base64/],
    [{ Partition: 'p', Payload: 42 }, /Payload must be standard base64/],
    [{ Partition: 'p', DRR: 'text' }, /DRR must be the DataRowRecord object/],
    [{ Partition: 'p', Payload: 'aGk=', Name: 5 }, /Name, when present, must be a string/],
  ])('%j is an EventValidationError that says what is wrong', (event, message) => {
    expect(() => parseEvent(event)).toThrow(EventValidationError);
    expect(() => parseEvent(event)).toThrow(message);
  });

  test('a payload over what fits the synchronous invoke limit is refused with the limit in the message', () => {
    const big = Buffer.alloc(MAX_PAYLOAD_BYTES + 1).toString('base64');
    expect(() => parseEvent({ Partition: 'p', Payload: big })).toThrow(/the largest that fits Lambda's 6291456-byte/);
    expect(parseEvent({ Partition: 'p', Payload: Buffer.alloc(MAX_PAYLOAD_BYTES).toString('base64') }).kind).toBe('encrypt');
  });

  test('a malformed DRR is an InvalidRecordError naming the field', () => {
    expect(() => parseEvent({ Partition: 'p', DRR: { ...drr, Data: 5 } })).toThrow(InvalidRecordError);
    expect(() => parseEvent({ Partition: 'p', DRR: { Data: drr.Data } })).toThrow(/Key/);
  });
});
