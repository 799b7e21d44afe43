/**
 * dynalite, a real DynamoDB-protocol server (in memory), for `npm run start:aws-local` and the DynamoDB metastore
 * tests: on 127.0.0.1 with an ephemeral port, with Asherah's EncryptionKey table (docs/wire-format.md §3.4), and SDK v3
 * clients pointed at it with dummy credentials and short timeouts.
 *
 * By default dynalite runs inside the test process. A test that blocks its own event loop while another process
 * uses the table (spawnSync of the Rust oracle or of a script) must pass `{ separateProcess: true }`: dynalite then
 * runs in a child (dynalite-server.js), which dies with the test process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  type DynamoDBClientConfig,
} from '@aws-sdk/client-dynamodb';

export const DEFAULT_TABLE = 'EncryptionKey';
export const TEST_REGION = 'us-west-2';
/** dynalite checks that requests are signed, not by whom. Not frozen: the SDK tags the object it is given. */
const DUMMY_ACCESS_KEY_ID = 'AKIDLOCALTESTONLY';
const DUMMY_SECRET_ACCESS_KEY = 'local-test-secret';
/** The same, for child processes (the Rust oracle reads the standard AWS variables). */
export const DUMMY_CREDENTIALS_ENV: NodeJS.ProcessEnv = Object.freeze({
  AWS_ACCESS_KEY_ID: DUMMY_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY: DUMMY_SECRET_ACCESS_KEY,
  AWS_EC2_METADATA_DISABLED: 'true', // never wait for an instance metadata service that is not there
});

/** A dead local server should fail a test in seconds, not after the SDK's default (no) timeout. */
const REQUEST_TIMEOUT_MS = 5000;
const CONNECTION_TIMEOUT_MS = 1000;

interface DynaliteOptions {
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}
type DynaliteFactory = (options: DynaliteOptions) => Server;

export interface LocalDynamoDb {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  /** A client of this server, destroyed by close(). `region` (default us-west-2) is what regionSuffix: true uses. */
  client(region?: string, config?: DynamoDBClientConfig): DynamoDBClient;
  /** Destroys the clients made by client() and stops the server. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Run dynalite in a child process (see the top of this file). Default false. */
  separateProcess?: boolean;
  /** Tables to create with Asherah's schema. Default [EncryptionKey]. */
  tables?: readonly string[];
}

/** A client of `endpoint` with dummy credentials and short timeouts; the caller destroys it. */
export function localDynamoDbClient(endpoint: string, region = TEST_REGION, config: DynamoDBClientConfig = {}): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region,
    credentials: { accessKeyId: DUMMY_ACCESS_KEY_ID, secretAccessKey: DUMMY_SECRET_ACCESS_KEY },
    requestHandler: { requestTimeout: REQUEST_TIMEOUT_MS, connectionTimeout: CONNECTION_TIMEOUT_MS },
    ...config,
  });
}

export async function startDynalite(options: StartOptions = {}): Promise<LocalDynamoDb> {
  const server = options.separateProcess ? await startChild() : await startInProcess();
  const endpoint = `http://127.0.0.1:${server.port}`;
  const clients: DynamoDBClient[] = [];
  const local: LocalDynamoDb = {
    endpoint,
    client(region = TEST_REGION, config = {}) {
      const client = localDynamoDbClient(endpoint, region, config);
      clients.push(client);
      return client;
    },
    async close() {
      for (const client of clients.splice(0)) client.destroy();
      await server.stop();
    },
  };
  try {
    const admin = local.client();
    for (const table of options.tables ?? [DEFAULT_TABLE]) await createEncryptionKeyTable(admin, table);
  } catch (err) {
    await local.close();
    throw err;
  }
  return local;
}

/**
 * Creates a table with Asherah's DynamoDB schema (docs/wire-format.md §3.4: hash key Id (S), range key Created (N),
 * on-demand capacity) and waits until it is ACTIVE. An existing table is left as it is.
 */
export async function createEncryptionKeyTable(client: DynamoDBClient, tableName = DEFAULT_TABLE, timeoutMs = 60_000): Promise<void> {
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        AttributeDefinitions: [
          { AttributeName: 'Id', AttributeType: 'S' },
          { AttributeName: 'Created', AttributeType: 'N' },
        ],
        KeySchema: [
          { AttributeName: 'Id', KeyType: 'HASH' },
          { AttributeName: 'Created', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
  }
  // dynalite is ACTIVE at once (createTableMs 0); real DynamoDB takes seconds, so back off up to 1 s.
  const deadline = Date.now() + timeoutMs;
  for (let delay = 10; ; delay = Math.min(1000, delay * 2)) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === 'ACTIVE') return;
    if (Date.now() > deadline) throw new Error(`table ${tableName} is still ${Table?.TableStatus} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

interface RunningServer {
  port: number;
  stop(): Promise<void>;
}

async function startInProcess(): Promise<RunningServer> {
  // dynalite ships no type declarations.
  const dynalite = createRequire(__filename)('dynalite') as DynaliteFactory;
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err?: Error) => (err ? reject(err) : resolve()));
        // Idle keep-alive sockets of clients made elsewhere would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

async function startChild(): Promise<RunningServer> {
  const child: ChildProcess = spawn(process.execPath, [path.join(__dirname, 'dynalite-server.js')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const listening = new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('dynalite-server did not start within 10 s')), 10_000);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      const newline = out.indexOf('\n');
      if (newline === -1) return;
      clearTimeout(timer);
      try {
        resolve((JSON.parse(out.slice(0, newline)) as { port: number }).port);
      } catch (err) {
        reject(err as Error);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`dynalite-server exited before listening (code ${code}, signal ${signal})`));
    });
  });
  let port: number;
  try {
    port = await listening;
  } catch (err) {
    child.kill();
    throw err;
  }
  return {
    port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin!.end(); // its cue to exit
        await exited;
      }
    },
  };
}
