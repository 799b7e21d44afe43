/** Key-id checks as Session.decrypt makes them, in the shape the tests use. */
import { acceptsIntermediateKeyId, intermediateKeyId } from '../../layer/src/appencryption/key-ids';

/** Whether a session for `partition` may decrypt a record under IK id `id`. */
export function isValidIntermediateKeyId(id: string, partition: string, service: string, product: string, suffix?: string): boolean {
  return acceptsIntermediateKeyId(id, intermediateKeyId(partition, service, product), suffix);
}
