/**
 * Pretends to run on another platform (argv[2], e.g. win32) before the library loads, then reports what the
 * library does there. Used to prove an unsupported platform gets a typed error, not a crash.
 */
Object.defineProperty(process, 'platform', { value: process.argv[2] });

// eslint-disable-next-line @typescript-eslint/no-require-imports
const lib = require('../../layer/src/index') as typeof import('../../layer/src/index');

const factory = new lib.SecretFactory();
let error: { name: string; message: string; isNative: boolean } | undefined;
try {
  factory.createRandom(32);
} catch (err) {
  error = { name: (err as Error).name, message: (err as Error).message, isNative: err instanceof lib.NativeUnavailableError };
}
const report = lib.hostReport();
process.stdout.write(JSON.stringify({ imported: true, error, verdict: report.verdict, fix: report.fix }) + '\n');
