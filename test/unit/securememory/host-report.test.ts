import { readFileSync } from 'node:fs';
import { hostReport } from '../../../layer/src/index';
import { canDropPrivileges, lastJson, runTs } from '../../support/unprivileged';

const doctorJson = (memlockBytes?: number) =>
  JSON.parse(runTs('scripts/doctor.ts', ['--json'], { memlockBytes }).stdout) as Record<string, unknown>;

describe('doctor', () => {
  test('--json reports this host as /proc and getrlimit see it', () => {
    const report = doctorJson();
    const status = readFileSync('/proc/self/status', 'utf8');
    const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(status)![1]}`);
    expect(report).toMatchObject({
      platform: process.platform,
      arch: process.arch,
      pageSize: 4096,
      capIpcLock: ((capEff >> 14n) & 1n) === 1n,
      lockedBytes: 0,
      mlockProbe: 'ok',
    });
    for (const field of ['memlockSoft', 'memlockHard', 'coreDumpsDisabled', 'keysThatFit', 'verdict', 'fix']) {
      expect(report).toHaveProperty(field);
    }
    expect(hostReport().memlockSoft).toEqual(report.memlockSoft);
  });

  (canDropPrivileges() ? test : test.skip)('under Lambda\'s 64 KiB it counts 1007 resident keys where Asherah fits 16', () => {
    expect(doctorJson(65536)).toMatchObject({
      memlockSoft: 65536,
      memlockHard: 65536,
      capIpcLock: false,
      mlockProbe: 'ok',
      lockBudgetBytes: 65536,
      keysThatFit: 1007,
      asherahKeysThatFit: 16,
      verdict: 'ok',
    });
  });

  (canDropPrivileges() ? test : test.skip)('with no lockable memory the verdict says so and gives a fix', () => {
    const report = doctorJson(0);
    expect(report).toMatchObject({ memlockSoft: 0, mlockProbe: 'EPERM', keysThatFit: 0, verdict: 'no-locked-memory' });
    expect(report.fix).toMatch(/best-effort/);
  });

  test('the human-readable form prints the facts and the verdict', () => {
    const out = runTs('scripts/doctor.ts', []).stdout;
    expect(out).toMatch(/RLIMIT_MEMLOCK soft/);
    expect(out).toMatch(/^verdict: (ok|limited|no-locked-memory)$/m);
    expect(out).toMatch(/^fix: /m);
    expect(() => lastJson(out)).toThrow();
  });
});
