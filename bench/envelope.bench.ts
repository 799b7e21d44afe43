/**
 * Warm encrypt and decrypt of 64 B, 1 KiB and 64 KiB through our async API, in one run, against
 * (a) the raw node:crypto work of the same operation (two AES-GCM operations, a random DRK and nonce drawn from a
 *     pool, JSON and base64): the floor any implementation on node:crypto pays, and
 * (b) the Rust implementation through its Node addon (asherah-linux-x64-gnu), same config (memory metastore,
 *     static KMS), its synchronous and its async calls.
 * (c) with `--baseline=<git ref>`, the layer of that commit, for before/after ratios in the same run.
 * "Ours" is the layer as build:layer bundles it (bench/baseline.ts), the code Lambda runs.
 * The bar: at least 1.0x the addon's synchronous ops/s at 64 B and 1 KiB, encrypt and decrypt.
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { bundleLayers, loadLayer, type LayerApi } from './baseline';
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
  /** With a baseline: its ns/op, and the addon's sync ns/op measured in the same processes as it. */
  baselineNs?: number;
  baselineAddonSyncNs?: number;
}

export interface EnvelopeResult {
  rows: EnvelopeRow[];
  /** The commit measured as the baseline, if any. */
  baselineName?: string;
}

/** Each tree's processes, in the order A B B A: drift over the run weighs on both alike. */
const BASELINE_ORDER = ['current', 'baseline', 'baseline', 'current'] as const;

/**
 * With a baseline, each layer is measured in processes of its own (the order above), each against the Rust addon:
 * two layers in one process are not measured alike (with the addon there, whichever was set up first ran 7–15%
 * slower, though both were the same code). The addon is the yardstick that makes the processes comparable.
 */
export async function runEnvelopeBench(options: { baseline?: string } = {}): Promise<EnvelopeResult> {
  const bundles = bundleLayers(options.baseline);
  if (bundles.baseline === undefined) return { rows: await measureLayer(loadLayer(bundles.current)) };
  const runs = { current: [] as EnvelopeRow[][], baseline: [] as EnvelopeRow[][] };
  for (const which of BASELINE_ORDER) runs[which].push(measureInChild(bundles[which]!));
  const ours = combine(runs.current);
  const before = combine(runs.baseline);
  const rows = ours.map((row, i) => ({ ...row, baselineNs: before[i].oursNs, baselineAddonSyncNs: before[i].addonSyncNs }));
  return { rows, baselineName: bundles.baselineName };
}

function measureInChild(layerFile: string): EnvelopeRow[] {
  const out = execFileSync(process.execPath, [...process.execArgv, __filename, `--layer=${layerFile}`], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(out) as EnvelopeRow[];
}

/** Row by row, the median of each measurement over the runs. */
function combine(runs: EnvelopeRow[][]): EnvelopeRow[] {
  const mid = (values: (number | undefined)[]) => {
    const known = values.filter((v): v is number => v !== undefined).sort((a, b) => a - b);
    if (known.length === 0) return undefined;
    const half = known.length / 2;
    return known.length % 2 === 1 ? known[Math.floor(half)] : (known[half - 1] + known[half]) / 2;
  };
  return runs[0].map((row, i) => {
    const at = (key: keyof EnvelopeRow) => mid(runs.map((run) => run[i][key] as number | undefined));
    return { ...row, oursNs: at('oursNs')!, rawNs: at('rawNs')!, addonSyncNs: at('addonSyncNs'), addonAsyncNs: at('addonAsyncNs') };
  });
}

/** One layer against raw node:crypto and the addon, in this process. */
async function measureLayer(ours: LayerApi): Promise<EnvelopeRow[]> {
  const addon = loadAddon();
  const partition = 'bench';
  ours.setup({ ServiceName: 'service', ProductID: 'product', Metastore: 'memory', KMS: 'test-debug-static', EnableSessionCaching: true });
  addon?.setup({ serviceName: 'service', productId: 'product', metastore: 'memory', kms: 'test-debug-static', enableSessionCaching: true });
  const raw = new RawEnvelope();
  const rows: EnvelopeRow[] = [];
  try {
    for (const [size, bytes, ops] of [['64 B', 64, 4000], ['1 KiB', 1024, 4000], ['64 KiB', 65536, 400]] as const) {
      const data = randomBytes(bytes);
      const ourDrr = await ours.encryptAsync(partition, data);
      const rawDrr = raw.encrypt(data);
      const addonDrr = addon ? Buffer.from(addon.encrypt(partition, data)) : undefined;
      const enc = await measureGroup(
        [
          { name: 'ours', run: () => ours.encryptAsync(partition, data) },
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
          { name: 'ours', run: () => ours.decryptAsync(partition, ourDrr) },
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
    ours.shutdown();
    addon?.shutdown();
  }
  return rows;
}

export function printEnvelopeTable({ rows, baselineName }: EnvelopeResult): void {
  const opsPerSec = (ns: number | undefined) => (ns === undefined ? 'n/a' : Math.round(1e9 / ns).toLocaleString('en-US'));
  const ratio = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? 'n/a' : `${(a / b).toFixed(2)}x`;
  console.log('\n## Envelope encryption, warm (ops/s, higher is better)\n');
  if (baselineName) {
    console.log(
      `Baseline: the layer at ${baselineName}, bundled the same way and measured in the same run, in processes of ` +
        'its own. "ours / baseline" compares their speeds relative to the Rust addon measured beside each.\n',
    );
  }
  const columns = ['op', 'size', 'ours (async)', 'raw node:crypto', 'Rust addon sync', 'Rust addon async', 'ours / raw', 'ours / addon sync', 'ours / addon async'];
  if (baselineName) columns.push('baseline (async)', 'baseline / addon sync', 'ours / baseline');
  console.log(`| ${columns.join(' | ')} |`);
  console.log(`|---|---|${columns.slice(2).map(() => '---:').join('|')}|`);
  for (const r of rows) {
    const cells = [
      r.operation, r.size, opsPerSec(r.oursNs), opsPerSec(r.rawNs), opsPerSec(r.addonSyncNs), opsPerSec(r.addonAsyncNs),
      ratio(r.rawNs, r.oursNs), ratio(r.addonSyncNs, r.oursNs), ratio(r.addonAsyncNs, r.oursNs),
    ];
    if (baselineName) cells.push(opsPerSec(r.baselineNs), ratio(r.baselineAddonSyncNs, r.baselineNs), oursOverBaseline(r));
    console.log(`| ${cells.join(' | ')} |`);
  }
}

/** Ours over the baseline, each as a multiple of the addon's speed in its own processes (raw ns if no addon). */
function oursOverBaseline(r: EnvelopeRow): string {
  if (r.baselineNs === undefined) return 'n/a';
  const ours = r.addonSyncNs === undefined ? 1 / r.oursNs : r.addonSyncNs / r.oursNs;
  const before = r.baselineAddonSyncNs === undefined ? 1 / r.baselineNs : r.baselineAddonSyncNs / r.baselineNs;
  return `${(ours / before).toFixed(2)}x`;
}

/** `--baseline=<git ref>` from the command line, if given. */
export function baselineArgument(): string | undefined {
  return argument('baseline');
}

function argument(name: string, argv = process.argv.slice(2)): string | undefined {
  return argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) || undefined;
}

if (require.main === module) {
  const layerFile = argument('layer');
  // --layer=<bundle>: one process of a --baseline run, which reads the rows as JSON from stdout.
  if (layerFile) void measureLayer(loadLayer(layerFile)).then((rows) => process.stdout.write(JSON.stringify(rows)));
  else void runEnvelopeBench({ baseline: baselineArgument() }).then(printEnvelopeTable);
}
