import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runTs } from '../support/unprivileged';

describe('npm run invoke', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'invoke-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const env = { ASHERAH_SQLITE_PATH: path.join(dir, 'k.db'), ASHERAH_STATIC_MASTER_KEY_HEX: '11'.repeat(32) };

  test('prints the response JSON alone on stdout, logs on stderr, for the sample event and then its DRR', () => {
    const run = runTs('scripts/invoke.ts', ['functions/encrypt-decrypt/events/encrypt.json'], { env });
    expect(run.status).toBe(0);
    const response = JSON.parse(run.stdout);
    expect(response).toHaveProperty('DRR.Key.ParentKeyMeta.KeyId', '_IK_partition-1_asherah-starter_encrypt-decrypt');
    expect(run.stderr).toContain('"level":"INFO"');
    const decrypt = runTs('scripts/invoke.ts', [JSON.stringify({ Partition: 'partition-1', DRR: response.DRR })], { env });
    expect(JSON.parse(decrypt.stdout)).toMatchObject({ Payload: 'bXlzdXBlcnNlY3JldHRleHQ=' });
  });

  test('on error prints {errorType, errorMessage} and exits 1', () => {
    const run = runTs('scripts/invoke.ts', ['{"Partition":"p"}'], { env });
    expect(run.status).toBe(1);
    expect(JSON.parse(run.stdout)).toEqual({
      errorType: 'EventValidationError',
      errorMessage: 'the event must contain a Payload (for encryption) or a DRR (for decryption)',
    });
  });
});

describe('npm run start:aws-local', () => {
  test('runs the walkthrough on the DynamoDB and AWS KMS code paths against local servers', () => {
    const run = runTs('scripts/start-aws-local.ts', []);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('plaintext: "mysupersecrettext"');
    // Pre-warm at INIT created the system key: one GenerateDataKey, and no call after that.
    expect(run.stdout).toContain('KMS requests served: {"GenerateDataKey":1,"Encrypt":0,"Decrypt":0}');
  });
});
