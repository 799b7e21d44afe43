import { ConfigError } from '../errors.js';

// Key ids and key timestamps exactly as upstream builds them (asherah-spec §1.2, §1.3; Go partition.go, Java
// Partition.java / SuffixedPartition.java). The parts are concatenated as they are, with no escaping or
// validation of '_', so ids of different partitions can collide (e.g. partition "a_b" + service "c" and partition
// "a" + service "b_c"); that is upstream's format, kept for compatibility.

const SK_PREFIX = '_SK_';
const IK_PREFIX = '_IK_';

/** `_SK_{service}_{product}`, or `_SK_{service}_{product}_{suffix}` with a region suffix. */
export function systemKeyId(service: string, product: string, suffix?: string): string {
  checkNames(service, product);
  const id = `${SK_PREFIX}${service}_${product}`;
  return hasSuffix(suffix) ? `${id}_${suffix}` : id;
}

/** `_IK_{partition}_{service}_{product}`, or `…_{suffix}` with a region suffix. */
export function intermediateKeyId(partition: string, service: string, product: string, suffix?: string): string {
  checkPartition(partition);
  checkNames(service, product);
  const id = `${IK_PREFIX}${partition}_${service}_${product}`;
  return hasSuffix(suffix) ? `${id}_${suffix}` : id;
}

/**
 * Whether a session for this partition may decrypt a record whose ParentKeyMeta.KeyId is `id` (Go
 * `IsValidIntermediateKeyID`, spec §1.2). Without a suffix: only the exact IK id. With a suffix: the exact
 * suffixed id, or any id that starts with the unsuffixed IK id, so that a record written in another region (with
 * that region's suffix) still decrypts. Like upstream, this is a plain string-prefix test.
 */
export function isValidIntermediateKeyId(
  id: string,
  partition: string,
  service: string,
  product: string,
  suffix?: string,
): boolean {
  const unsuffixed = intermediateKeyId(partition, service, product);
  if (!hasSuffix(suffix)) return id === unsuffixed;
  return id === `${unsuffixed}_${suffix}` || id.startsWith(unsuffixed);
}

/**
 * SK and IK Created times are truncated to the minute (CryptoPolicy CreateDatePrecision, spec §1.3), so that
 * racing creators collide on the same (id, created) and only one key is made per minute. DRK times are not.
 */
export function truncateToMinute(epochSeconds: number): number {
  return Math.floor(epochSeconds / 60) * 60;
}

/** Whether `id` is a system or intermediate key id. */
export function isKeyId(id: string): boolean {
  return id.startsWith(SK_PREFIX) || id.startsWith(IK_PREFIX);
}

// Go uses the suffix only when the metastore reports a non-empty one (spec §1.2), so "" means no suffix.
function hasSuffix(suffix: string | undefined): suffix is string {
  return suffix !== undefined && suffix !== '';
}

function checkNames(service: string, product: string): void {
  if (typeof service !== 'string' || service === '') {
    throw new ConfigError('the service name (serviceName, ServiceName in AsherahConfig) must be a non-empty string');
  }
  if (typeof product !== 'string' || product === '') {
    throw new ConfigError('the product id (productId, ProductID in AsherahConfig) must be a non-empty string');
  }
}

// Go's GetSession("") fails with "partition id cannot be empty" (spec §1.2). An empty partition is a caller's
// invalid argument, the same kind of mistake as an empty service name, so it is a ConfigError too. None of the
// record or key errors fits: nothing was decoded and no key was looked up. (The Lambda handler checks its event
// first and reports an EventValidationError, so only direct SDK callers see this one.)
function checkPartition(partition: string): void {
  if (typeof partition !== 'string' || partition === '') {
    throw new ConfigError('partition id cannot be empty; pass the id of the user or account whose data this is');
  }
}
