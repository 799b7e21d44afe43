/**
 * npm run doctor [-- --json]: this host's secure-memory facts, the verdict and the fix (see docs/memlock.md).
 */
import { hostReport, type HostReport } from '../layer/src/index';

function formatBytes(value: number | 'unlimited' | null): string {
  if (value === null) return 'unknown';
  if (value === 'unlimited') return 'unlimited';
  return value >= 1024 && value % 1024 === 0 ? `${value / 1024} KiB (${value} bytes)` : `${value} bytes`;
}

function print(report: HostReport): void {
  const rows: [string, string][] = [
    ['platform', `${report.platform}/${report.arch} (${report.hostKind})`],
    ['page size', report.pageSize === null ? 'unknown' : `${report.pageSize} bytes`],
    ['RLIMIT_MEMLOCK soft', formatBytes(report.memlockSoft)],
    ['RLIMIT_MEMLOCK hard', formatBytes(report.memlockHard)],
    ['CAP_IPC_LOCK', report.capIpcLock ? 'yes (the limit does not apply)' : 'no'],
    ['locked now (VmLck)', formatBytes(report.lockedBytes)],
    ['core dumps', report.coreDumpsDisabled ? 'disabled' : 'enabled (the library disables them on first use)'],
    ['mlock probe', report.mlockProbe],
    ['lock budget', formatBytes(report.lockBudgetBytes)],
    ['keys resident at once', `${report.keysThatFit} (upstream Asherah: ${report.asherahKeysThatFit})`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [key, value] of rows) console.log(`${key.padEnd(width)}  ${value}`);
  console.log(`\nverdict: ${report.verdict}\nfix: ${report.fix}`);
}

const report = hostReport();
if (process.argv.includes('--json')) console.log(JSON.stringify(report, null, 2));
else print(report);
