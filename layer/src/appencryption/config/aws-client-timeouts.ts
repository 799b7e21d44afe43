/**
 * Timeouts and attempts of the AWS SDK clients the library builds (fromConfig, fromEnv, setup, kmsClientsFor).
 * The SDK's own default is no timeout at all: an endpoint that accepts the connection and never answers would
 * hold an encrypt until the Lambda times out. A call's worst case is about maxAttempts × requestTimeoutMs, plus
 * the SDK's backoff between attempts (under a second in all).
 */
import { ConfigError } from '../../errors.js';

export interface AwsClientTimeouts {
  /** Milliseconds to open a connection (TCP and TLS). */
  connectionTimeoutMs: number;
  /** Milliseconds for the answer once the request is sent. */
  requestTimeoutMs: number;
  /** Attempts per call, the first included: the SDK retries throttling, server errors and timeouts. */
  maxAttempts: number;
}

export const DEFAULT_KMS_TIMEOUTS: Readonly<AwsClientTimeouts> = Object.freeze({
  connectionTimeoutMs: 1_000,
  requestTimeoutMs: 3_000,
  maxAttempts: 3,
});

/** DynamoDB answers in milliseconds: 3 attempts of 2 s fit the sample function's 10 s with room for KMS. */
export const DEFAULT_DYNAMODB_TIMEOUTS: Readonly<AwsClientTimeouts> = Object.freeze({
  connectionTimeoutMs: 1_000,
  requestTimeoutMs: 2_000,
  maxAttempts: 3,
});

const FIELDS = ['connectionTimeoutMs', 'requestTimeoutMs', 'maxAttempts'] as const;
/** Ten minutes: more than any Lambda invocation, far less than a number that would overflow a timer. */
const MAX_MS = 600_000;

/** What a ConfigError calls each field: `<where>.<field>`, or (for the environment) each its own variable. */
export type TimeoutNames = string | Readonly<Record<(typeof FIELDS)[number], string>>;

/** `given` over `defaults`, each a positive whole number; `where` names the option in the error. */
export function resolveTimeouts(
  given: Partial<AwsClientTimeouts> | undefined,
  defaults: Readonly<AwsClientTimeouts>,
  where: TimeoutNames,
): AwsClientTimeouts {
  if (given === undefined) return { ...defaults };
  const nameOf = (field: string) => (typeof where === 'string' ? `${where}.${field}` : where[field as (typeof FIELDS)[number]]);
  if (given === null || typeof given !== 'object') {
    throw new ConfigError(`${String(where)} must be an object of ${FIELDS.join(', ')}`);
  }
  const fields = readFields(given, String(where));
  for (const key of fields.keys) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      throw new ConfigError(`${String(where)} has an unknown key ${JSON.stringify(key)}; use ${FIELDS.join(', ')}`);
    }
  }
  const resolved = { ...defaults };
  for (const field of FIELDS) {
    const value = fields.values[field];
    if (value === undefined) continue;
    const max = field === 'maxAttempts' ? 10 : MAX_MS;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
      throw new ConfigError(`${nameOf(field)} must be a whole number from 1 to ${max}, got ${describe(value)}`);
    }
    resolved[field] = value;
  }
  return resolved;
}

/** The object's own keys and the three fields, read once; a getter or Proxy trap that throws is a ConfigError. */
function readFields(given: object, where: string): { keys: string[]; values: Partial<Record<(typeof FIELDS)[number], unknown>> } {
  try {
    const record = given as Record<string, unknown>;
    const values: Partial<Record<(typeof FIELDS)[number], unknown>> = {};
    for (const field of FIELDS) values[field] = record[field];
    return { keys: Object.keys(given), values };
  } catch (err) {
    throw new ConfigError(`${where} could not be read (a property getter or Proxy trap threw); pass a plain object`, {
      cause: err,
    });
  }
}

/** The client config that applies them: requestTimeout is an error, not a warning (throwOnRequestTimeout). */
export function clientSettings(timeouts: AwsClientTimeouts) {
  return {
    requestHandler: {
      connectionTimeout: timeouts.connectionTimeoutMs,
      requestTimeout: timeouts.requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
    maxAttempts: timeouts.maxAttempts,
  };
}

/** How a timed-out call's error says what the limits were. */
export function describeTimeouts(timeouts: AwsClientTimeouts): string {
  return (
    `no answer within the request timeout (${timeouts.requestTimeoutMs} ms; connection timeout ` +
    `${timeouts.connectionTimeoutMs} ms; ${timeouts.maxAttempts} attempts)`
  );
}

function describe(value: unknown): string {
  return typeof value === 'number' ? String(value) : typeof value;
}
