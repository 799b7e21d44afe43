import { lastJson, runTs } from '../../support/unprivileged';
import { loadNative } from '../../../layer/src/securememory/native';

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

describe('detaching views', () => {
  test('a view over native memory can be detached on this runtime, without reading it (even PROT_NONE)', () => {
    const native = loadNative();
    const address = native.map(native.pageSize);
    try {
      const buffer = native.view(address, 32);
      const kept = new Uint8Array(buffer);
      native.protectNone(address, native.pageSize);
      expect(native.detach(buffer)).toBe(true);
      expect([buffer.byteLength, kept.length, kept[0]]).toEqual([0, 0, undefined]);
    } finally {
      native.unmap(address, native.pageSize);
    }
  });
});
