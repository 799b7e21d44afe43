/**
 * Warm encrypt and decrypt of 64 B, 1 KiB and 64 KiB through our async API, in one run, against
 * (a) the raw node:crypto work of the same operation (two AES-GCM operations, a random DRK and nonce drawn from a
 *     pool, JSON and base64): the floor any implementation on node:crypto pays, and
 * (b) the Rust implementation through its Node addon (asherah-linux-x64-gnu), same config (memory metastore,
 *     static KMS), its synchronous and its async calls.
 * Goal (issue 3): at least 1.0x the addon's synchronous ops/s at 64 B and 1 KiB, encrypt and decrypt.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { decryptAsync, encryptAsync, setup, shutdown } from '../layer/src/index';
import { measureGroup } from './harness';

interface Addon {
  setup(config: object): void;
  shutdown(): void;
  encrypt(partition: string, data: Buffer): string;
  encryptAsync(partition: string, data: Buffer): Promise<string>;
  decrypt(partition: string, drr: Buffer): Buffer;
  decryptAsync(partition: string, drr: Buffer): Promise<Buffer>;
}

function loadAddon(): Addon | undefined {
  try {
    return createRequire(__filename)('asherah-linux-x64-gnu/index.linux-x64-gnu.node') as Addon;
  } catch {
    return undefined;
  }
}

/** The raw work of an Asherah encrypt on node:crypto, with keys in plain Buffers and pooled randomness. */
class RawEnvelope {
  private readonly ik = randomBytes(32);
  private readonly pool = Buffer.alloc(44 * 64);
  private used = this.pool.length;
  private random(n: number): Buffer {
    if (this.used + n > this.pool.length) {
      randomFillSync(this.pool);
      this.used = 0;
    }
    return this.pool.subarray(this.used, (this.used += n));
  }
  private seal(plaintext: Buffer, key: Buffer): Buffer {
    const nonce = this.random(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag(), nonce]);
  }
  private open(data: Buffer, key: Buffer): Buffer {
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(data.length - 12));
    decipher.setAuthTag(data.subarray(data.length - 28, data.length - 12));
    return Buffer.concat([decipher.update(data.subarray(0, data.length - 28)), decipher.final()]);
  }
  encrypt(plaintext: Buffer): string {
    const drk = this.random(32);
    const data = this.seal(plaintext, drk);
    const key = this.seal(drk, this.ik);
    return JSON.stringify({
      Key: { Created: Math.floor(Date.now() / 1000), Key: key.toString('base64'), ParentKeyMeta: { KeyId: '_IK_bench_service_product', Created: 1795858140 } },
      Data: data.toString('base64'),
    });
  }
  decrypt(json: string): Buffer {
    const drr = JSON.parse(json);
    const drk = this.open(Buffer.from(drr.Key.Key, 'base64'), this.ik);
    return this.open(Buffer.from(drr.Data, 'base64'), drk);
  }
}

export interface EnvelopeRow {
  operation: 'encrypt' | 'decrypt';
  size: string;
  oursNs: number;
  rawNs: number;
  addonSyncNs?: number;
  addonAsyncNs?: number;
}

export async function runEnvelopeBench(): Promise<EnvelopeRow[]> {
  const addon = loadAddon();
  const partition = 'bench';
  setup({ ServiceName: 'service', ProductID: 'product', Metastore: 'memory', KMS: 'test-debug-static', EnableSessionCaching: true });
  addon?.setup({ serviceName: 'service', productId: 'product', metastore: 'memory', kms: 'test-debug-static', enableSessionCaching: true });
  const raw = new RawEnvelope();
  const rows: EnvelopeRow[] = [];
  try {
    for (const [size, bytes, ops] of [['64 B', 64, 4000], ['1 KiB', 1024, 4000], ['64 KiB', 65536, 400]] as const) {
      const data = randomBytes(bytes);
      const ourDrr = await encryptAsync(partition, data);
      const rawDrr = raw.encrypt(data);
      const addonDrr = addon ? Buffer.from(addon.encrypt(partition, data)) : undefined;
      const enc = await measureGroup(
        [
          { name: 'ours', run: () => encryptAsync(partition, data) },
          { name: 'raw', run: () => raw.encrypt(data) },
          ...(addon
            ? [
                { name: 'addonSync', run: () => addon.encrypt(partition, data) },
                { name: 'addonAsync', run: () => addon.encryptAsync(partition, data) },
              ]
            : []),
        ],
        ops,
      );
      rows.push({ operation: 'encrypt', size, oursNs: enc.get('ours')!, rawNs: enc.get('raw')!, addonSyncNs: enc.get('addonSync'), addonAsyncNs: enc.get('addonAsync') });
      const dec = await measureGroup(
        [
          { name: 'ours', run: () => decryptAsync(partition, ourDrr) },
          { name: 'raw', run: () => raw.decrypt(rawDrr) },
          ...(addon && addonDrr
            ? [
                { name: 'addonSync', run: () => addon.decrypt(partition, addonDrr) },
                { name: 'addonAsync', run: () => addon.decryptAsync(partition, addonDrr) },
              ]
            : []),
        ],
        ops,
      );
      rows.push({ operation: 'decrypt', size, oursNs: dec.get('ours')!, rawNs: dec.get('raw')!, addonSyncNs: dec.get('addonSync'), addonAsyncNs: dec.get('addonAsync') });
    }
  } finally {
    shutdown();
    addon?.shutdown();
  }
  return rows;
}

export function printEnvelopeTable(rows: EnvelopeRow[]): void {
  const opsPerSec = (ns: number | undefined) => (ns === undefined ? 'n/a' : Math.round(1e9 / ns).toLocaleString('en-US'));
  const ratio = (a: number | undefined, b: number) => (a === undefined ? 'n/a' : `${(a / b).toFixed(2)}x`);
  console.log('\n## Envelope encryption, warm (ops/s, higher is better)\n');
  console.log('| op | size | ours (async) | raw node:crypto | Rust addon sync | Rust addon async | ours / raw | ours / addon sync | ours / addon async |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.operation} | ${r.size} | ${opsPerSec(r.oursNs)} | ${opsPerSec(r.rawNs)} | ${opsPerSec(r.addonSyncNs)} | ` +
        `${opsPerSec(r.addonAsyncNs)} | ${ratio(r.rawNs, r.oursNs)} | ${ratio(r.addonSyncNs, r.oursNs)} | ${ratio(r.addonAsyncNs, r.oursNs)} |`,
    );
  }
}

if (require.main === module) void runEnvelopeBench().then(printEnvelopeTable);
