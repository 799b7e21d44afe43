import { AsherahError } from '../../../layer/src/errors';
import {
  DecryptError,
  EventValidationError,
  InvalidRecordError,
  KeyNotFoundError,
  KmsError,
  MetastoreError,
} from '../../../layer/src/appencryption/errors';

describe('envelope-encryption errors', () => {
  it.each([
    ['InvalidRecordError', InvalidRecordError],
    ['DecryptError', DecryptError],
    ['KeyNotFoundError', KeyNotFoundError],
    ['KmsError', KmsError],
    ['MetastoreError', MetastoreError],
    ['EventValidationError', EventValidationError],
  ] as const)('%s is an AsherahError with a stable name that keeps its cause', (name, ErrorClass) => {
    const cause = new Error('underlying');
    const err = new ErrorClass('what happened; what to do', { cause });
    expect(err).toBeInstanceOf(ErrorClass);
    expect(err).toBeInstanceOf(AsherahError);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe(name);
    expect(err.message).toBe('what happened; what to do');
    expect(err.cause).toBe(cause);
    expect(String(err)).toBe(`${name}: what happened; what to do`);
  });
});
