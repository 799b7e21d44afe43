/**
 * The Lambda case, for real: child processes without CAP_IPC_LOCK under RLIMIT_MEMLOCK of 0, 4 KiB and 64 KiB.
 */
import { canDropPrivileges, lastJson, runTs } from '../../support/unprivileged';

interface ChildReport {
  ok: boolean;
  name?: string;
  message?: string;
  count?: number;
  wrong?: number;
  peakLocked?: number;
  warnings: string[];
  stats?: Record<string, number | string | boolean>;
}

const run = (memlockBytes: number, count: number, mode: 'strict' | 'best-effort') =>
  lastJson<ChildReport>(runTs('test/support/memlock-child.ts', [String(count), mode], { memlockBytes }).stdout);

const describeIfLinuxRoot = canDropPrivileges() ? describe : describe.skip;
if (!canDropPrivileges()) console.warn('memlock-limit tests skipped: they need Linux, root, setpriv and prlimit');

describeIfLinuxRoot('under a real RLIMIT_MEMLOCK without CAP_IPC_LOCK', () => {
  test.each(['strict', 'best-effort'] as const)(
    '64 KiB (Lambda) holds 100,000 live secrets in %s mode, every one correct, VmLck never above the limit',
    (mode) => {
      const report = run(65536, 100_000, mode);
      expect(report).toMatchObject({ ok: true, count: 100_000, wrong: 0 });
      expect(report.peakLocked).toBeGreaterThan(0);
      expect(report.peakLocked).toBeLessThanOrEqual(65536);
      expect(report.stats).toMatchObject({ lockState: 'locked', keysThatFit: 1007, residentSecrets: 1007 });
      expect(report.stats!.sealedSecrets).toBe(100_000 - 1007);
      expect(report.warnings).toEqual([expect.stringMatching(/budget reached/)]);
    },
  );

  test.each(['strict', 'best-effort'] as const)('4 KiB holds 100,000 live secrets in %s mode', (mode) => {
    const report = run(4096, 100_000, mode);
    expect(report).toMatchObject({ ok: true, wrong: 0, stats: expect.objectContaining({ lockedBytes: 4096 }) });
    expect(report.peakLocked).toBeLessThanOrEqual(4096);
  });

  test('0 bytes in strict mode is a MemlockLimitError that gives the limit, the request and the fix', () => {
    const report = run(0, 10, 'strict');
    expect(report.ok).toBe(false);
    expect(report.name).toBe('MemlockLimitError');
    expect(report.message).toContain('locking 4096 bytes failed');
    expect(report.message).toContain('EPERM');
    expect(report.message).toContain('RLIMIT_MEMLOCK soft limit: 0 bytes');
    expect(report.message).toContain('docs/memlock.md');
  });

  test('0 bytes in best-effort mode holds 100,000 secrets on unlocked pages and says so once', () => {
    const report = run(0, 100_000, 'best-effort');
    expect(report).toMatchObject({ ok: true, wrong: 0, peakLocked: 0 });
    expect(report.stats).toMatchObject({ lockState: 'unlocked', lockedBytes: 0, keysThatFit: 0, lockFailureErrno: 1 });
    expect(report.warnings).toEqual([expect.stringMatching(/NO MEMORY CAN BE LOCKED/)]);
  });
});

const scenario = (name: string, memlockBytes: number) =>
  lastJson<Record<string, unknown>>(runTs('test/support/securememory-child.ts', [name], { memlockBytes }).stdout);

describeIfLinuxRoot('limits met, then freed', () => {
  test('0 bytes: a strict MemlockLimitError leaves the process usable: best-effort works, strict fails the same way', () => {
    expect(scenario('strict-failure', 0)).toEqual({
      ok: true,
      strict: 'MemlockLimitError',
      strictFrom: 'MemlockLimitError',
      lenient: 'ok',
      lenientFrom: 'ok',
      newLenient: 'ok',
      strictAgain: 'MemlockLimitError',
    });
  });

  test('64 KiB held by other code at the first secret: strict fails, and works once the memory is given back', () => {
    expect(scenario('budget-freed', 65536)).toMatchObject({
      ok: true,
      hogLocked: true,
      whileHeld: 'MemlockLimitError',
      afterRelease: 'ok',
      fresh: 'ok',
      stats: { lockState: 'locked', lockFailureErrno: 0 },
    });
  });

  test('60 KiB held by other code: secrets are sealed into one page, and the arena grows once it is given back', () => {
    const report = scenario('budget-grows-back', 65536) as {
      ok: boolean;
      hogLocked: boolean;
      correct: boolean;
      whileHeld: Record<string, number>;
      after: Record<string, number>;
    };
    expect(report).toMatchObject({ ok: true, hogLocked: true, correct: true });
    expect(report.whileHeld).toMatchObject({ lockedBytes: 4096, lockFailureErrno: 12 });
    expect(report.whileHeld.sealedSecrets).toBeGreaterThan(0);
    expect(report.after.lockedBytes).toBeGreaterThan(4096);
    expect(report.after.lockFailureErrno).toBe(0);
  });

  test('closing the last factory zeroes, unlocks and unmaps every page; factories made before or after still work', () => {
    const report = scenario('factory-close', 65536);
    expect(report).toMatchObject({ ok: true, correct: true, lateWorks: true, earlyWorks: true });
    const start = report.lockedAtStart;
    expect(report.lockedInUse).toBe(65536);
    expect(report).toMatchObject({
      lockedAfterClose: start,
      mappingsAfterClose: 0,
      lockedWithLate: 4096,
      lockedWithEarlyOnly: 4096,
      lockedAtEnd: start,
      lockedAfterInsideClose: start,
      mappingsAtEnd: 0,
    });
  });
});

describeIfLinuxRoot('worker threads under 64 KiB', () => {
  test('4 workers x 20 generations share one budget and give every page back, however each worker ends', () => {
    // Each worker wants 5 pages (300 secrets): together more than the 16 that fit, so they meet the shared budget.
    const child = runTs('test/support/worker-threads-child.ts', ['20', '300'], { memlockBytes: 65536 });
    const report = lastJson<{ ok: boolean; lockedAtStart: number; lockedAfter: number[]; failed: number; lockRefusals: number }>(
      child.stdout,
    );
    expect(report).toMatchObject({ ok: true, failed: 0 });
    // One budget: no worker locked past it and was refused by the kernel (each would, with a budget of its own).
    expect(report.lockRefusals).toBe(0);
    expect(report.lockedAfter).toEqual(Array(20).fill(report.lockedAtStart));
  });

  test("a worker's own workers give their pages back when it is terminated: 16 rounds leave VmLck at its start", () => {
    // Each round: a worker starts a worker holding 40 secrets (one page), then the first one is terminated.
    const child = runTs('test/support/worker-tree-child.ts', ['grandchildren', '16', '40'], { memlockBytes: 65536 });
    const report = lastJson<{ ok: boolean; lockedAtStart: number; lockedAfter: number[]; budgetHeld: number }>(child.stdout);
    expect(report).toMatchObject({ ok: true, failures: [], budgetHeld: 0, mainThread: 'ok' });
    expect(report.lockedAfter).toEqual(Array(16).fill(report.lockedAtStart));
  });

  test('property: random trees of workers (3 levels), one subtree ended by terminate, exit or throw, give every page back', () => {
    // 200 seeded trees of up to 6 workers; after each, VmLck and the shared budget are back where they started,
    // and before that every thread still alive allocated a strict secret.
    const child = runTs('test/support/worker-tree-child.ts', ['property', '200', '20261208'], { memlockBytes: 65536 });
    const report = lastJson<{
      ok: boolean;
      message?: string;
      trees: number;
      lockedAtStart: number;
      lockedAtEnd: number;
      maxLocked: number;
      endings: Record<string, number>;
      depths: Record<string, number>;
    }>(child.stdout);
    expect(report).toMatchObject({ ok: true, trees: 200 });
    expect(report.lockedAtEnd).toBe(report.lockedAtStart);
    expect(report.maxLocked).toBeLessThanOrEqual(65536);
    // The runs reached every ending and workers three levels below the root worker.
    for (const ending of ['terminate', 'process.exit', 'throw']) expect(report.endings[ending]).toBeGreaterThan(0);
    expect(report.depths['3']).toBeGreaterThan(0);
  }, 120_000);
});
