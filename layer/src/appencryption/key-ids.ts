import { ConfigError } from '../errors.js';

// Key ids and key timestamps as upstream builds them (docs/partitions.md; Go partition.go, Java Partition.java /
// SuffixedPartition.java): `_SK_{service}_{product}[_{suffix}]` and `_IK_{partition}_{service}_{product}[_{suffix}]`,
// the parts joined with '_' and never escaped. Upstream accepts any names, so ids of different tuples can be the
// same string: service "billing" + partition "acme_eu" and service "eu_billing" + partition "acme" both make
// `_IK_acme_eu_billing_prod`, one metastore row for two tenants. We keep the format (records stay readable by every
// implementation) and refuse the names that make it ambiguous instead:
//   - service and product contain no '_';
//   - a region suffix is an AWS region name (us-west-2, us-gov-east-1, ...), so it contains no '_' either;
//   - a product is not shaped like a region name.
// Then an id parses one way only, from the right: if its last part is region-shaped it is the suffix (no product
// can be), the two parts before it are product and service, and what remains is the partition, which may hold
// any character. Deployments whose records already use other names opt in with `legacyKeyIdNames` and keep
// upstream's behaviour, collisions included.

const SK_PREFIX = '_SK_';
const IK_PREFIX = '_IK_';

/**
 * An AWS region name: two letters, hyphen-joined words, a number (us-west-2, us-gov-east-1, eu-isoe-west-1); the
 * European Sovereign Cloud's (eusc-de-east-1); or a partition's global pseudo-region (aws-global,
 * aws-us-gov-global). key-ids.test.ts checks it against every region of the AWS SDK's partitions table.
 */
const REGION_NAME = /^(?:[a-z]{2}(?:-[a-z]+)+-[0-9]+|eusc(?:-[a-z]+)+-[0-9]+|aws(?:-[a-z]+)*-global)$/;

/** Whether `text` is well-formed Unicode (no unpaired surrogate), so JSON and UTF-8 carry it unchanged. */
export function isWellFormed(text: string): boolean {
  return text.isWellFormed();
}

/** Whether `name` has the shape of an AWS region name. */
export function isRegionName(name: string): boolean {
  return REGION_NAME.test(name);
}

/**
 * The longest key id, in UTF-8 bytes: DynamoDB's limit for a partition key (Id), the tightest of the metastores,
 * so that a key made anywhere can be stored in any of them.
 */
export const MAX_KEY_ID_BYTES = 2048;

/** `_SK_{service}_{product}`, or `_SK_{service}_{product}_{suffix}` with a region suffix. */
export function systemKeyId(service: string, product: string, suffix?: string): string {
  checkNonEmpty(service, product);
  const unsuffixed = `${SK_PREFIX}${service}_${product}`;
  const id = hasSuffix(suffix) ? `${unsuffixed}_${suffix}` : unsuffixed;
  const bytes = bytesOverLimit(id);
  if (bytes !== undefined) {
    throw new ConfigError(
      `the service and product names make a system key id of ${bytes} bytes as UTF-8, over the ` +
        `${MAX_KEY_ID_BYTES}-byte limit of key ids (DynamoDB's partition-key limit); use shorter names`,
    );
  }
  return id;
}

/** The UTF-8 bytes of a key id over MAX_KEY_ID_BYTES, else undefined (a short id is not measured: 3 bytes a unit at most). */
function bytesOverLimit(id: string): number | undefined {
  if (id.length <= MAX_KEY_ID_BYTES / 3) return undefined;
  const bytes = Buffer.byteLength(id, 'utf8');
  return bytes > MAX_KEY_ID_BYTES ? bytes : undefined;
}

/** `_IK_{partition}_{service}_{product}`, or `…_{suffix}` with a region suffix. */
export function intermediateKeyId(partition: string, service: string, product: string, suffix?: string): string {
  checkPartition(partition);
  checkNonEmpty(service, product);
  const unsuffixed = `${IK_PREFIX}${partition}_${service}_${product}`;
  const id = hasSuffix(suffix) ? `${unsuffixed}_${suffix}` : unsuffixed;
  // Checked before any I/O: a metastore would refuse the id only when the key is stored, as a server fault.
  const bytes = bytesOverLimit(id);
  if (bytes !== undefined) {
    const partitionBytes = Buffer.byteLength(partition, 'utf8');
    throw new ConfigError(
      `partition id is too long: it is ${partitionBytes} bytes as UTF-8 and makes an intermediate key id of ${bytes} ` +
        `bytes, over the ${MAX_KEY_ID_BYTES}-byte limit of key ids (DynamoDB's partition-key limit), so with these ` +
        `service and product names a partition id can have at most ${partitionBytes - (bytes - MAX_KEY_ID_BYTES)} ` +
        'bytes; use a shorter id (e.g. a hash of a long one)',
    );
  }
  return id;
}

/**
 * Whether a session may decrypt a record whose ParentKeyMeta.KeyId is `id`, given its partition's unsuffixed IK
 * id (sessions build it once): that id exactly; with a region suffix also that id followed by `_` and one region
 * name, so that the partition's records written in other regions still decrypt. Upstream (Go `IsValidIntermediateKeyID`,
 * Java `startsWith`) accepts any id that starts with the unsuffixed one, which lets partition `alice` read
 * partition `alice_svc_prod_x`'s records; we do not.
 */
export function acceptsIntermediateKeyId(id: string, unsuffixed: string, suffix: string | undefined): boolean {
  if (id === unsuffixed) return true;
  if (!hasSuffix(suffix)) return false;
  if (id.length <= unsuffixed.length + 1 || !id.startsWith(unsuffixed) || id[unsuffixed.length] !== '_') return false;
  const tail = id.slice(unsuffixed.length + 1);
  // The session's own suffix is accepted whatever its shape (a legacy deployment may use any suffix).
  return tail === suffix || isRegionName(tail);
}

/** Where a name came from, for the error message. */
export interface NameSource {
  service: string;
  product: string;
  suffix: string;
  optIn: string;
}

const SDK_NAMES: NameSource = {
  service: 'the service name (serviceName, ServiceName in AsherahConfig)',
  product: 'the product id (productId, ProductID in AsherahConfig)',
  suffix: 'the region suffix (the metastore\'s regionSuffix)',
  optIn: 'legacyKeyIdNames: true (LegacyKeyIdNames in AsherahConfig)',
};

/**
 * Refuses a service, product or region suffix that would make key ids ambiguous (see the top of this file), with a
 * ConfigError that explains the collision. `legacy` skips the rule (the documented opt-in); empty names are
 * refused either way.
 */
export function checkKeyIdNames(
  service: string,
  product: string,
  suffix: string | undefined,
  legacy: boolean,
  names: NameSource = SDK_NAMES,
): void {
  checkNonEmpty(service, product, names);
  if (legacy) return;
  const fix = `; existing deployments whose records already use such names can set ${names.optIn} (see docs/partitions.md)`;
  if (service.includes('_')) {
    throw new ConfigError(
      `${names.service} ${JSON.stringify(service)} contains "_": key ids join names with "_", so another service ` +
        'could share this service\'s intermediate keys (service "billing" with partition "acme_eu" and service ' +
        '"eu_billing" with partition "acme" both make _IK_acme_eu_billing_<product>) and read its records; use "-" ' +
        `instead${fix}`,
    );
  }
  if (product.includes('_')) {
    throw new ConfigError(
      `${names.product} ${JSON.stringify(product)} contains "_": key ids join names with "_", so the ids of ` +
        `another service or partition could be the same string and share its keys; use "-" instead${fix}`,
    );
  }
  if (isRegionName(product)) {
    throw new ConfigError(
      `${names.product} ${JSON.stringify(product)} has the shape of an AWS region name, which key ids reserve for ` +
        'the region suffix (_IK_x_a_b_us-west-2 would be both partition "x_a" of product "us-west-2" and partition ' +
        `"x" of product "b" in us-west-2); choose another product id${fix}`,
    );
  }
  checkRegionSuffix(suffix, false, names);
}

/** Refuses a region suffix that is not an AWS region name (unless `legacy`); see checkKeyIdNames. */
export function checkRegionSuffix(
  suffix: string | undefined,
  legacy: boolean,
  names: Pick<NameSource, 'suffix' | 'optIn'> = SDK_NAMES,
): void {
  if (legacy || !hasSuffix(suffix) || isRegionName(suffix)) return;
  throw new ConfigError(
    `${names.suffix} ${JSON.stringify(suffix)} is not an AWS region name (like us-west-2): a suffix of another ` +
      'shape could be read as part of another partition\'s key id; use the region of the DynamoDB table; ' +
      `existing deployments whose records already use this suffix can set ${names.optIn} (see docs/partitions.md)`,
  );
}

// Go uses the suffix only when the metastore reports a non-empty one (docs/wire-format.md §1.2), so "" means no
// suffix.
function hasSuffix(suffix: string | undefined): suffix is string {
  return suffix !== undefined && suffix !== '';
}

function checkNonEmpty(service: string, product: string, names: NameSource = SDK_NAMES): void {
  if (typeof service !== 'string' || service === '') {
    throw new ConfigError(`${names.service} must be a non-empty string`);
  }
  if (typeof product !== 'string' || product === '') {
    throw new ConfigError(`${names.product} must be a non-empty string`);
  }
}

// Go's GetSession("") fails with "partition id cannot be empty" (docs/wire-format.md §1.2). An empty partition is a
// caller's invalid argument, the same kind of mistake as an empty service name, so it is a ConfigError too. None of
// the record or key errors fits: nothing was decoded and no key was looked up. (The Lambda handler checks its event
// first and reports an EventValidationError, so only direct SDK callers see this one.)
function checkPartition(partition: string): void {
  if (typeof partition !== 'string' || partition === '') {
    throw new ConfigError('partition id cannot be empty; pass the id of the user or account whose data this is');
  }
  // A lone surrogate becomes U+FFFD when the DRR's KeyId goes through JSON (or UTF-8), so such a partition could
  // encrypt records that it can never decrypt.
  if (!isWellFormed(partition)) {
    throw new ConfigError(
      'partition id must be well-formed Unicode (it holds an unpaired surrogate, which JSON and UTF-8 cannot carry, ' +
        'so its records could never be decrypted); pass the id as the text it is',
    );
  }
}
