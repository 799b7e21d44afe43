export { SecureMemoryError, MemlockLimitError, NativeUnavailableError } from './errors.js';
export { Secret } from './secret.js';
export { SecretFactory, type SecretFactoryOptions, type SecretFactoryStats } from './secret-factory.js';
export { SecretArena, type ArenaOptions, type ArenaStats, type MlockMode, type SecureMemoryLogger } from './secret-arena.js';
export { hostReport, detectHostKind, type HostReport, type HostKind, type Verdict } from './host-report.js';
export { readMemlockFacts, readLockedBytes, type MemlockFacts } from './limits.js';
