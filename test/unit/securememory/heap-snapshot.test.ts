/**
 * Key bytes never enter the V8 heap: after real use of secrets with known bytes, a heap snapshot holds no copy
 * of them in any form a heap string could take. The --leak run is the control: the same search finds a copy.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KNOWN_KEYS, knownKey } from '../../support/heap-snapshot-child';
import { lastJson, runTs } from '../../support/unprivileged';

function copiesInSnapshot(file: string): string[] {
  const raw = readFileSync(file);
  const strings = (JSON.parse(raw.toString('utf8')) as { strings: string[] }).strings;
  const found: string[] = [];
  for (let i = 0; i < KNOWN_KEYS; i++) {
    const key = knownKey(i);
    const forms: Record<string, string> = {
      hex: key.toString('hex'),
      HEX: key.toString('hex').toUpperCase(),
      base64: key.toString('base64'),
      base64url: key.toString('base64url'),
      latin1: key.toString('latin1'),
    };
    if (raw.includes(key)) found.push(`key ${i}: raw bytes`);
    for (const [form, text] of Object.entries(forms)) {
      if (strings.some((s) => s.includes(text))) found.push(`key ${i}: ${form}`);
    }
  }
  return found;
}

describe('heap snapshot', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'heap-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const snapshot = (name: string, args: string[]) => {
    const file = path.join(dir, name);
    const child = runTs('test/support/heap-snapshot-child.ts', [file, ...args], { nodeFlags: ['--expose-gc'] });
    expect(lastJson(child.stdout)).toMatchObject({ ok: true });
    expect((lastJson(child.stdout) as { sealed: number }).sealed).toBeGreaterThan(0);
    return file;
  };

  test('after encrypting with secrets of known bytes, no copy of them is on the V8 heap', () => {
    expect(copiesInSnapshot(snapshot('clean.heapsnapshot', []))).toEqual([]);
  });

  test('control: a deliberate hex copy of a key is found by the same search', () => {
    expect(copiesInSnapshot(snapshot('leak.heapsnapshot', ['--leak']))).toEqual(['key 0: hex']);
  });
});
