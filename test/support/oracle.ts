/**
 * Drives the real Rust Asherah (npm `asherah-linux-x64-gnu@4.0.57`, the raw napi addon of godaddy/asherah-ffi) as an
 * interop oracle. Each runOracle() call is one child process (test/support/oracle-child.js): setup → ops → shutdown.
 * The addon hardens whatever process builds a factory (core dumps off, PR_SET_DUMPABLE=0, no-new-privs), so it never
 * loads inside jest.
 *
 * Observed with 4.0.57 on linux x64, Node 20 (pinned by test/interop/oracle-harness.test.ts):
 *
 * - DRR JSON, exact text and field order:
 *   {"Key":{"Created":<drk s>,"Key":"<b64>","ParentKeyMeta":{"KeyId":"_IK_<p>_<svc>_<prod>","Created":<ik s>}},"Data":"<b64>"}
 *   No whitespace, no "Revoked", standard padded base64, and `<`, `>`, `&` are left unescaped (Go's encoding/json
 *   writes \u003c, \u003e, \u0026), e.g. "KeyId":"_IK_a<&>b_service_product". Key records in SQLite are
 *   {"Created":n,"Key":"<b64>"} for an SK and {"Created":n,"Key":"<b64>","ParentKeyMeta":{"KeyId":"_SK_…","Created":n}}
 *   for an IK.
 * - Created: the DRK `Created` is now in whole seconds; IK and SK `Created` are truncated to the minute (a multiple of
 *   60), and the SQLite `created` column holds exactly datetime(Created, 'unixepoch') ('YYYY-MM-DD HH:MM:SS', UTC).
 *   The drift-guard row `__asherah_internal_config_drift_guard_v1__:<b64url>` (created 2000-01-01 00:00:00) is
 *   inserted by the first setup on a file and checked by every later one; its Key is base64 of a JSON snapshot that
 *   includes the SQLite path string (and kms kind "static" for both static modes, not the key).
 * - Errors are thrown Errors with code 'GenericFailure', sanitized to the outermost context only:
 *   tampered Data or tag, tampered DRK, empty Data, wrong master key, or wrong partition →
 *     "decrypt failed: decrypt failed and best-effort cross-region recovery found no usable key"
 *   no ParentKeyMeta → "decrypt failed: decrypt: DRR key missing parent_key_meta"
 *   malformed DRR → "invalid DataRowRecord JSON: <serde message>" (e.g. "EOF while parsing a value at line 1 column 0")
 *   encrypt under the wrong master key → "encrypt failed: encrypt: failed to get or create intermediate key"
 *   empty partition → "encrypt failed: partition id cannot be empty";
 *   kms 'static' without a key → "setup failed: StaticMasterKeyHex is required when KMS=static"
 *   (a non-32-byte key → "setup failed: invalid key size 2, must be 32 bytes").
 *   The inner reason only appears in the addon's log events, which the child collects per op (OracleResult.logs).
 * - SURPRISE, decrypt recovery + self-heal (on by default; SELF_HEAL_RECOVERED_KEYS=false turns it off): a DRR whose
 *   ParentKeyMeta does not match a stored IK is NOT rejected. The oracle retries with the partition's latest IK, and
 *   when that decrypts it WRITES a copy of the IK under the DRR's claimed (KeyId, Created), even a future Created
 *   (which then becomes the partition's latest IK in SQLite) and even a KeyId of ANOTHER partition (a DRR for
 *   partition p1 claiming _IK_zz_… creates an _IK_zz_… row holding p1's IK). Negative tests that alter
 *   ParentKeyMeta must pass env { SELF_HEAL_RECOVERED_KEYS: 'false' } (ORACLE_NO_SELF_HEAL) or expect extra rows,
 *   and must not expect the oracle to reject such DRRs.
 * - enableRegionSuffix is silently ignored with SQLite (with dynamoDbRegion, AWS_REGION, AWS_DEFAULT_REGION or
 *   REGION_SUFFIX too): setup() builds the suffix only from the DynamoDB metastore's region, and the drift guard
 *   records region_suffix_enabled:false. Suffixed ids with SQLite need mode 'env' (SessionFactory.fromEnv) with
 *   env REGION_SUFFIX, SQLITE_PATH and KMS: it writes _SK_<svc>_<prod>_<suffix> and _IK_<p>_<svc>_<prod>_<suffix>.
 *   A later setup() run on that file without a suffix is refused by the drift guard (ASHERAH_CONFIG_DRIFT_FORCE_RUN
 *   overrides); when forced, it still decrypts the suffixed DRRs through recovery (same id core).
 * - Cost (2-vCPU VM, Node 20): one runOracle() with 1 op takes 0.25–0.5 s wall clock, of which a bare
 *   `node -e 0` spawn is already ≈ 0.2 s. Inside the child: load ≈ 15 ms, setup ≈ 3 ms on an existing file (≈ 35 ms
 *   when it creates the file), first op ≈ 2 ms (≈ 30 ms when it creates the SK and IK), then ≈ 0.2–0.4 ms per small
 *   op including the per-op log drain (1,000 ops: ≈ 0.85 s wall in total). Batch ops into one request wherever keys
 *   may stay cached; use separate runs only to prove that keys come from the metastore.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export const repoRoot = path.resolve(__dirname, '../..');
export const ORACLE_PACKAGE = 'asherah-linux-x64-gnu';
/** The version whose behaviour the comment above records. */
export const ORACLE_EXPECTED_VERSION = '4.0.57';
const CHILD = path.join(__dirname, 'oracle-child.js');

/** The public test master key used by kms 'test-debug-static' when no staticMasterKeyHex is given. */
export const TEST_DEBUG_STATIC_KEY = Buffer.from('thisIsAStaticMasterKeyForTesting', 'latin1');
export const TEST_DEBUG_STATIC_KEY_HEX = TEST_DEBUG_STATIC_KEY.toString('hex');
/** Env that keeps negative decrypt tests from writing recovered key copies into the shared metastore. */
export const ORACLE_NO_SELF_HEAL: NodeJS.ProcessEnv = Object.freeze({ SELF_HEAL_RECOVERED_KEYS: 'false' });

/**
 * Variables the addon reads (with a config object or through SessionFactory.fromEnv) that must not leak from the
 * developer's shell into an oracle run; runOracle removes them from the inherited environment. Pass them explicitly
 * via options.env or request.env.
 */
export const ORACLE_ENV_VARS = [
  'RECOVERY_REGION_SUFFIXES', 'SELF_HEAL_RECOVERED_KEYS', 'ASHERAH_CONFIG_DRIFT_FORCE_RUN',
  'ASHERAH_CONFIG_DRIFT_FORCE_UPDATE', 'ASHERAH_NODE_DEBUG', 'ASHERAH_INTEROP_DEBUG',
  'SERVICE_NAME', 'PRODUCT_ID', 'REGION_SUFFIX', 'Metastore', 'SQLITE_PATH', 'DDB_TABLE', 'DDB_REGION_SUFFIX',
  'AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ENDPOINT_URL', 'AWS_PROFILE', 'POSTGRES_URL', 'MYSQL_URL',
  'MYSQL_TLS_MODE', 'REPLICA_READ_CONSISTENCY', 'KMS', 'STATIC_MASTER_KEY_HEX', 'REGION_MAP', 'PREFERRED_REGION',
  'KMS_KEY_ID', 'SECRETS_MANAGER_SECRET_ID', 'VAULT_ADDR', 'VAULT_TOKEN', 'VAULT_TRANSIT_KEY', 'VAULT_TRANSIT_MOUNT',
  'EXPIRE_AFTER_SECS', 'CREATE_DATE_PRECISION_SECS', 'REVOKE_CHECK_INTERVAL_SECS', 'SESSION_CACHE',
  'SESSION_CACHE_MAX_SIZE', 'SESSION_CACHE_DURATION_SECS', 'SHARED_INTERMEDIATE_KEY_CACHE',
  'INTERMEDIATE_KEY_CACHE_MAX_SIZE',
] as const;

/** camelCase config of the raw addon (asherah-node/src/lib.rs AsherahConfig); only the keys tests are likely to use. */
export interface OracleConfig {
  serviceName: string;
  productId: string;
  metastore: 'memory' | 'sqlite' | 'rdbms' | 'dynamodb' | 'test-debug-memory' | 'test-debug-sqlite';
  connectionString?: string;
  kms: 'static' | 'test-debug-static' | 'aws' | 'secrets-manager' | 'vault' | 'vault-transit';
  staticMasterKeyHex?: string;
  /** IK/SK expiry in seconds; 0 < value < 60 also clamps the created-date precision to that value. */
  expireAfter?: number;
  /** Revoke-check interval in seconds. */
  checkInterval?: number;
  enableSessionCaching?: boolean;
  sessionCacheMaxSize?: number;
  sessionCacheDuration?: number;
  /** Ignored unless metastore is 'dynamodb' (see the comment at the top). */
  enableRegionSuffix?: boolean;
  dynamoDbEndpoint?: string;
  dynamoDbRegion?: string;
  dynamoDbSigningRegion?: string;
  dynamoDbTableName?: string;
  regionMap?: Record<string, string>;
  preferredRegion?: string;
  configDriftForceRun?: boolean;
  configDriftForceUpdate?: boolean;
  verbose?: boolean;
  enableCanaries?: boolean;
}

export type OracleOp =
  | { op: 'encrypt' | 'encryptAsync'; partition: string; dataB64: string }
  | { op: 'decrypt' | 'decryptAsync'; partition: string; drr: string }
  | { op: 'encryptString'; partition: string; text: string }
  | { op: 'decryptString'; partition: string; drr: string };

export interface OracleRequest {
  /** Required in mode 'setup' (the default). */
  config?: OracleConfig;
  /** 'setup': global setup(config)/shutdown(). 'env': SessionFactory.fromEnv(), configured by env only. */
  mode?: 'setup' | 'env';
  ops: OracleOp[];
  /** Applied to the child's process.env before the addon loads; null deletes. */
  env?: Record<string, string | null>;
}

export interface OracleError {
  message: string;
  /** napi status, 'GenericFailure' for every addon error seen so far. */
  code?: string;
  stack?: string;
}

export interface OracleResult {
  drr?: string;
  dataB64?: string;
  text?: string;
  error?: OracleError;
  /** The addon's log events (warn and above) emitted during this op: "<level> <target>: <message>". */
  logs?: string[];
}

export interface OracleTimings {
  loadMs?: number;
  setupMs?: number;
  opsMs?: number[];
  shutdownMs?: number;
  totalMs?: number;
}

export interface OracleResponse {
  ok: boolean;
  /** Present when ok, and when only shutdown failed. */
  results?: OracleResult[];
  /** Setup (or shutdown) failure. */
  error?: OracleError;
  /** Log events from setup and shutdown. */
  logs?: string[];
  timings?: OracleTimings;
}

export interface OracleRunOptions {
  /** Merged over the inherited environment, after ORACLE_ENV_VARS are removed from it. */
  env?: NodeJS.ProcessEnv;
  /** Default 60 s. */
  timeoutMs?: number;
}

function probeOracle(): { available: boolean; reason: string; version?: string } {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return { available: false, reason: `the oracle package only exists for linux x64 here; this is ${process.platform} ${process.arch}` };
  }
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  if (!header?.glibcVersionRuntime) return { available: false, reason: 'the oracle package needs glibc (this looks like musl)' };
  let pkgJson: string;
  try {
    pkgJson = createRequire(path.join(repoRoot, 'package.json')).resolve(`${ORACLE_PACKAGE}/package.json`);
  } catch {
    return { available: false, reason: `${ORACLE_PACKAGE} is not installed (npm install with optional dependencies)` };
  }
  const version = (JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string }).version;
  if (!existsSync(path.join(path.dirname(pkgJson), 'index.linux-x64-gnu.node'))) {
    return { available: false, reason: `${ORACLE_PACKAGE}@${version} has no index.linux-x64-gnu.node`, version };
  }
  return { available: true, reason: `${ORACLE_PACKAGE}@${version}`, version };
}

const probe = probeOracle();

/**
 * True on linux x64 (glibc) when the package and its .node file are installed. Deliberately no trial child run: a
 * load failure on linux x64 then fails the tests loudly instead of skipping them (they must run there), and
 * importing this module stays free.
 */
export const oracleAvailable: boolean = probe.available;
/** Why the oracle is (un)available, for skip messages. */
export const oracleStatus: string = probe.reason;
/** Installed package version, when found. */
export const oracleVersion: string | undefined = probe.version;

function pickDescribe(): jest.Describe {
  // Outside jest (scripts, benchmarks importing runOracle) there is no describe.
  if (typeof describe !== 'function') {
    return (() => {
      throw new Error('describeOracle only works inside jest');
    }) as unknown as jest.Describe;
  }
  if (oracleAvailable) return describe;
  console.warn(`Rust Asherah oracle tests skipped: ${oracleStatus}`);
  return describe.skip;
}

/** `describe` when the oracle can run, else `describe.skip` with a console message saying why. */
export const describeOracle: jest.Describe = pickDescribe();

/** Raw addon config for a SQLite metastore with the public test-debug key. dbPath is made absolute. */
export function oracleSqliteConfig(dbPath: string, overrides: Partial<OracleConfig> = {}): OracleConfig {
  return {
    serviceName: 'service',
    productId: 'product',
    metastore: 'sqlite',
    connectionString: path.resolve(dbPath),
    kms: 'test-debug-static',
    enableSessionCaching: false,
    ...overrides,
  };
}

function childEnv(extra: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ORACLE_ENV_VARS) delete env[name];
  return { ...env, ...extra };
}

function tail(text: string, max = 4000): string {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

/**
 * Runs one request in a fresh child and returns its response. Setup failures come back as { ok: false, error };
 * per-op failures as results[i].error. Throws when the child crashed, timed out or printed no JSON line.
 */
export function runOracle(request: OracleRequest, options: OracleRunOptions = {}): OracleResponse {
  const result = spawnSync(process.execPath, [CHILD], {
    cwd: repoRoot,
    input: JSON.stringify(request),
    encoding: 'utf8',
    env: childEnv(options.env),
    timeout: options.timeoutMs ?? 60_000,
    maxBuffer: 512 * 1024 * 1024,
  });
  const describeRun = () =>
    `status ${result.status}, signal ${result.signal}\n--- stderr ---\n${tail(result.stderr ?? '')}\n--- stdout ---\n${tail(result.stdout ?? '', 1000)}`;
  if (result.error) throw new Error(`oracle child failed to run: ${result.error.message}; ${describeRun()}`);
  if (result.status !== 0 || result.signal) throw new Error(`oracle child crashed: ${describeRun()}`);
  const lines = result.stdout.split('\n').filter((line) => line.trim() !== '');
  if (lines.length === 0) throw new Error(`oracle child printed no JSON: ${describeRun()}`);
  try {
    return JSON.parse(lines[lines.length - 1]) as OracleResponse;
  } catch (err) {
    throw new Error(`oracle child printed no JSON (${(err as Error).message}): ${describeRun()}`);
  }
}

/** runOracle, then throw unless setup and shutdown succeeded; returns the per-op results. */
export function runOracleOk(request: OracleRequest, options?: OracleRunOptions): OracleResult[] {
  const response = runOracle(request, options);
  if (!response.ok || !response.results) {
    throw new Error(`oracle run failed: ${response.error?.message}\n${(response.logs ?? []).join('\n')}`);
  }
  return response.results;
}

export const encryptOp = (partition: string, data: Buffer | string): OracleOp => ({
  op: 'encrypt',
  partition,
  dataB64: (typeof data === 'string' ? Buffer.from(data, 'utf8') : data).toString('base64'),
});

export const decryptOp = (partition: string, drr: string): OracleOp => ({ op: 'decrypt', partition, drr });

/** The DRR of an encrypt result; throws with the op's error and logs otherwise. */
export function resultDrr(result: OracleResult): string {
  if (result.drr === undefined) throw new Error(`oracle op failed: ${result.error?.message}\n${(result.logs ?? []).join('\n')}`);
  return result.drr;
}

/** The plaintext of a decrypt result; throws with the op's error and logs otherwise. */
export function resultData(result: OracleResult): Buffer {
  if (result.dataB64 === undefined) throw new Error(`oracle op failed: ${result.error?.message}\n${(result.logs ?? []).join('\n')}`);
  return Buffer.from(result.dataB64, 'base64');
}

/** One partition × payload list for both shared-store interop suites (SQLite, DynamoDB); `large`: each one's big payload. */
export function interopCases(large: Record<string, Buffer>) {
  const partitions = ['p1', 'user@example.com', 'ünïcødé-パーティション', 'a<&>b', 'acct_42'];
  const payloads: Record<string, Buffer> = {
    empty: Buffer.alloc(0),
    text: Buffer.from('hello asherah'),
    unicode: Buffer.from('héllo wörld — 世界 🦀 ﷺ'),
    binary: Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    ...large,
  };
  const cases = partitions.flatMap((partition) => Object.entries(payloads).map(([name, data]) => ({ partition, name, data })));
  return { partitions, payloads, cases };
}
