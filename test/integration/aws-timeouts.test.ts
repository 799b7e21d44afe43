/**
 * The AWS SDK clients the library builds have timeouts: an endpoint that accepts connections and never answers
 * fails the call with a typed error after the configured attempts, instead of holding it until the Lambda times
 * out. The silent endpoint is a real TCP server on loopback; the clients are the real SDK's.
 */
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { ConfigError, KmsError, MetastoreError, SessionFactory, type AsherahConfig } from '../../layer/src/index';
import { DEFAULT_DYNAMODB_TIMEOUTS, DEFAULT_KMS_TIMEOUTS } from '../../layer/src/appencryption/config/aws-client-timeouts';
import { DUMMY_CREDENTIALS_ENV } from '../../scripts/local-aws/dynalite';
import { keyArn } from '../../scripts/local-aws/kms-server';
import { TEST_DEBUG_STATIC_MASTER_KEY_HEX } from '../../layer/src/appencryption/kms/static-kms';

/** Accepts every connection, reads what comes, answers nothing. Counts the requests (connections) it got. */
async function silentServer() {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('data', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get connections() {
      return connections;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** Runs `test` against a silent server, closed afterwards whatever happens. */
async function withSilentServer(test: (silent: Awaited<ReturnType<typeof silentServer>>) => Promise<void>): Promise<void> {
  const silent = await silentServer();
  try {
    await test(silent);
  } finally {
    await silent.close();
  }
}

const saved = { ...process.env };
beforeAll(() => Object.assign(process.env, DUMMY_CREDENTIALS_ENV));
afterAll(() => {
  process.env = saved;
});

const dynamoConfig = (endpoint: string): AsherahConfig => ({
  ServiceName: 'service',
  ProductID: 'product',
  Metastore: 'dynamodb',
  DynamoDBEndpoint: endpoint,
  DynamoDBRegion: 'us-west-2',
  DynamoDBTableName: 'Keys',
  KMS: 'static',
  StaticMasterKeyHex: TEST_DEBUG_STATIC_MASTER_KEY_HEX,
});

async function failure(factory: SessionFactory): Promise<Error> {
  try {
    return (await factory.getSession('p1').encrypt(Buffer.from('x')).then(
      () => new Error('encrypt succeeded'),
      (err: unknown) => err,
    )) as Error;
  } finally {
    await factory.close();
  }
}

describe('DynamoDB clients built from configuration', () => {
  test('a silent endpoint is a MetastoreError naming the table and the timeouts, after the configured attempts', async () => {
    await withSilentServer(async (silent) => {
    const factory = SessionFactory.fromConfig(dynamoConfig(silent.endpoint), {
      timeouts: { dynamodb: { connectionTimeoutMs: 200, requestTimeoutMs: 300, maxAttempts: 2 } },
    });
    const err = await failure(factory);
    expect(err).toBeInstanceOf(MetastoreError);
    expect(err.message).toMatch(
      /^DynamoDB metastore table "Keys": could not load the latest key record \(Query\) after 2 attempts \(TimeoutError: .*\); no answer within the request timeout \(300 ms; connection timeout 200 ms; 2 attempts\); could not reach DynamoDB in us-west-2/,
    );
    expect(silent.connections).toBe(2);
    });
  });

  test('the environment sets them (ASHERAH_DYNAMODB_REQUEST_TIMEOUT_MS, …_CONNECTION_TIMEOUT_MS, …_MAX_ATTEMPTS)', async () => {
    await withSilentServer(async (silent) => {
    const factory = SessionFactory.fromEnv({
      ...DUMMY_CREDENTIALS_ENV,
      AWS_REGION: 'us-west-2',
      ASHERAH_METASTORE: 'dynamodb',
      ASHERAH_DYNAMODB_ENDPOINT: silent.endpoint,
      ASHERAH_KMS: 'static',
      ASHERAH_STATIC_MASTER_KEY_HEX: TEST_DEBUG_STATIC_MASTER_KEY_HEX,
      ASHERAH_DYNAMODB_REQUEST_TIMEOUT_MS: '250',
      ASHERAH_DYNAMODB_CONNECTION_TIMEOUT_MS: '150',
      ASHERAH_DYNAMODB_MAX_ATTEMPTS: '1',
    });
    const err = await failure(factory);
    expect(err).toBeInstanceOf(MetastoreError);
    expect(err.message).toContain('table "EncryptionKey"');
    expect(err.message).toContain('no answer within the request timeout (250 ms; connection timeout 150 ms; 1 attempts)');
    expect(silent.connections).toBe(1);
    });
  });

  test('without settings the defaults apply (2 s per request, 3 attempts), not the SDK\'s "no timeout"', async () => {
    await withSilentServer(async (silent) => {
    const err = await failure(SessionFactory.fromConfig(dynamoConfig(silent.endpoint)));
    expect(err).toBeInstanceOf(MetastoreError);
    expect(err.message).toContain(
      `no answer within the request timeout (${DEFAULT_DYNAMODB_TIMEOUTS.requestTimeoutMs} ms; connection timeout ` +
        `${DEFAULT_DYNAMODB_TIMEOUTS.connectionTimeoutMs} ms; ${DEFAULT_DYNAMODB_TIMEOUTS.maxAttempts} attempts)`,
    );
    expect(silent.connections).toBe(DEFAULT_DYNAMODB_TIMEOUTS.maxAttempts);
    });
  }, 20_000);

  test('bad timeouts are ConfigErrors that name the option or the variable', () => {
    const config = dynamoConfig('http://127.0.0.1:9');
    expect(() => SessionFactory.fromConfig(config, { timeouts: { dynamodb: { requestTimeoutMs: 0 } } })).toThrow(
      new ConfigError('options.timeouts.dynamodb.requestTimeoutMs must be a whole number from 1 to 600000, got 0'),
    );
    expect(() => SessionFactory.fromConfig(config, { timeouts: { dynamodb: { retries: 2 } as never } })).toThrow(
      /options\.timeouts\.dynamodb has an unknown key "retries"/,
    );
    expect(() => SessionFactory.fromConfig(config, { timeouts: { kms: { maxAttempts: 11 } } })).not.toThrow(); // static KMS
    const env = {
      AWS_REGION: 'us-west-2',
      ASHERAH_METASTORE: 'dynamodb',
      ASHERAH_KMS: 'static',
      ASHERAH_STATIC_MASTER_KEY_HEX: TEST_DEBUG_STATIC_MASTER_KEY_HEX,
    };
    expect(() => SessionFactory.fromEnv({ ...env, ASHERAH_DYNAMODB_MAX_ATTEMPTS: '11' })).toThrow(
      new ConfigError('ASHERAH_DYNAMODB_MAX_ATTEMPTS must be a whole number from 1 to 10, got 11'),
    );
    expect(() => SessionFactory.fromEnv({ ...env, ASHERAH_DYNAMODB_REQUEST_TIMEOUT_MS: '2s' })).toThrow(
      new ConfigError('ASHERAH_DYNAMODB_REQUEST_TIMEOUT_MS must be a whole number, got "2s"'),
    );
  });
});

describe('KMS clients built from configuration', () => {
  test('a silent KMS endpoint fails the call after the configured attempts (ASHERAH_KMS_* timeouts)', async () => {
    await withSilentServer(async (silent) => {
    const factory = SessionFactory.fromEnv({
      ...DUMMY_CREDENTIALS_ENV,
      AWS_REGION: 'us-west-2',
      ASHERAH_METASTORE: 'sqlite',
      ASHERAH_SQLITE_PATH: ':memory:',
      ASHERAH_KMS: 'aws',
      ASHERAH_KMS_KEY_ARN: keyArn('us-west-2'),
      ASHERAH_KMS_ENDPOINT: silent.endpoint,
      ASHERAH_KMS_REQUEST_TIMEOUT_MS: '200',
      ASHERAH_KMS_CONNECTION_TIMEOUT_MS: '100',
      ASHERAH_KMS_MAX_ATTEMPTS: '2',
    });
    const err = await failure(factory);
    expect(err).toBeInstanceOf(KmsError);
    expect(silent.connections).toBe(2);
    });
  });

  test('the KMS defaults are 1 s to connect, 3 s per request, 3 attempts', () => {
    expect(DEFAULT_KMS_TIMEOUTS).toEqual({ connectionTimeoutMs: 1000, requestTimeoutMs: 3000, maxAttempts: 3 });
  });
});
