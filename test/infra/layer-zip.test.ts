/**
 * The layer zip, built fresh from the current sources: what is in it, and that it works the way Lambda uses it
 * (unzipped under /opt, found through NODE_PATH by a CommonJS require, with no @aws-sdk and no project
 * node_modules in reach).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import AdmZip from 'adm-zip';
import { buildLayer, LAYER_ZIP_LIMIT_BYTES, type LayerBuild } from '../../layer/build';

const NM = 'nodejs/node_modules';
let tmp: string;
let build: LayerBuild;
let zip: AdmZip;
let names: string[];

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'asherah-layer-test-'));
  build = buildLayer({ outFile: path.join(tmp, 'asherah-layer.zip') });
  zip = new AdmZip(build.zipPath);
  names = zip.getEntries().map((e) => e.entryName);
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const text = (name: string) => zip.readAsText(name);

describe('contents', () => {
  test('everything is under nodejs/node_modules/, in the four packages the layer needs', () => {
    expect(names.filter((n) => !n.startsWith(`${NM}/`))).toEqual([]);
    const packages = new Set(names.map((n) => n.split('/').slice(2, n.split('/')[2]!.startsWith('@') ? 4 : 3).join('/')));
    expect([...packages].sort()).toEqual(['@koromix/koffi-linux-arm64', '@koromix/koffi-linux-x64', 'asherah-layer', 'koffi']);
  });

  test('asherah-layer is one CommonJS index.js and a package.json naming it', () => {
    expect(names.filter((n) => n.startsWith(`${NM}/asherah-layer/`)).sort()).toEqual([
      `${NM}/asherah-layer/index.js`,
      `${NM}/asherah-layer/package.json`,
    ]);
    const pkg = JSON.parse(text(`${NM}/asherah-layer/package.json`)) as Record<string, unknown>;
    expect(pkg).toMatchObject({ name: 'asherah-layer', main: 'index.js', type: 'commonjs' });
    const index = text(`${NM}/asherah-layer/index.js`);
    expect(index).toContain('module.exports');
    expect(index).not.toMatch(/require\("\.\.?\//); // one file: no relative requires left
  });

  test('koffi is its CommonJS entry, the files it requires, its licence and package.json: no sources, docs or build scripts', () => {
    expect(names.filter((n) => n.startsWith(`${NM}/koffi/`)).map((n) => n.slice(`${NM}/koffi/`.length)).sort()).toEqual([
      'LICENSE.txt',
      'index.cjs',
      'package.json',
      'src/koffi/index.cjs',
      'src/koffi/src/static.cjs',
    ]);
    const pkg = JSON.parse(text(`${NM}/koffi/package.json`)) as Record<string, unknown>;
    expect(pkg).toMatchObject({ name: 'koffi', main: './index.cjs' });
    expect(pkg).not.toHaveProperty('scripts');
  });

  test('koffi\'s native binaries for linux x64 and arm64 (glibc, as Lambda, and musl), each built for its machine', () => {
    const machines: Record<string, number> = { x64: 62, arm64: 183 };
    for (const arch of ['x64', 'arm64']) {
      const dir = `${NM}/@koromix/koffi-linux-${arch}`;
      expect(names.filter((n) => n.startsWith(`${dir}/`)).sort()).toEqual([
        `${dir}/index.js`,
        `${dir}/linux_${arch}/koffi.node`,
        `${dir}/musl_${arch}/koffi.node`,
        `${dir}/package.json`,
      ]);
      for (const flavour of ['linux', 'musl']) {
        const binary = zip.readFile(`${dir}/${flavour}_${arch}/koffi.node`)!;
        expect(binary.readUInt32BE(0)).toBe(0x7f454c46); // ELF
        expect(binary.readUInt16LE(18)).toBe(machines[arch]);
      }
    }
  });

  test('no @aws-sdk, no better-sqlite3, no tests, sources, docs or source maps', () => {
    expect(names.filter((n) => /@aws-sdk|better-sqlite3/.test(n))).toEqual([]);
    expect(names.filter((n) => /\.(test|spec)\.|\/tests?\/|\.ts$|\.map$|\.md$|\/(src|doc|vendor)\/.*\.(cc|hh|c|h|inc)$/.test(n))).toEqual([]);
  });

  test(`is at most ${LAYER_ZIP_LIMIT_BYTES} bytes`, () => {
    expect(readFileSync(build.zipPath).length).toBe(build.zipBytes);
    expect(build.zipBytes).toBeLessThanOrEqual(LAYER_ZIP_LIMIT_BYTES);
  });

  test('entries are sorted, with one fixed time, so a rebuild is byte for byte the same', () => {
    const entries = zip.getEntries();
    expect(names).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    expect(new Set(entries.map((e) => e.header.time.getTime())).size).toBe(1);
    const again = buildLayer({ outFile: path.join(tmp, 'again.zip') });
    const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
    expect(sha(again.zipPath)).toBe(sha(build.zipPath));
  });

  test('native binaries are executable (0755) and the rest 0644, whatever the build host\'s modes', () => {
    for (const entry of zip.getEntries()) {
      const mode = (entry.header.attr >>> 16) & 0o777;
      expect([entry.entryName, mode]).toEqual([entry.entryName, entry.entryName.endsWith('.node') ? 0o755 : 0o644]);
    }
  });
});

// koffi has binaries for Linux x64 and arm64 only in this layer: on another host the load test cannot run.
const linuxHost = process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64');
const libc = () =>
  (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime ? 'linux' : 'musl';

(linuxHost ? test : test.skip)('unzipped as in /opt, required through NODE_PATH, it locks a secret and encrypts and decrypts', () => {
  const opt = path.join(tmp, 'opt');
  zip.extractAllTo(opt, true, true);
  // Run from a folder with no node_modules above it, so only NODE_PATH can find anything, as in Lambda.
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'asherah-layer-cwd-'));
  const script = `
    const layer = require('asherah-layer');
    const canResolve = (name) => { try { require.resolve(name); return true; } catch { return false; } };
    (async () => {
      const secrets = new layer.SecretFactory();
      const secret = secrets.createRandom(32);
      const secretLength = secret.length;
      secret.close();
      const kms = new layer.StaticKms('${'ab'.repeat(32)}', secrets);
      const factory = layer.SessionFactory.create({
        serviceName: 'service', productId: 'product', metastore: new layer.MemoryMetastore(), kms, secrets,
      });
      const session = factory.getSession('partition-1');
      const drr = await session.encrypt(Buffer.from('hello from the layer'));
      const plaintext = (await session.decrypt(drr)).toString();
      session.close();
      const lockedBytes = factory.metrics().secureMemory.lockedBytes;
      await factory.close();
      kms.close();
      secrets.close();
      console.log(JSON.stringify({
        secretLength, plaintext, lockedBytes,
        layer: require.resolve('asherah-layer'),
        koffi: require.resolve('koffi'),
        nativeModules: Object.keys(require.cache).filter((f) => f.endsWith('.node')),
        awsSdk: canResolve('@aws-sdk/client-kms'),
        betterSqlite3: canResolve('better-sqlite3'),
      }));
    })().catch((err) => { console.error(err); process.exit(1); });
  `;
  const nodeModules = path.join(opt, 'nodejs', 'node_modules');
  try {
    const out = execFileSync(process.execPath, ['-e', script], {
      cwd,
      encoding: 'utf8',
      // Lambda's NODE_PATH, with /opt moved here (/var/runtime is not on this machine).
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_PATH: [path.join(opt, 'nodejs', 'node22', 'node_modules'), nodeModules].join(path.delimiter) },
    });
    const result = JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(result).toEqual({
      secretLength: 32,
      plaintext: 'hello from the layer',
      lockedBytes: expect.any(Number),
      layer: path.join(nodeModules, 'asherah-layer', 'index.js'),
      koffi: path.join(nodeModules, 'koffi', 'index.cjs'),
      // koffi's loader picks linux_<arch> on glibc (Lambda's Amazon Linux 2023), musl_<arch> on musl.
      nativeModules: [path.join(nodeModules, '@koromix', `koffi-linux-${process.arch}`, `${libc()}_${process.arch}`, 'koffi.node')],
      awsSdk: false,
      betterSqlite3: false,
    });
    expect(result.lockedBytes as number).toBeGreaterThan(0);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});
