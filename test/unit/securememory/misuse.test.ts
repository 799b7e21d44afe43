/**
 * Misuse that used to end the process (a touched PROT_NONE page is SIGSEGV) or leak key bytes, run in child
 * processes: views kept past their call, async callbacks, printing and cloning the objects.
 */
import { lastJson, runTs } from '../../support/unprivileged';

const run = (name: string) => {
  const child = runTs('test/support/securememory-child.ts', [name]);
  expect({ status: child.status, signal: child.signal, stderr: child.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
  return lastJson<Record<string, unknown>>(child.stdout);
};

describe('misuse of secrets does not crash the process or show key bytes', () => {
  test('views kept past their call read nothing and write nothing later, and never crash', () => {
    expect(run('kept-views')).toEqual({
      ok: true,
      asyncRefused: 'SecureMemoryError',
      asyncBodyRan: false,
      promiseRefused: 'SecureMemoryError',
      readByTimer: null,
      readByMicrotask: null,
      keptLength: 0,
      keptRead: null,
      intact: true,
      sealedViewLength: 0,
    });
  });

  test('a view moved out of withBytes (transfer, transfer lists, resize) never reads another secret and never crashes', () => {
    const report = run('moved-views') as {
      uncaught: string[];
      results: Record<string, Record<string, unknown>>;
    };
    expect(report.uncaught).toEqual([]);
    const zeroCopyMoves = ['transfer', 'transfer(same length)', 'transferToFixedLength'];
    const { ['transfer, then the arena shut down inside the call']: shutDown, ...results } = report.results;
    expect(shutDown).toEqual({ afterShutdown: 'zeros', nextTurnRead: '0' });
    for (const [name, result] of Object.entries(results)) {
      const label = { name, ...result };
      // Every secret keeps its bytes, the one moved and its neighbours in the page, even inside a nested call.
      expect(label).toMatchObject({ outerIntact: true, victimIntact: true, othersIntact: true, lockedSame: true });
      // A moved buffer shows zeros (the page moved away) or, where the runtime copied instead of moving, the
      // callback's own copy of its secret: never the secret that takes the unit next, never a neighbour.
      expect(['none', 'zeros', 'victim']).toContain(result.afterCall);
      expect(['none', 'zeros', 'victim']).toContain(result.afterReuse);
      if (zeroCopyMoves.includes(name)) {
        expect(label).toMatchObject({ threw: 'nothing', afterCall: 'zeros', afterReuse: 'zeros', warned: true });
        // Still readable and writable (not a closed or unmapped page) in later turns and after shutdown.
        expect(label).toMatchObject({ nextTurnRead: '255', afterShutdown: '255' });
      }
    }
  });

  test('util.inspect, JSON.stringify and structuredClone show no key bytes, in the turn of a use or later', () => {
    const report = run('inspect') as { ok: boolean; leaks: string[]; secret: string; json: string; factory: string };
    expect(report.ok).toBe(true);
    expect(report.leaks).toEqual([]);
    expect(report.secret).toBe('Secret { length: 32, closed: false }');
    expect(JSON.parse(report.json)).toEqual({ length: 32, closed: false });
    expect(report.factory).toMatch(/^SecretFactory \{/);
  });
});
