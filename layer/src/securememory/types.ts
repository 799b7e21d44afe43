/** Types that the parts of secure memory and its callers share, in a file of their own so no import runs in a circle. */

export type MlockMode = 'strict' | 'best-effort';

/** Where secure memory reports what it cannot do as asked (unlocked pages, sealing, a moved view). */
export interface SecureMemoryLogger {
  warn(message: string, details?: Record<string, unknown>): void;
}
