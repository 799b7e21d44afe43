// What to tell the operator when a DynamoDB call of DynamoDbMetastore (dynamodb-metastore.ts) fails: the error's
// name, and what to do about it.

/** How to create the table Asherah needs (the create-table example of Asherah's docs, docs/wire-format.md §3.4). */
function createTableHint(tableName: string): string {
  return `${createTableCommand(tableName)}, or point tableName and the client's region at the table that exists`;
}

function createTableCommand(tableName: string): string {
  return (
    'create it with partition key Id (String) and sort key Created (Number), e.g. `aws dynamodb create-table ' +
    `--table-name ${tableName} --attribute-definitions AttributeName=Id,AttributeType=S ` +
    'AttributeName=Created,AttributeType=N --key-schema AttributeName=Id,KeyType=HASH ' +
    'AttributeName=Created,KeyType=RANGE --billing-mode PAY_PER_REQUEST`'
  );
}

/** What to do when the table is keyed otherwise than Asherah's. */
export const KEY_SCHEMA_ADVICE = (tableName: string): string =>
  'Asherah needs partition key Id (String, HASH) and sort key Created (Number, RANGE), and a key schema cannot be ' +
  `changed in place: point tableName at a table keyed that way, or ${createTableCommand(tableName).replace('create it', 'create one')} ` +
  'and copy the items over (each keeps its Id and Created)';

/**
 * DynamoDB's answer to a key that does not fit the table's key schema (missing or extra key attribute, or one of
 * another type). Other ValidationExceptions (an item too large, say) are not a schema problem.
 */
export function isKeySchemaMismatch(err: unknown): boolean {
  return errorName(err) === 'ValidationException' && /key element does not match the schema/i.test(messageOf(err));
}

export function errorName(err: unknown): string | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  // Matched by name, not instanceof: the client the caller injected may come from another copy of the SDK.
  const name = (err as { name?: unknown }).name;
  return typeof name === 'string' ? name : undefined;
}

/** Duck-typed: an error from another realm (a vm context, a test sandbox) is not `instanceof Error` here. */
export function messageOf(err: unknown): string {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : '';
}

const THROTTLED = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'LimitExceededException',
]);
const CREDENTIALS = new Set([
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'MissingAuthenticationTokenException',
  'ExpiredTokenException',
  'ExpiredToken',
  'CredentialsProviderError',
]);
/**
 * Node's network error codes. Matched in the message too: the SDK wraps an error that is not `instanceof Error` in
 * this realm (e.g. under a test runner's sandbox) as "AWS SDK error wrapper for Error: connect ECONNREFUSED …".
 */
const NETWORK_CODE = /\b(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH)\b/;

/** What to do about a DynamoDB failure, by the error's name (or Node's network error code). */
export function advice(err: unknown, name: string, region: string | undefined, tableName: string): string {
  const inRegion = region === undefined ? '' : ` in ${region}`;
  if (name === 'ResourceNotFoundException') return `the table does not exist${inRegion} (or is not ACTIVE yet); ${createTableHint(tableName)}`;
  if (name === 'AccessDeniedException') {
    return (
      'access denied: grant the caller\'s role dynamodb:GetItem, dynamodb:PutItem and dynamodb:Query on the table ' +
      '(and kms:Decrypt on its key if the table is encrypted with a customer managed key)'
    );
  }
  if (THROTTLED.has(name)) {
    return (
      'DynamoDB throttled the requests and the SDK\'s retries (with backoff) did not get through; retry later, raise ' +
      'the table\'s capacity or switch it to on-demand, or raise the client\'s maxAttempts'
    );
  }
  if (CREDENTIALS.has(name)) {
    return (
      'the AWS credentials are missing, invalid or expired; check the credential chain (AWS_ACCESS_KEY_ID, ' +
      'AWS_PROFILE, the Lambda execution role) and that the clock is right'
    );
  }
  if (name === 'ValidationException') {
    return (
      'DynamoDB rejected the request; check that the table\'s key schema is Id (String, HASH) and Created ' +
      `(Number, RANGE), as Asherah requires: ${createTableHint(tableName)}`
    );
  }
  if (name === 'InternalServerError' || name === 'ServiceUnavailable' || name === 'ServiceUnavailableException') {
    return 'DynamoDB failed internally and the SDK\'s retries did not get through; retry later';
  }
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const message = messageOf(err);
  if (
    name === 'TimeoutError' ||
    name === 'RequestTimeout' ||
    (typeof code === 'string' && NETWORK_CODE.test(code)) ||
    NETWORK_CODE.test(message)
  ) {
    return (
      `could not reach DynamoDB${inRegion}; check the endpoint, the network path (a Lambda in a VPC needs a DynamoDB ` +
      'gateway endpoint or a NAT), and the client\'s request timeout'
    );
  }
  return 'see the cause for details';
}
