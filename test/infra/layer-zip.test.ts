/**
 * The layer zip, built fresh from the current sources: what is in it, that it works the way Lambda uses it
 * (unzipped under /opt, found through NODE_PATH by a CommonJS require or an ES module's createRequire, with no
 * @aws-sdk and no project node_modules in reach), and that its declarations type a user's code.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import AdmZip from 'adm-zip';
import ts from 'typescript';
import { buildLayer, emitLayerDeclarations, LAYER_ZIP_LIMIT_BYTES, type LayerBuild } from '../../layer/build';

const NM = 'nodejs/node_modules';
const ROOT = path.resolve(__dirname, '..', '..');
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

  test('asherah-layer is one CommonJS index.js, its type declarations, and a package.json naming both', () => {
    const files = names.filter((n) => n.startsWith(`${NM}/asherah-layer/`)).map((n) => n.slice(`${NM}/asherah-layer/`.length));
    expect(files.filter((f) => !f.endsWith('.d.ts')).sort()).toEqual(['index.js', 'package.json']);
    expect(files).toContain('index.d.ts');
    const pkg = JSON.parse(text(`${NM}/asherah-layer/package.json`)) as Record<string, unknown>;
    expect(pkg).toMatchObject({
      name: 'asherah-layer',
      main: 'index.js',
      type: 'commonjs',
      types: 'index.d.ts',
      // import and require both reach the one CommonJS build: one module instance per process.
      exports: { '.': { types: './index.d.ts', require: './index.js', import: './index.js' }, './package.json': './package.json' },
    });
    // "types" comes first: TypeScript takes the first condition that matches.
    expect(Object.keys((pkg.exports as Record<string, object>)['.']!)[0]).toBe('types');
    const index = text(`${NM}/asherah-layer/index.js`);
    expect(index).toContain('module.exports');
    expect(index).not.toMatch(/require\("\.\.?\//); // one file: no relative requires left
  });

  test('the declarations import only each other, Node\'s modules and the two AWS SDK clients', () => {
    const dir = `${NM}/asherah-layer/`;
    const declarations = names.filter((n) => n.startsWith(dir) && n.endsWith('.d.ts'));
    const external = new Set<string>();
    for (const file of declarations) {
      for (const [, spec] of text(file).matchAll(/(?:from\s+|import\(\s*|<reference types=)['"]([^'"]+)['"]/g)) {
        if (spec!.startsWith('.')) {
          // Relative imports keep the sources' .js suffix, which TypeScript maps to the .d.ts beside it.
          const target = path.posix.join(path.posix.dirname(file), spec!.replace(/\.js$/, '.d.ts'));
          expect([file, names.includes(target)]).toEqual([file, true]);
        } else {
          external.add(spec!.startsWith('node:') ? 'node:*' : spec!);
        }
      }
    }
    // What a TypeScript user installs for full types (docs/using-the-layer.md): @types/node and these clients.
    expect([...external].sort()).toEqual(['@aws-sdk/client-dynamodb', '@aws-sdk/client-kms', 'node:*']);
  });

  test('the declarations are what tsc emits from layer/src now (the build\'s cache is not stale)', () => {
    const fresh = emitLayerDeclarations();
    const shipped = names.filter((n) => n.endsWith('.d.ts'));
    expect(shipped.map((n) => n.slice(`${NM}/asherah-layer/`.length))).toEqual([...fresh.keys()]);
    for (const [file, data] of fresh) expect([file, text(`${NM}/asherah-layer/${file}`)]).toEqual([file, data.toString()]);
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
    // TypeScript sources are out; their declarations (.d.ts) are in.
    expect(names.filter((n) => /\.(test|spec)\.|\/tests?\/|(?<!\.d)\.ts$|\.map$|\.md$|\/(src|doc|vendor)\/.*\.(cc|hh|c|h|inc)$/.test(n))).toEqual([]);
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

/**
 * The declarations as a TypeScript user gets them: the package unzipped into a project beside @types/node and the
 * AWS SDK clients (their own installs, as docs/using-the-layer.md says), and a tsconfig.json of the project's.
 */
describe('types', () => {
  let app: string;

  beforeAll(() => {
    app = path.join(tmp, 'types-app');
    const modules = path.join(app, 'node_modules');
    // Twice: installed under node_modules (resolved through package.json's exports), and unzipped into vendor/
    // (as docs/using-the-layer.md says) for a tsconfig `paths` entry to name.
    for (const target of [path.join(modules, 'asherah-layer'), path.join(app, 'vendor', NM, 'asherah-layer')]) {
      for (const entry of zip.getEntries()) {
        if (entry.isDirectory || !entry.entryName.startsWith(`${NM}/asherah-layer/`)) continue;
        const file = path.join(target, entry.entryName.slice(`${NM}/asherah-layer/`.length));
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, entry.getData());
      }
    }
    for (const scope of ['@types', '@aws-sdk']) symlinkSync(path.join(ROOT, 'node_modules', scope), path.join(modules, scope), 'dir');
    writeFileSync(path.join(app, 'package.json'), '{ "private": true }\n'); // no "type": .ts is CommonJS, .mts ESM
  });

  const session = `
    const secrets = new layer.SecretFactory();
    const factory = layer.SessionFactory.create({
      serviceName: 'service', productId: 'product', metastore: new layer.MemoryMetastore(),
      kms: new layer.StaticKms('ab'.repeat(32), secrets), secrets,
    });
    export async function roundTrip(partition: string, data: Uint8Array): Promise<Buffer> {
      const session: Session = factory.getSession(partition);
      const drr: DataRowRecord = await session.encrypt(data);
      return session.decrypt(drr);
    }
  `;
  const esmHeader = `
    import { createRequire } from 'node:module';
    import type { DataRowRecord, Session } from 'asherah-layer';
    const layer = createRequire(import.meta.url)('asherah-layer') as typeof import('asherah-layer');
  `;

  /**
   * Type-checks `files` (written into the project) with `compilerOptions`; the errors in them and in the package,
   * whose declarations must come from `packageDir`.
   */
  function typeCheck(files: Record<string, string>, compilerOptions: Record<string, unknown>, packageDir = 'node_modules/asherah-layer'): string[] {
    for (const [file, source] of Object.entries(files)) writeFileSync(path.join(app, file), source);
    const configFile = path.join(app, 'tsconfig.json');
    writeFileSync(configFile, JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, types: ['node'], skipLibCheck: false, ...compilerOptions },
      files: Object.keys(files),
    }));
    const config = ts.getParsedCommandLineOfConfigFile(configFile, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
    expect(config?.errors).toEqual([]);
    const program = ts.createProgram(config!.fileNames, config!.options);
    // Only these files and the package's declarations are checked: @types/node and the SDK are not ours to check.
    const ours = program.getSourceFiles().filter((f) => f.fileName.startsWith(app) && !f.fileName.includes('/node_modules/@'));
    const declarations = ours.filter((f) => f.fileName.endsWith('.d.ts')).map((f) => path.relative(app, f.fileName));
    expect(declarations).toContain(`${packageDir}/index.d.ts`);
    expect(declarations.filter((f) => !f.startsWith(`${packageDir}/`))).toEqual([]);
    const diagnostics = [
      ...program.getOptionsDiagnostics(),
      ...program.getGlobalDiagnostics(),
      ...ours.flatMap((f) => [...program.getSyntacticDiagnostics(f), ...program.getSemanticDiagnostics(f)]),
    ];
    return diagnostics.map((d) => {
      const where = d.file ? `${path.relative(app, d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start!).line + 1}` : '';
      return `${where} TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
    });
  }

  test('from node_modules (nodenext): a CommonJS import, the ES module createRequire pattern, and the declarations check', () => {
    const errors = typeCheck(
      {
        'handler.ts': `import * as layer from 'asherah-layer';\nimport type { DataRowRecord, Session } from 'asherah-layer';\n${session}`,
        'handler.mts': `${esmHeader}\n${session}`,
      },
      { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022' },
    );
    expect(errors).toEqual([]);
  });

  test('misused, the API fails to type-check: the types are real, not any', () => {
    const source = `${esmHeader}
      const secrets = new layer.SecretFactory();
      const factory = layer.SessionFactory.create({
        serviceName: 'service', productId: 'product', metastore: new layer.MemoryMetastore(),
        kms: new layer.StaticKms('ab'.repeat(32), secrets), secrets,
      });
      export const notBytes = factory.getSession('partition').encrypt(123);
      export const noMetastore = layer.SessionFactory.create({ serviceName: 's', productId: 'p', kms: new layer.StaticKms('ab'.repeat(32), secrets), secrets });
      export const notADrr = async (session: Session) => session.decrypt({ data: 'x' } as { data: string });
      export const drrs: DataRowRecord[] = [];
    `;
    const line = (marker: string) => source.split('\n').findIndex((l) => l.includes(marker)) + 1;
    const errors = typeCheck({ 'misuse.mts': source }, { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022' });
    expect(errors).toEqual([
      expect.stringMatching(new RegExp(`^misuse\\.mts:${line('notBytes')} TS2345 Argument of type 'number' is not assignable to parameter of type 'string \\| Uint8Array`)),
      expect.stringMatching(new RegExp(`^misuse\\.mts:${line('noMetastore')} TS2345 .*Property 'metastore' is missing`)),
      expect.stringMatching(new RegExp(`^misuse\\.mts:${line('notADrr')} TS2345 .*not assignable to parameter of type 'DataRowRecord'`)),
    ]);
  });

  // The path names index.d.ts itself: under nodenext an ES module importer does not resolve a mapped directory.
  const vendored = { paths: { 'asherah-layer': [`./vendor/${NM}/asherah-layer/index.d.ts`] } };

  test('vendored and named by a tsconfig path: an ES module (nodenext) and bundler-resolved code check', () => {
    expect(typeCheck({ 'vendored.mts': `${esmHeader}\n${session}` }, { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', ...vendored }, `vendor/${NM}/asherah-layer`)).toEqual([]);
    const errors = typeCheck(
      {
        'bundled.ts': `import { SessionFactory, MemoryMetastore, SecretFactory, StaticKms, type DataRowRecord, type Session } from 'asherah-layer';
          const layer = { SessionFactory, MemoryMetastore, SecretFactory, StaticKms };\n${session}`,
      },
      { module: 'preserve', moduleResolution: 'bundler', target: 'es2022', ...vendored },
      `vendor/${NM}/asherah-layer`,
    );
    expect(errors).toEqual([]);
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

(linuxHost ? test : test.skip)('from an ES module: a bare import is not found through NODE_PATH; createRequire and the file path get the one CommonJS instance', () => {
  const opt = path.join(tmp, 'opt-esm');
  zip.extractAllTo(opt, true, true);
  const nodeModules = path.join(opt, 'nodejs', 'node_modules');
  const script = `
    import { createRequire } from 'node:module';
    import { pathToFileURL } from 'node:url';
    const required = createRequire(import.meta.url)('asherah-layer');
    const outcome = (promise) => promise.then((ns) => ns.SessionFactory === required.SessionFactory ? 'same instance' : 'another instance', (err) => err.code);
    const byPath = await import(pathToFileURL(${JSON.stringify(path.join(nodeModules, 'asherah-layer', 'index.js'))}).href);
    console.log(JSON.stringify({
      required: createRequire(import.meta.url).resolve('asherah-layer'),
      bare: await outcome(import('asherah-layer')),
      byPath: await outcome(Promise.resolve(byPath)),
      // Node finds the named exports through the annotation esbuild writes at the end of index.js.
      namedByPath: Object.keys(byPath).filter((name) => name !== 'default').sort(),
      defaultByPath: byPath.default === required,
      requiredNames: Object.keys(required).sort(),
    }));
  `;
  const run = (dir: string) => {
    writeFileSync(path.join(dir, 'check.mjs'), script);
    const out = execFileSync(process.execPath, [path.join(dir, 'check.mjs')], {
      cwd: dir,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_PATH: nodeModules },
    });
    return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
  };
  const lambdaLike = mkdtempSync(path.join(os.tmpdir(), 'asherah-layer-esm-'));
  // A node_modules on the module's path (a bundler's or an installer's layout): the bare import resolves through
  // package.json's "import" condition, to the same CommonJS file.
  const installed = mkdtempSync(path.join(os.tmpdir(), 'asherah-layer-esm-'));
  symlinkSync(nodeModules, path.join(installed, 'node_modules'), 'dir');
  try {
    const inLambda = run(lambdaLike);
    expect(inLambda).toMatchObject({
      required: path.join(nodeModules, 'asherah-layer', 'index.js'),
      bare: 'ERR_MODULE_NOT_FOUND',
      byPath: 'same instance',
      defaultByPath: true,
    });
    expect(inLambda.namedByPath).toEqual(inLambda.requiredNames);
    expect(run(installed)).toMatchObject({ bare: 'same instance', byPath: 'same instance' });
  } finally {
    rmSync(lambdaLike, { recursive: true, force: true });
    rmSync(installed, { recursive: true, force: true });
  }
});
