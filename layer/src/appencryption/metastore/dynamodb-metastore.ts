import { createRequire } from 'node:module';
import * as path from 'node:path';
// Types only: erased from the output, so loading this file never loads the SDK (see loadSdk).
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ConfigError } from '../../errors.js';
import { describeTimeouts, type AwsClientTimeouts } from '../config/aws-client-timeouts.js';
import { InvalidRecordError, MetastoreError } from '../errors.js';
import { checkRegionSuffix } from '../key-ids.js';
import type { Metastore } from '../ports.js';
import { decodeEnvelopeKeyRecord, type EnvelopeKeyRecord } from '../record-codec.js';
import { advice, errorName, isKeySchemaMismatch, KEY_SCHEMA_ADVICE, messageOf } from './dynamodb-advice.js';
import { attributeType, checkCreated, describeItem, encodeKeyRecord, mapToPlain, type Item } from './dynamodb-item.js';

// Asherah's DynamoDB metastore, item for item (docs/wire-format.md §3.4; Go plugins/aws-v2/dynamodb/metastore;
// Java DynamoDbMetastoreImpl; the Rust binding's metastore_dynamodb.rs), so that every implementation can share
// one table:
//   table  EncryptionKey (default), hash key Id (S), range key Created (N, Unix seconds)
//   item   {Id: S, Created: N, KeyRecord: M{Revoked?: BOOL, Created: N, Key: S, ParentKeyMeta?: M{KeyId: S, Created: N}}}
// We write what Go writes: Key as padded standard base64, Revoked only when true (Go `omitempty`), ParentKeyMeta
// only for IKs. We read what Go, Java and Rust write: Java's explicit `Revoked: false` (docs/wire-format.md §10), a
// NULL Revoked (read as false, as Go does), and KeyRecord field names in any case (the record codec's rules,
// docs/wire-format.md §3.6).
// Before its first write, a metastore checks that the table's key schema is exactly that (a GetItem by the full
// key): on a table keyed by Id alone, PutItem would succeed and every GetItem fail, so records would be readable
// only from the writer's cache, and no key could ever rotate (the conditional put fails on the existing Id).
// Numbers must be N attributes holding integers; an S "Created" is rejected, as the Rust binding rejects it. The item
// encoding is in dynamodb-item.ts, the advice a failed call's MetastoreError carries in dynamodb-advice.ts.
//
// An item is handed out only if its Created range key equals its KeyRecord's Created, the one key under which
// load() finds it: a writer names the KeyRecord's Created in every record it encrypts, so an item re-keyed under
// another Created (an edited or copied item) would yield records that no other process, nor the writer after a
// restart, can read. load() and loadLatest() refuse such an item with a MetastoreError, and store() refuses to
// write one. Go, Java and Rust do not check this.
//
// The SDK is not a dependency of the layer (the Lambda runtime provides it; docs/using-the-layer.md), and the layer's public
// index imports this file, so the SDK is required only when a DynamoDbMetastore is constructed. The caller
// injects the DynamoDBClient (credentials, region, endpoint, retries, timeouts are theirs to configure); we use
// the command classes of whichever @aws-sdk/client-dynamodb resolves from here.

const SDK_PACKAGE = '@aws-sdk/client-dynamodb';
const DEFAULT_TABLE_NAME = 'EncryptionKey';
/** DynamoDB's rule for table names. */
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;

const SUFFIX_NAMES = {
  suffix: 'DynamoDbMetastore regionSuffix',
  optIn: 'legacyKeyIdNames: true in the DynamoDbMetastore options (LegacyKeyIdNames in AsherahConfig)',
};

type DynamoDbSdk = Pick<typeof import('@aws-sdk/client-dynamodb'), 'GetItemCommand' | 'PutItemCommand' | 'QueryCommand'>;

export interface DynamoDbMetastoreOptions {
  /** Default `EncryptionKey`, as in every Asherah implementation; '' also means the default (as Go and Rust). */
  tableName?: string;
  /**
   * Region-suffixed key ids for DynamoDB global tables (docs/wire-format.md §1.2): `_SK_svc_prod_<suffix>`,
   * `_IK_p_svc_prod_<suffix>`. A string is the suffix itself. `true` is the DynamoDB client's region, as Go's
   * `WithRegionSuffix(true)` (v2) does; resolving it is asynchronous, so `true` needs `DynamoDbMetastore.create`.
   */
  regionSuffix?: boolean | string;
  /** Accept a suffix that is not an AWS region name (docs/partitions.md); only for existing deployments. */
  legacyKeyIdNames?: boolean;
  /** The timeouts the client was built with (fromConfig passes its own), named in the error of a timed-out call. */
  clientTimeouts?: AwsClientTimeouts;
}

export class DynamoDbMetastore implements Metastore {
  readonly tableName: string;
  private readonly suffix: string | undefined;
  private readonly sdk: DynamoDbSdk;
  private readonly clientTimeouts: AwsClientTimeouts | undefined;
  /** Settles once the table's key schema was found to be Asherah's; checked before the first write. */
  private schemaChecked: Promise<void> | undefined;

  /**
   * Builds the metastore, resolving `regionSuffix: true` to the client's region first (the SessionFactory reads
   * `regionSuffix()` synchronously when it is created, so the region must be known by then). Works for every
   * option; use it whenever options come from configuration.
   */
  static async create(client: DynamoDBClient, options: DynamoDbMetastoreOptions = {}): Promise<DynamoDbMetastore> {
    if (options?.regionSuffix !== true) return new DynamoDbMetastore(client, options);
    checkClient(client);
    let region: unknown;
    try {
      region = await client.config.region();
    } catch (err) {
      throw new ConfigError(
        'DynamoDbMetastore regionSuffix: true uses the DynamoDB client\'s region, but the client has none; set ' +
          '`region` on the DynamoDBClient (or AWS_REGION), or pass the suffix as a string',
        { cause: err },
      );
    }
    if (typeof region !== 'string' || region === '') {
      throw new ConfigError(
        'DynamoDbMetastore regionSuffix: true uses the DynamoDB client\'s region, but it resolved to an empty value; ' +
          'set `region` on the DynamoDBClient, or pass the suffix as a string',
      );
    }
    return new DynamoDbMetastore(client, { ...options, regionSuffix: region });
  }

  /**
   * For `regionSuffix` false, absent or a string. `regionSuffix: true` is a ConfigError here: use
   * `await DynamoDbMetastore.create(client, options)`, which resolves the client's region once, so that no
   * metastore ever exists whose key ids are not settled yet.
   */
  constructor(
    private readonly client: DynamoDBClient,
    options: DynamoDbMetastoreOptions = {},
  ) {
    checkClient(client);
    if (options === null || typeof options !== 'object') throw new ConfigError('DynamoDbMetastore options must be an object');
    const { tableName, regionSuffix } = options;
    if (tableName !== undefined && (typeof tableName !== 'string' || (tableName !== '' && !TABLE_NAME.test(tableName)))) {
      throw new ConfigError(
        'DynamoDbMetastore tableName must be a DynamoDB table name: 3 to 255 letters, digits, "_", "-" or "."',
      );
    }
    this.tableName = tableName === undefined || tableName === '' ? DEFAULT_TABLE_NAME : tableName;
    if (regionSuffix === true) {
      throw new ConfigError(
        'DynamoDbMetastore regionSuffix: true needs the client\'s region, which is resolved asynchronously; build ' +
          'the metastore with `await DynamoDbMetastore.create(client, options)` instead of `new`',
      );
    }
    if (regionSuffix !== undefined && regionSuffix !== false && (typeof regionSuffix !== 'string' || regionSuffix === '')) {
      throw new ConfigError(
        'DynamoDbMetastore regionSuffix must be true (the client\'s region), false, or a non-empty region name',
      );
    }
    this.suffix = typeof regionSuffix === 'string' ? regionSuffix : undefined;
    checkRegionSuffix(this.suffix, options.legacyKeyIdNames === true, SUFFIX_NAMES);
    this.clientTimeouts = options.clientTimeouts;
    this.sdk = loadSdk();
  }

  async load(id: string, created: number): Promise<EnvelopeKeyRecord | undefined> {
    const command = new this.sdk.GetItemCommand({
      TableName: this.tableName,
      Key: { Id: { S: id }, Created: { N: checkCreated(created) } },
      ProjectionExpression: 'KeyRecord',
      ConsistentRead: true, // a key just stored by another process must be visible (docs/wire-format.md §3.4)
    });
    let item: Item | undefined;
    try {
      item = (await this.client.send(command)).Item;
    } catch (err) {
      throw await this.failure('load a key record (GetItem)', err);
    }
    if (item === undefined) return undefined;
    const record = this.decode(item, id);
    // GetItem matched the range key, so it is `created`.
    if (record.created !== created) throw this.mismatch(id, String(created), record.created);
    return record;
  }

  async loadLatest(id: string): Promise<EnvelopeKeyRecord | undefined> {
    const command = new this.sdk.QueryCommand({
      TableName: this.tableName,
      KeyConditionExpression: 'Id = :id',
      ExpressionAttributeValues: { ':id': { S: id } },
      // The range key too, to check the item against its KeyRecord. By name: a literal would risk a reserved word.
      ProjectionExpression: '#created, KeyRecord',
      ExpressionAttributeNames: { '#created': 'Created' },
      ScanIndexForward: false, // newest Created first
      Limit: 1,
      ConsistentRead: true,
    });
    let item: Item | undefined;
    try {
      item = (await this.client.send(command)).Items?.[0];
    } catch (err) {
      throw await this.failure('load the latest key record (Query)', err);
    }
    if (item === undefined) return undefined;
    const record = this.decode(item, id);
    // DynamoDB returns numbers normalized (no exponent, no leading or trailing zeros), so the range key equals the
    // KeyRecord's Created exactly when it is the same decimal text: the key load(id, record.created) looks up.
    const rangeKey = item.Created?.N;
    if (rangeKey !== String(record.created)) throw this.mismatch(id, rangeKey, record.created);
    return record;
  }

  async store(id: string, created: number, record: EnvelopeKeyRecord): Promise<boolean> {
    const rangeKey = checkCreated(created);
    const keyRecord = encodeKeyRecord(record);
    if (record.created !== created) {
      throw new MetastoreError(
        `DynamoDB metastore table "${this.tableName}": cannot store ${describeItem(id)}: the record's Created ` +
          'differs from the Created it is stored under, so no load() by its own Created could find it; store ' +
          'each key record under its own Created (this is a bug in the caller)',
      );
    }
    await this.checkSchema(id, rangeKey);
    const command = new this.sdk.PutItemCommand({
      TableName: this.tableName,
      Item: { Id: { S: id }, Created: { N: rangeKey }, KeyRecord: { M: keyRecord } },
      // The primary key (Id, Created) arbitrates between racing creators in any process or region writer
      // (docs/wire-format.md §1.5): attribute_not_exists(Id) fails iff an item with this Id AND Created exists.
      // One PutItem, so an item is either written whole or not at all.
      ConditionExpression: 'attribute_not_exists(Id)',
    });
    try {
      await this.client.send(command);
      return true;
    } catch (err) {
      // Only a real duplicate is `false`, as in Java and Rust (docs/wire-format.md §1.5). Go's tryStore treats every
      // error as a duplicate, which turns an outage into a confusing "not present after retry"; a MetastoreError
      // says why.
      if (errorName(err) === 'ConditionalCheckFailedException') return false;
      throw await this.failure('store a key record (PutItem)', err);
    }
  }

  /** Resolves once the table is known to be keyed as Asherah's is; a MetastoreError (and nothing written) if not. */
  private checkSchema(id: string, rangeKey: string): Promise<void> {
    this.schemaChecked ??= this.probeSchema(id, rangeKey).catch((err: unknown) => {
      // Not remembered: the next write checks again (the table may have been fixed, or the network was down).
      this.schemaChecked = undefined;
      throw err;
    });
    return this.schemaChecked;
  }

  /**
   * A GetItem by the full key (Id: S, Created: N) needs no permission beyond the metastore's own, succeeds on
   * Asherah's table whatever it holds, and is a ValidationException on a table keyed any other way.
   */
  private async probeSchema(id: string, rangeKey: string): Promise<void> {
    try {
      await this.client.send(
        new this.sdk.GetItemCommand({
          TableName: this.tableName,
          Key: { Id: { S: id }, Created: { N: rangeKey } },
          ProjectionExpression: 'Id',
        }),
      );
    } catch (err) {
      throw await this.failure("check the table's key schema before the first write (GetItem)", err);
    }
  }

  /** The suffix appended to key ids, or undefined for none (docs/wire-format.md §1.2). */
  regionSuffix(): string | undefined {
    return this.suffix;
  }

  /**
   * Decodes an item's KeyRecord map with the record codec's rules. The message names the table and the key id (ids
   * are not secret, and this one comes from the caller, not from the corrupt item, which is never quoted).
   */
  private decode(item: Item, id: string): EnvelopeKeyRecord {
    // The kind of row, not its id: an IK id holds a partition id, which may identify a user (errors.ts).
    const where = `DynamoDB metastore table "${this.tableName}": the KeyRecord of ${describeItem(id)}`;
    const keyRecord = item.KeyRecord;
    if (keyRecord?.M === undefined) {
      throw new InvalidRecordError(
        `${where} is ${keyRecord === undefined ? 'missing' : `an attribute of type ${attributeType(keyRecord)}`}, not a map (M); ` +
          'the item is corrupt or was not written by Asherah',
      );
    }
    try {
      return decodeEnvelopeKeyRecord(mapToPlain(keyRecord.M));
    } catch (err) {
      if (err instanceof InvalidRecordError) throw new InvalidRecordError(`${where}: ${err.message}`, { cause: err });
      throw err;
    }
  }

  /**
   * The MetastoreError for an item whose range key is not its KeyRecord's Created. It says how far apart they are,
   * not either timestamp (errors.ts).
   */
  private mismatch(id: string, rangeKey: string | undefined, recordCreated: number): MetastoreError {
    const seconds = rangeKey !== undefined && /^\d+$/.test(rangeKey) ? Number(rangeKey) : undefined;
    const how =
      seconds === undefined || !Number.isSafeInteger(seconds)
        ? `its Created range key is ${rangeKey === undefined ? 'missing' : 'not a whole number of seconds'}`
        : `its Created range key is ${Math.abs(seconds - recordCreated)} seconds ${seconds > recordCreated ? 'later' : 'earlier'} ` +
          'than the Created in its KeyRecord';
    return new MetastoreError(
      `DynamoDB metastore table "${this.tableName}": ${describeItem(id)} is corrupt: ${how}. Records encrypted under ` +
        "this key would name the KeyRecord's Created, under which the item cannot be loaded, so it is not used. " +
        'Restore the item from a backup (or point-in-time recovery), or make the two agree (put the item under the ' +
        'Created that existing records name, with that KeyRecord.Created); do not delete the item while records ' +
        'encrypted under the key exist',
    );
  }

  /** A MetastoreError that says what failed, DynamoDB's error, and what to do about it. */
  private async failure(action: string, err: unknown): Promise<MetastoreError> {
    const name = errorName(err) ?? 'Error';
    const message = messageOf(err);
    const detail = message !== '' && message !== name ? `${name}: ${message}` : name;
    const attempts = (err as { $metadata?: { attempts?: number } } | null)?.$metadata?.attempts;
    const tried = attempts !== undefined && attempts > 1 ? ` after ${attempts} attempts` : '';
    let region: string | undefined;
    try {
      region = await this.client.config.region();
    } catch {
      // No region: the advice goes without it.
    }
    if (isKeySchemaMismatch(err)) {
      return new MetastoreError(
        `DynamoDB metastore table "${this.tableName}": could not ${action}: the table's key schema is not ` +
          `Asherah's (${detail}); nothing was written. ${KEY_SCHEMA_ADVICE(this.tableName)}`,
        { cause: err },
      );
    }
    const timedOut = name === 'TimeoutError' && this.clientTimeouts !== undefined;
    const what = timedOut ? `${describeTimeouts(this.clientTimeouts!)}; ` : '';
    return new MetastoreError(
      `DynamoDB metastore table "${this.tableName}": could not ${action}${tried} (${detail}); ${what}${advice(err, name, region, this.tableName)}`,
      { cause: err },
    );
  }
}

function checkClient(client: unknown): void {
  if (typeof (client as DynamoDBClient | null)?.send !== 'function' || typeof (client as DynamoDBClient).config !== 'object') {
    throw new ConfigError('DynamoDbMetastore needs a DynamoDBClient from @aws-sdk/client-dynamodb (AWS SDK v3)');
  }
}

/**
 * The SDK's command classes. Resolved from this file first (a project's node_modules, or NODE_PATH, where the
 * Lambda runtime keeps its SDK), then from the working directory, for installs where this package cannot see its
 * consumer's dependencies (pnpm, a layer beside a function that bundles its own SDK under node_modules).
 */
function loadSdk(): DynamoDbSdk {
  let firstError: unknown;
  for (const from of [__filename, path.join(process.cwd(), 'package.json')]) {
    try {
      return createRequire(from)(SDK_PACKAGE) as DynamoDbSdk;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') {
        throw new ConfigError(`DynamoDbMetastore could not load ${SDK_PACKAGE}: ${(err as Error).message}`, { cause: err });
      }
      firstError ??= err;
    }
  }
  throw new ConfigError(
    `DynamoDbMetastore needs ${SDK_PACKAGE} (AWS SDK v3), which is not installed here; the Lambda Node.js runtime ` +
      `provides it, elsewhere run \`npm install ${SDK_PACKAGE}\``,
    { cause: firstError },
  );
}
