/**
 * The local stand-ins for AWS (scripts/local-aws) as a test file or describe block uses them: started in beforeAll,
 * stopped in afterAll. The handles' getters throw if read before beforeAll has run.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createEncryptionKeyTable, startDynalite, TEST_REGION, type LocalDynamoDb, type StartOptions } from '../../scripts/local-aws/dynalite';
import { keyArn, KmsServer } from '../../scripts/local-aws/kms-server';

export interface Dynalite {
  /** The server: its endpoint, and clients for other regions or settings. */
  readonly dynamo: LocalDynamoDb;
  /** The server's default client (dynamo.client()). */
  readonly client: DynamoDBClient;
  /** A fresh table with Asherah's schema, `${prefix}_<n>`, so that a test sees only its own items. */
  newTable(prefix: string): Promise<string>;
}

function started<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is not started yet: use it in a test or a hook, not at collection`);
  return value;
}

// One dynalite per file or describe block, instead of each test file writing the same beforeAll/afterAll pair.
export function useDynalite(options: StartOptions = {}): Dynalite {
  let dynamo: LocalDynamoDb | undefined;
  let client: DynamoDBClient | undefined;
  let tableCount = 0;
  beforeAll(async () => {
    dynamo = await startDynalite(options);
    client = dynamo.client();
  });
  afterAll(async () => {
    await dynamo?.close();
  });
  const handle: Dynalite = {
    get dynamo() {
      return started(dynamo, 'dynalite');
    },
    get client() {
      return started(client, 'dynalite');
    },
    newTable: async (prefix) => {
      const name = `${prefix}_${++tableCount}`;
      await createEncryptionKeyTable(handle.client, name);
      return name;
    },
  };
  return handle;
}

export interface LocalAws {
  /** The one KMS key, in TEST_REGION. */
  readonly arn: string;
  /** dynalite, with the EncryptionKey table. */
  readonly dynamo: LocalDynamoDb;
  readonly kms: KmsServer;
}

// The DynamoDB and KMS that the Lambda-like runtime tests point their functions at, set up the same way in each.
export function useLocalAws(): LocalAws {
  const arn = keyArn(TEST_REGION);
  let dynamo: LocalDynamoDb | undefined;
  let kms: KmsServer | undefined;
  beforeAll(async () => {
    dynamo = await startDynalite();
    kms = await KmsServer.start({ keys: [arn] });
  });
  afterAll(async () => {
    await kms?.close();
    await dynamo?.close();
  });
  return {
    arn,
    get dynamo() {
      return started(dynamo, 'dynalite');
    },
    get kms() {
      return started(kms, 'the KMS server');
    },
  };
}
