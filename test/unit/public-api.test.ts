/**
 * The layer's public API (layer/src/index.ts, the package asherah-layer) holds only what users need, so an export
 * added to it, or one of an internal module let through a re-export, shows up here as a change to review. Tests of
 * internals import those by path instead.
 */
import path from 'node:path';
import ts from 'typescript';
import * as publicApi from '../../layer/src/index';

const INDEX = path.join(__dirname, '..', '..', 'layer', 'src', 'index.ts');

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Every name index.ts exports, as its declarations (index.d.ts, emitted from it) export them. */
function declaredExports(): { values: string[]; types: string[] } {
  const program = ts.createProgram([INDEX], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: ['node'],
    skipLibCheck: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(INDEX)!)!;
  const values: string[] = [];
  const types: string[] = [];
  for (const symbol of checker.getExportsOfModule(module)) {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    (target.flags & ts.SymbolFlags.Value ? values : types).push(symbol.name);
  }
  return { values: values.sort(byCodePoint), types: types.sort(byCodePoint) };
}

// What a program can call or construct.
const VALUES = [
  'AsherahError',
  'AwsKms',
  'ClosedError',
  'ConfigError',
  'CryptoPolicy',
  'DecryptError',
  'DynamoDbMetastore',
  'ENV_DEFAULTS',
  'ENV_NAMES',
  'EventValidationError',
  'InvalidRecordError',
  'KeyNotFoundError',
  'KmsError',
  'MemlockLimitError',
  'MemoryMetastore',
  'MetastoreError',
  'NativeUnavailableError',
  'Secret',
  'SecretFactory',
  'SecureMemoryError',
  'Session',
  'SessionFactory',
  'SqliteMetastore',
  'StaticKms',
  'TEST_DEBUG_STATIC_MASTER_KEY_HEX',
  'checkRegionMap',
  'configFromEnv',
  'dataRowRecordToJsonObject',
  'decodeDataRowRecord',
  'decodeEnvelopeKeyRecord',
  'decryptAsync',
  'decryptStringAsync',
  'encodeDataRowRecord',
  'encodeEnvelopeKeyRecord',
  'encryptAsync',
  'encryptStringAsync',
  'getSessionFactory',
  'hostReport',
  'kmsClientsFor',
  'partitionsToPrewarm',
  'setup',
  'setupAsync',
  'shutdown',
  'shutdownAsync',
];

// Types of the public signatures: options, results, records, and the ports a user may implement.
const TYPES = [
  'AsherahConfig',
  'AwsKmsLogger',
  'AwsKmsMetricsHook',
  'AwsKmsOptions',
  'BuilderLogger',
  'BuilderMetricsHook',
  'Clock',
  'CloseOptions',
  'CryptoPolicyOptions',
  'DataRowRecord',
  'DataRowRecordJson',
  'DynamoDbMetastoreOptions',
  'EnvConfig',
  'EnvConfigOptions',
  'EnvMap',
  'EnvSetting',
  'EnvelopeKeyRecord',
  'FactoryMetrics',
  'FromConfigOptions',
  'FromEnvOptions',
  'HostKind',
  'HostReport',
  'KeyManagementService',
  'KeyMeta',
  'KmsClientOptions',
  'Metastore',
  'MetricName',
  'MetricsHook',
  'MetricsSnapshot',
  'MlockMode',
  'SecretFactoryOptions',
  'SecretFactoryStats',
  'SecureMemoryLogger',
  'SessionFactoryConfig',
  'Verdict',
];

describe('the public API (layer/src/index.ts)', () => {
  test('exports exactly these values at run time', () => {
    expect(Object.keys(publicApi).sort(byCodePoint)).toEqual(VALUES);
  });

  test('declares exactly these values and types, so no internal is reachable by name from index.d.ts', () => {
    expect(declaredExports()).toEqual({ values: VALUES, types: TYPES });
  });
});
