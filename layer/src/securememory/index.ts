export { SecureMemoryError, MemlockLimitError, NativeUnavailableError } from './errors.js';
export { Secret } from './secret.js';
export { SecretFactory, type SecretFactoryOptions, type SecretFactoryStats } from './secret-factory.js';
// Types only, for naming the fields of SecretFactoryOptions and of hostReport()'s answer. The arena, the memlock
// facts and the host detection behind them are internals: tests and benchmarks import them by path.
export type { MlockMode, SecureMemoryLogger } from './types.js';
export { hostReport, type HostReport, type HostKind, type Verdict } from './host-report.js';
