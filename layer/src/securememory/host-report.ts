/**
 * This host's secure-memory facts and a verdict with the fix for this kind of host: what `npm run doctor`
 * prints and what the function logs once at INIT. It probes by locking one real page, so the verdict is the
 * kernel's answer, not a guess from the limits.
 */
import { existsSync, readFileSync } from 'node:fs';
import { NativeUnavailableError } from './errors.js';
import { lockableBytes, readMemlockFacts } from './limits.js';
import { loadNative, type RlimitValue } from './native.js';
import { DEFAULT_UNCAPPED_LOCKED_BYTES, keysThatFitIn } from './secret-arena.js';

export type HostKind = 'aws-lambda' | 'kubernetes' | 'docker' | 'systemd' | 'linux' | 'macos' | 'windows' | 'other';

export type Verdict =
  /** Enough locked memory for every key to stay resident at once in a typical service. */
  | 'ok'
  /** Locked memory works but holds fewer keys: the rest are sealed and unsealed as used (correct, a bit slower). */
  | 'limited'
  /** No memory can be locked: strict mode fails with MemlockLimitError; best-effort runs on unlocked pages. */
  | 'no-locked-memory'
  /** The native calls are unavailable here (e.g. Windows): secure memory cannot run. */
  | 'unsupported';

export interface HostReport {
  platform: NodeJS.Platform;
  arch: string;
  hostKind: HostKind;
  pageSize: number | null;
  memlockSoft: RlimitValue | null;
  memlockHard: RlimitValue | null;
  capIpcLock: boolean;
  /** VmLck: bytes this process has locked now. */
  lockedBytes: number | null;
  /** RLIMIT_CORE is 0 now (the library sets it to 0 on first use unless told not to). */
  coreDumpsDisabled: boolean;
  /** A probe page could be mlocked just now; the errno name when it could not. */
  mlockProbe: 'ok' | string;
  /** Bytes the library would lock: what the limit leaves, capped at 8 MiB where the limit does not bind. */
  lockBudgetBytes: number;
  /** 32-byte keys that stay resident in locked memory at once; more are served sealed. */
  keysThatFit: number;
  /** Keys upstream Asherah (one 4 KiB page per key) could hold here. */
  asherahKeysThatFit: number | 'unlimited';
  verdict: Verdict;
  fix: string;
}

/** Keys resident at once below which the verdict is 'limited' rather than 'ok'. */
const COMFORTABLE_KEYS = 1000;

export function hostReport(): HostReport {
  const hostKind = detectHostKind();
  const base = { platform: process.platform, arch: process.arch, hostKind };
  let native;
  try {
    native = loadNative();
  } catch (err) {
    if (!(err instanceof NativeUnavailableError)) throw err;
    return {
      ...base,
      pageSize: null,
      memlockSoft: null,
      memlockHard: null,
      capIpcLock: false,
      lockedBytes: null,
      coreDumpsDisabled: false,
      mlockProbe: 'unavailable',
      lockBudgetBytes: 0,
      keysThatFit: 0,
      asherahKeysThatFit: 0,
      verdict: 'unsupported',
      fix: `${err.message}`,
    };
  }
  const facts = readMemlockFacts(native);
  const mlockProbe = probeLock(native);
  const lockable = lockableBytes(facts);
  const budget =
    mlockProbe !== 'ok' ? 0 : lockable === 'unlimited' ? DEFAULT_UNCAPPED_LOCKED_BYTES : lockable - (lockable % facts.pageSize);
  const keysThatFit = keysThatFitIn(budget);
  const verdict: Verdict = mlockProbe !== 'ok' ? 'no-locked-memory' : keysThatFit >= COMFORTABLE_KEYS ? 'ok' : 'limited';
  return {
    ...base,
    pageSize: facts.pageSize,
    memlockSoft: facts.memlockSoft,
    memlockHard: facts.memlockHard,
    capIpcLock: facts.capIpcLock,
    lockedBytes: facts.lockedBytes ?? null,
    coreDumpsDisabled: facts.coreSoft === 0,
    mlockProbe,
    lockBudgetBytes: budget,
    keysThatFit,
    asherahKeysThatFit: lockable === 'unlimited' ? 'unlimited' : Math.floor(lockable / facts.pageSize),
    verdict,
    fix: fixFor(hostKind, verdict),
  };
}

function probeLock(native: ReturnType<typeof loadNative>): string {
  const page = native.pageSize;
  const address = native.map(page);
  try {
    const errno = native.lock(address, page);
    if (errno === 0) {
      native.unlock(address, page);
      return 'ok';
    }
    return native.errnoNames[errno] ?? `errno ${errno}`;
  } finally {
    native.unmap(address, page);
  }
}

function detectHostKind(): HostKind {
  if (process.env.AWS_LAMBDA_FUNCTION_NAME) return 'aws-lambda';
  if (process.platform === 'darwin') return 'macos';
  if (process.platform === 'win32') return 'windows';
  if (process.platform !== 'linux') return 'other';
  if (process.env.KUBERNETES_SERVICE_HOST) return 'kubernetes';
  if (existsSync('/.dockerenv') || /docker|containerd/.test(readOr('/proc/1/cgroup'))) return 'docker';
  if (process.env.INVOCATION_ID) return 'systemd';
  return 'linux';
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function fixFor(kind: HostKind, verdict: Verdict): string {
  if (verdict === 'ok') return 'nothing to do: every key stays resident in locked memory';
  const sealed =
    'the library still serves any number of keys: those beyond the locked budget are kept sealed (AES-256-GCM) ' +
    'and unsealed into locked memory while in use';
  const raise: Record<HostKind, string> = {
    'aws-lambda':
      'Lambda fixes RLIMIT_MEMLOCK at 64 KiB and it cannot be raised; nothing to change: ' + sealed,
    kubernetes:
      'add the IPC_LOCK capability (securityContext.capabilities.add: ["IPC_LOCK"]) or `setcap cap_ipc_lock+ep` on ' +
      'the node binary in the image',
    docker: 'run the container with --ulimit memlock=-1:-1 (or --cap-add IPC_LOCK)',
    systemd: 'set LimitMEMLOCK=infinity (or a size) in the unit, e.g. `systemctl edit <unit>`, then restart it',
    linux:
      'raise the limit: `ulimit -l unlimited` in the shell that starts node, or `* - memlock unlimited` in ' +
      '/etc/security/limits.conf (log in again)',
    macos: 'macOS rarely refuses mlock; check `ulimit -l` and raise it in the shell that starts node',
    windows: 'secure memory does not run on Windows; use Linux (WSL2, a container) or macOS',
    other: 'raise RLIMIT_MEMLOCK for the process (ulimit -l)',
  };
  if (verdict === 'limited') {
    return kind === 'aws-lambda' ? raise[kind] : `${sealed}; for more resident keys: ${raise[kind]} (docs/memlock.md)`;
  }
  return (
    `${raise[kind]}; until then only mlock: "best-effort" runs (unlocked pages, still no-dump, PROT_NONE while ` +
    'idle and zeroed), strict mode throws MemlockLimitError (docs/memlock.md)'
  );
}
