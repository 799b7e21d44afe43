/**
 * AWS KMS envelope interop with the real Rust Asherah (asherah-linux-x64-gnu 4.0.57) on a shared SQLite file:
 * both talk real SDKs (AWS SDK for JavaScript v3 here, AWS SDK for Rust there) to one KMS-protocol server, and each
 * unwraps the SK envelopes (docs/wire-format.md §4.3, which both implementations follow) the other writes.
 *
 * Pointing the oracle at the server: `kms: 'aws'` with `regionMap` and `preferredRegion`, and env AWS_ENDPOINT_URL
 * (asherah/src/kms_aws_envelope.rs passes it to every regional client's `endpoint_url`), dummy
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and AWS_REGION. One endpoint then serves every region, so one server
 * holds both regions' keys and finds the key by the ARN in KeyId or inside the CiphertextBlob.
 *
 * Observed with 4.0.57 (pinned by the tests below): its setup takes about 0.3 s more with kms 'aws' (aws-config
 * loading); a cold encrypt costs GenerateDataKey in the preferred region plus one Encrypt per other region, a cold
 * decrypt one Decrypt, as ours; it writes kmsKeks sorted by region name; a failed regional Encrypt fails its whole
 * encrypt (Go and we leave that region out); and its config-drift guard row records the region map, so a later run
 * with another map on the same file needs ASHERAH_CONFIG_DRIFT_FORCE_RUN. From its source (kms_aws_envelope.rs),
 * not observable here: it tries GenerateDataKey in the preferred region only, and records the KeyId KMS returned as
 * the preferred region's `arn` (Go and we record the configured ARN; they differ only for an alias or a bare key
 * id). None of this affects interop: readers look KEKs up by region and pass their own configured ARN.
 *
 * The oracle runs in a child process as usual, but started asynchronously: runOracle's spawnSync would block this
 * process's event loop, and with it the in-process KMS server the child is calling.
 */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  decodeDataRowRecord,
  encodeDataRowRecord,
  SecretFactory,
  SessionFactory,
  SqliteMetastore,
} from '../../layer/src/index';
import { AwsKms, kmsClientsFor } from '../../layer/src/appencryption/kms/aws-kms';
import { KmsServer, keyArn } from '../../scripts/local-aws/kms-server';
import {
  decryptOp,
  describeOracle,
  encryptOp,
  ORACLE_ENV_VARS,
  oracleSqliteConfig,
  resultData,
  resultDrr,
  type OracleRequest,
  type OracleResponse,
  type OracleResult,
} from '../support/oracle';

const WEST = 'us-west-2';
const EAST = 'us-east-1';
const ARNS: Record<string, string> = { [WEST]: keyArn(WEST), [EAST]: keyArn(EAST) };
const mapOf = (...regions: string[]) => Object.fromEntries(regions.map((r) => [r, ARNS[r]]));

const payloads: Record<string, Buffer> = {
  empty: Buffer.alloc(0),
  text: Buffer.from('hello asherah'),
  unicode: Buffer.from('héllo wörld — 世界 🦀'),
  binary: Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
};
const cases = ['p1', 'user@example.com'].flatMap((partition) =>
  Object.entries(payloads).map(([name, data]) => ({ partition, name, data })),
);

/** Variables of the SDK's config chain that must not leak into the oracle from the developer's shell. */
const AWS_ENV_VARS = [
  'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL_KMS', 'AWS_CONFIG_FILE',
  'AWS_SHARED_CREDENTIALS_FILE', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_ROLE_ARN', 'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
] as const;

const ORACLE_CHILD = path.join(__dirname, '../support/oracle-child.js');

/** runOracle, asynchronously (see the comment at the top); same request and response. */
function runOracleAsync(request: OracleRequest, env: NodeJS.ProcessEnv): Promise<OracleResponse> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [...ORACLE_ENV_VARS, ...AWS_ENV_VARS]) delete childEnv[name];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ORACLE_CHILD], { env: { ...childEnv, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      const last = stdout.split('\n').filter((line) => line.trim() !== '').pop();
      if (status !== 0 || signal !== null || last === undefined) {
        reject(new Error(`oracle child failed: status ${status}, signal ${signal}\n${stderr.slice(-4000)}`));
        return;
      }
      resolve(JSON.parse(last) as OracleResponse);
    });
    child.stdin.end(JSON.stringify(request));
  });
}

async function runOracleOkAsync(request: OracleRequest, env: NodeJS.ProcessEnv): Promise<OracleResult[]> {
  const response = await runOracleAsync(request, env);
  if (!response.ok || !response.results) {
    throw new Error(`oracle run failed: ${response.error?.message}\n${(response.logs ?? []).join('\n')}`);
  }
  return response.results;
}

interface EnvelopeJson {
  encryptedKey: string;
  kmsKeks: { region: string; arn: string; encryptedKek: string }[];
}

/** The SK rows of the file, each with its Key decoded: the envelope text. */
function skEnvelopes(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    const rows = db.prepare("SELECT key_record FROM encryption_key WHERE id LIKE '\\_SK\\_%' ESCAPE '\\'").all() as {
      key_record: string;
    }[];
    return rows.map((row) => Buffer.from((JSON.parse(row.key_record) as { Key: string }).Key, 'base64').toString('utf8'));
  } finally {
    db.close();
  }
}

const B64 = '[A-Za-z0-9+/]+={0,2}';
const KEK = `\\{"region":"[a-z0-9-]+","arn":"[^"]+","encryptedKek":"${B64}"\\}`;
const TWO_KEK_ENVELOPE = new RegExp(`^\\{"encryptedKey":"${B64}","kmsKeks":\\[${KEK},${KEK}\\]\\}$`);

describeOracle('AWS KMS envelope interop with the Rust implementation (one KMS-protocol server for every region)', () => {
  let server: KmsServer;
  let dir: string;
  let file: string;

  beforeAll(async () => {
    server = await KmsServer.start({ keys: [ARNS[WEST], ARNS[EAST]], label: 'all regions' });
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'aws-kms-interop-'));
    file = path.join(dir, 'shared.db');
    server.clear();
    server.resetCounts();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Env that points the oracle's AWS SDK at the server, with dummy credentials and no shared config files. */
  const oracleEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    AWS_ENDPOINT_URL: server.endpoint,
    AWS_ACCESS_KEY_ID: 'AKIDTESTTESTTESTTEST',
    AWS_SECRET_ACCESS_KEY: 'test-secret',
    AWS_REGION: WEST,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: path.join(dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-aws-credentials'),
    SELF_HEAL_RECOVERED_KEYS: 'false',
    ...extra,
  });
  const oracleConfig = (regions = [WEST, EAST], preferredRegion = WEST) =>
    oracleSqliteConfig(file, { kms: 'aws', regionMap: mapOf(...regions), preferredRegion });

  /** Our SDK on the shared file, every region's client pointed at the one server. */
  function ours(regions = [WEST, EAST], preferredRegion = WEST) {
    const regionMap = mapOf(...regions);
    const secrets = new SecretFactory();
    const clients = kmsClientsFor(regionMap, {
      endpoint: server.endpoint,
      credentials: { accessKeyId: 'AKIDTESTTESTTESTTEST', secretAccessKey: 'test-secret' },
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
    });
    const kms = new AwsKms({ regionMap, preferredRegion, clients, secrets });
    const metastore = new SqliteMetastore(file);
    const factory = SessionFactory.create({ serviceName: 'service', productId: 'product', metastore, kms, secrets });
    return {
      factory,
      close: async () => {
        await factory.close();
        metastore.close();
        Object.values(clients).forEach((client) => client.destroy());
        secrets.close();
      },
    };
  }

  test('an SK envelope the Rust implementation writes decrypts here, through either region\'s KEK', async () => {
    const results = await runOracleOkAsync({ config: oracleConfig(), ops: cases.map((c) => encryptOp(c.partition, c.data)) }, oracleEnv());
    // Its cold encrypt: a data key in the preferred region, one Encrypt for the other region.
    expect(server.requests).toEqual({ GenerateDataKey: 1, Encrypt: 1, Decrypt: 0 });
    const [text] = skEnvelopes(file);
    expect(text).toMatch(TWO_KEK_ENVELOPE);
    const envelope = JSON.parse(text) as EnvelopeJson;
    expect(envelope.kmsKeks.map((k) => k.region).sort()).toEqual([EAST, WEST]);
    for (const kek of envelope.kmsKeks) expect(kek.arn).toBe(ARNS[kek.region]);

    // Preferred region (us-west-2), then a config that only knows us-east-1: both KEKs unwrap the same SK.
    for (const [regions, preferred] of [[[WEST, EAST], WEST], [[EAST], EAST]] as const) {
      server.resetCounts();
      const sdk = ours([...regions], preferred);
      try {
        for (const [i, c] of cases.entries()) {
          const plaintext = await sdk.factory.getSession(c.partition).decrypt(decodeDataRowRecord(resultDrr(results[i])));
          expect([c.partition, c.name, plaintext.equals(c.data)]).toEqual([c.partition, c.name, true]);
        }
        expect(server.requests).toEqual({ GenerateDataKey: 0, Encrypt: 0, Decrypt: 1 });
        expect(sdk.factory.metrics()).toMatchObject({ kmsDecryptKeyCalls: 1, kmsEncryptKeyCalls: 0, metastoreStores: 0 });
      } finally {
        await sdk.close();
      }
    }
  });

  test('an SK envelope we write decrypts in the Rust implementation, through either region\'s KEK', async () => {
    const sdk = ours();
    const drrs: string[] = [];
    try {
      for (const c of cases) drrs.push(encodeDataRowRecord(await sdk.factory.getSession(c.partition).encrypt(c.data)));
    } finally {
      await sdk.close();
    }
    expect(server.requests).toEqual({ GenerateDataKey: 1, Encrypt: 1, Decrypt: 0 });
    const [text] = skEnvelopes(file);
    expect(text).toMatch(TWO_KEK_ENVELOPE);
    expect((JSON.parse(text) as EnvelopeJson).kmsKeks.map((k) => k.region)).toEqual([WEST, EAST]);

    server.resetCounts();
    const decryptAll = { ops: cases.map((c, i) => decryptOp(c.partition, drrs[i])) };
    const results = await runOracleOkAsync({ config: oracleConfig(), ...decryptAll }, oracleEnv());
    for (const [i, c] of cases.entries()) expect([c.partition, c.name, resultData(results[i]).equals(c.data)]).toEqual([c.partition, c.name, true]);
    expect(server.requests).toEqual({ GenerateDataKey: 0, Encrypt: 0, Decrypt: 1 });

    // Our us-east-1 KEK alone (its drift guard recorded both regions, hence the forced run).
    server.resetCounts();
    const eastOnly = await runOracleOkAsync(
      { config: oracleConfig([EAST], EAST), ...decryptAll },
      oracleEnv({ ASHERAH_CONFIG_DRIFT_FORCE_RUN: 'true' }),
    );
    for (const [i, c] of cases.entries()) expect(resultData(eastOnly[i]).equals(c.data)).toBe(true);
    expect(server.requests.Decrypt).toBe(1);

    // Its own fallback on our envelope: us-west-2 denies the first Decrypt, it moves on to us-east-1.
    server.resetCounts();
    server.failNext(1, 'AccessDeniedException', 'Decrypt');
    const fallback = await runOracleOkAsync({ config: oracleConfig(), ops: [decryptAll.ops[1]] }, oracleEnv());
    expect(resultData(fallback[0]).equals(cases[1].data)).toBe(true);
    expect(server.requests.Decrypt).toBe(2);
  });

  test('both write to one partition in turn under one SK envelope, and each reads the other', async () => {
    const first = await runOracleOkAsync({ config: oracleConfig(), ops: [encryptOp('shared', 'from rust')] }, oracleEnv());
    const sdk = ours();
    let mine: string;
    try {
      const theirs = decodeDataRowRecord(resultDrr(first[0]));
      const drr = await sdk.factory.getSession('shared').encrypt(Buffer.from('from ts'));
      expect(drr.key.parentKeyMeta).toEqual(theirs.key.parentKeyMeta); // its IK, under its SK
      mine = encodeDataRowRecord(drr);
      expect((await sdk.factory.getSession('shared').decrypt(theirs)).toString()).toBe('from rust');
    } finally {
      await sdk.close();
    }
    const back = await runOracleOkAsync({ config: oracleConfig(), ops: [decryptOp('shared', mine)] }, oracleEnv());
    expect(resultData(back[0]).toString()).toBe('from ts');
    expect(skEnvelopes(file)).toHaveLength(1);
  });

  test('a failed regional Encrypt fails the Rust encrypt, while we leave that region out; it reads our one-KEK envelope', async () => {
    server.failNext(1, 'AccessDeniedException', 'Encrypt');
    const response = await runOracleAsync({ config: oracleConfig(), ops: [encryptOp('p1', 'rust')] }, oracleEnv());
    expect(response.results?.[0].error?.message).toMatch(/^encrypt failed: /);
    expect(server.requests).toEqual({ GenerateDataKey: 1, Encrypt: 1, Decrypt: 0 });
    expect(skEnvelopes(file)).toEqual([]);

    server.failNext(1, 'AccessDeniedException', 'Encrypt');
    const sdk = ours();
    let mine: string;
    try {
      mine = encodeDataRowRecord(await sdk.factory.getSession('p1').encrypt(Buffer.from('ts, us-west-2 only')));
    } finally {
      await sdk.close();
    }
    const [text] = skEnvelopes(file);
    expect((JSON.parse(text) as EnvelopeJson).kmsKeks.map((k) => k.region)).toEqual([WEST]);
    const back = await runOracleOkAsync({ config: oracleConfig(), ops: [decryptOp('p1', mine)] }, oracleEnv());
    expect(resultData(back[0]).toString()).toBe('ts, us-west-2 only');
  });
});
