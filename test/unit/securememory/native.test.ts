import { lastJson, runTs } from '../../support/unprivileged';

describe('native bindings', () => {
  test.each(['win32', 'aix'])('on %s the library imports, and using secure memory is a NativeUnavailableError', (platform) => {
    const child = runTs('test/support/foreign-platform-child.ts', [platform]);
    expect(child.status).toBe(0);
    const report = lastJson<{ imported: boolean; error: { name: string; message: string; isNative: boolean }; verdict: string }>(
      child.stdout,
    );
    expect(report.imported).toBe(true);
    expect(report.error).toMatchObject({ name: 'NativeUnavailableError', isNative: true });
    expect(report.error.message).toContain(platform);
    expect(report.error.message).toMatch(/Linux.*macOS|docs\/memlock\.md/);
    expect(report.verdict).toBe('unsupported');
  });
});
