/**
 * Builds the Lambda layer zip (`npm run build:layer`, and infra/app.ts before every synth):
 *
 *   nodejs/node_modules/asherah-layer/          layer/src bundled by esbuild into one CommonJS index.js, and its type
 *                                               declarations (index.d.ts and the .d.ts it imports, by tsc's emitter)
 *   nodejs/node_modules/koffi/                  only the files koffi's CommonJS entry loads at run time
 *   nodejs/node_modules/@koromix/koffi-linux-x64/    koffi's native binaries, one package per architecture
 *   nodejs/node_modules/@koromix/koffi-linux-arm64/
 *
 * Lambda puts /opt/nodejs/node_modules on NODE_PATH, so a function's CommonJS require('asherah-layer') finds the
 * package, and the package's require('koffi') finds koffi beside it (an ES module cannot import it by name, as
 * Node's ESM resolver ignores NODE_PATH: docs/using-the-layer.md shows what works, and how to get the types).
 * @aws-sdk/* is left out (the runtime provides it; a copy here would shadow the runtime's) and so is better-sqlite3
 * (only the SQLite metastore loads it, on first use). The native packages come from node_modules when they are
 * installed at koffi's version, otherwise from the npm registry with `npm pack` (checked against package-lock.json's
 * integrity and cached under node_modules/.cache/asherah-layer/). The declarations are cached there too, keyed by
 * everything that shapes them (a compile takes seconds; the rest of the build well under one). The zip is
 * deterministic: sorted entries, fixed times and modes.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import AdmZip from 'adm-zip';
import { buildSync } from 'esbuild';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '..');
export const LAYER_PACKAGE = 'asherah-layer';
export const DEFAULT_LAYER_ZIP = path.join(ROOT, 'dist', 'asherah-layer.zip');
const DEFAULT_CACHE_DIR = path.join(ROOT, 'node_modules', '.cache', 'asherah-layer');
/** The most the layer zip may weigh: a layer this small keeps cold starts and deploys quick. */
export const LAYER_ZIP_LIMIT_BYTES = 3 * 1024 * 1024;
const NODE_MODULES = 'nodejs/node_modules';

/** Lambda's two architectures, by Node's process.arch (koffi names its packages and folders after it). */
const ARCHITECTURES = { x64: { elfMachine: 62 }, arm64: { elfMachine: 183 } } as const;
type Arch = keyof typeof ARCHITECTURES;

/** Every entry gets this time. DOS times are local fields; a Date made from local fields gives the same bytes in any TZ. */
const ZIP_TIME = new Date(2000, 0, 1, 0, 0, 0);

export interface BuildLayerOptions {
  /** Default dist/asherah-layer.zip. */
  outFile?: string;
  /** Where `npm pack` tarballs and the emitted declarations are kept between builds. Default node_modules/.cache/asherah-layer. */
  cacheDir?: string;
  /**
   * Also ship koffi's musl binaries. Lambda (Amazon Linux 2023) is glibc and koffi's loader picks linux_<arch>
   * there; the musl builds (about 330 KB each, compressed) let the same tree run in Alpine-based containers.
   * Default true: the zip stays well under the floor with them.
   */
  musl?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface LayerEntry {
  path: string;
  bytes: number;
  compressedBytes: number;
}

export interface LayerBuild {
  zipPath: string;
  zipBytes: number;
  entries: LayerEntry[];
  /** Where each native package came from: node_modules, or the npm registry (or its cached tarball). */
  nativeSources: Record<string, string>;
}

interface StagedFile {
  data: Buffer;
  executable: boolean;
}

/** Reads files of one npm package, wherever it is (an installed folder or a registry tarball). */
interface PackageSource {
  describe: string;
  read(file: string): Buffer | undefined;
}

export function buildLayer(options: BuildLayerOptions = {}): LayerBuild {
  const outFile = path.resolve(options.outFile ?? DEFAULT_LAYER_ZIP);
  const cacheDir = options.cacheDir ?? DEFAULT_CACHE_DIR;
  const musl = options.musl ?? true;
  const log = options.log ?? (() => undefined);

  const staged = new Map<string, StagedFile>();
  const stage = (file: string, data: Buffer, executable = false) => staged.set(`${NODE_MODULES}/${file}`, { data, executable });

  // The SDK itself: one CommonJS file; koffi, better-sqlite3 and the AWS SDK are required at run time.
  const rootPackage = readJson(path.join(ROOT, 'package.json')) as { version: string; license: string };
  const koffiDir = packageDir('koffi');
  const koffiPackage = readJson(path.join(koffiDir, 'package.json')) as Record<string, unknown> & { version: string };
  stage(`${LAYER_PACKAGE}/index.js`, bundleLayer());
  for (const [file, text] of cachedDeclarations(cacheDir, log)) stage(`${LAYER_PACKAGE}/${file}`, text);
  stage(`${LAYER_PACKAGE}/package.json`, json({
    name: LAYER_PACKAGE,
    version: rootPackage.version,
    description: 'Asherah-compatible envelope encryption with keys in locked memory (Lambda layer build of layer/src)',
    license: rootPackage.license,
    type: 'commonjs',
    main: 'index.js',
    // For TypeScript's older resolution modes, which ignore `exports`.
    types: 'index.d.ts',
    exports: {
      '.': {
        types: './index.d.ts',
        require: './index.js',
        // The same CommonJS file, not a second (ESM) build: whoever imports and whoever requires the package in one
        // process share one module instance, so one secure-memory arena and one set of key caches. Node gives an
        // importer the named exports through the export-names annotation esbuild writes at the end of index.js.
        import: './index.js',
      },
      './package.json': './package.json',
    },
    dependencies: { koffi: koffiPackage.version },
  }));

  // koffi: its CommonJS entry and what that requires, nothing else (no sources, docs, vendored headers, or the
  // cnoke build scripts that only `npm install` runs).
  for (const file of relativeRequireClosure(koffiDir, 'index.cjs')) stage(`koffi/${file}`, readFileSync(path.join(koffiDir, file)));
  stage('koffi/LICENSE.txt', readFileSync(path.join(koffiDir, 'LICENSE.txt')));
  stage('koffi/package.json', json(trimKoffiPackage(koffiPackage)));

  // koffi's loader requires @koromix/koffi-<platform>-<arch>, whose index.js picks linux_<arch> on glibc and
  // musl_<arch> on musl (it reads the ELF interpreter of node itself).
  const nativeSources: Record<string, string> = {};
  for (const arch of Object.keys(ARCHITECTURES) as Arch[]) {
    const name = `@koromix/koffi-linux-${arch}`;
    const source = nativePackage(name, koffiPackage.version, cacheDir, log);
    nativeSources[name] = source.describe;
    stage(`${name}/package.json`, need(source, 'package.json'));
    stage(`${name}/index.js`, need(source, 'index.js'));
    const flavours = musl ? ['linux', 'musl'] : ['linux'];
    for (const flavour of flavours) {
      const file = `${flavour}_${arch}/koffi.node`;
      const binary = need(source, file);
      checkElfMachine(binary, ARCHITECTURES[arch].elfMachine, `${name}/${file}`);
      stage(`${name}/${file}`, binary, true);
    }
  }

  const zip = new AdmZip(undefined, { noSort: true });
  for (const file of [...staged.keys()].sort(byCodePoint)) {
    const { data, executable } = staged.get(file)!;
    const entry = zip.addFile(file, data, '', executable ? 0o755 : 0o644);
    entry.header.time = ZIP_TIME;
    entry.header.made = 0x0314; // Unix, zip 2.0: the same bytes on every build host
  }
  const buffer = zip.toBuffer();
  if (buffer.length > LAYER_ZIP_LIMIT_BYTES) {
    throw new Error(
      `the layer zip is ${buffer.length} bytes, over the ${LAYER_ZIP_LIMIT_BYTES}-byte floor; ` +
        'see what grew with `npm run build:layer` (it prints the contents)',
    );
  }
  mkdirSync(path.dirname(outFile), { recursive: true });
  const partial = `${outFile}.${process.pid}.tmp`;
  writeFileSync(partial, buffer);
  renameSync(partial, outFile); // atomic: a concurrent reader sees the old zip or the new one, never half of one

  const entries = zip.getEntries().map((e) => ({
    path: e.entryName,
    bytes: e.header.size,
    compressedBytes: e.header.compressedSize,
  }));
  log(`built ${path.relative(process.cwd(), outFile)} (${buffer.length} bytes)`);
  return { zipPath: outFile, zipBytes: buffer.length, entries, nativeSources };
}

/** layer/src of the tree at `root` (this checkout by default; the bench bundles older commits too) as one file. */
export function bundleLayer(root = ROOT): Buffer {
  const result = buildSync({
    absWorkingDir: root,
    entryPoints: ['layer/src/index.ts'],
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    // Not minified: stack traces in the function's logs stay readable, and it compresses to about 30 KB.
    external: ['koffi', 'better-sqlite3', '@aws-sdk/*'],
    write: false,
    outfile: 'index.js',
    logLevel: 'warning',
  });
  return Buffer.from(result.outputFiles[0]!.contents);
}

const LAYER_SRC = path.join(ROOT, 'layer', 'src');

/**
 * The compiler options for the declarations: the project's tsconfig.json, so the layer is typed as `npm run
 * typecheck` checks it, with declaration-only output and the options that would change or break it overridden.
 */
function declarationOptions(): ts.CompilerOptions {
  const file = path.join(ROOT, 'tsconfig.json');
  const read = ts.readConfigFile(file, (f) => ts.sys.readFile(f));
  if (read.error) throw new Error(`tsconfig.json: ${ts.flattenDiagnosticMessageText(read.error.messageText, '\n')}`);
  const { options, errors } = ts.convertCompilerOptionsFromJson((read.config as { compilerOptions?: unknown }).compilerOptions, ROOT, file);
  if (errors.length > 0) throw new Error(`tsconfig.json: ${ts.flattenDiagnosticMessageText(errors[0]!.messageText, '\n')}`);
  return {
    ...options,
    // The repo's own alias for asherah-layer: the layer's sources never import themselves by name.
    paths: undefined,
    baseUrl: undefined,
    noEmit: false,
    declaration: true,
    emitDeclarationOnly: true,
    declarationMap: false,
    sourceMap: false,
    inlineSourceMap: false,
    // Kept: the declarations show @internal members (stripping the constructors would declare public no-argument ones).
    stripInternal: false,
    rootDir: LAYER_SRC,
    // Never written: emit() below hands every file to a callback.
    outDir: path.join(ROOT, 'dist', 'asherah-layer-declarations'),
    // Only Node's types: jest's globals must not leak into what the layer declares.
    types: ['node'],
    // Lint-like checks say nothing about the declarations; they are `npm run typecheck`'s job.
    noUnusedLocals: false,
    noUnusedParameters: false,
    newLine: ts.NewLineKind.LineFeed, // the same bytes on every build host
    incremental: false,
    composite: false,
  };
}

/**
 * layer/src/index.ts's declarations and those of every source file it reaches, by path inside the package (index.d.ts,
 * appencryption/session.d.ts, …): tsc's emitter, so they are the sources' own types. Throws when tsc cannot emit a
 * declaration; a type error elsewhere in layer/src only goes to `log` (`npm run typecheck` fails on it, and a layer
 * build, run before every synth, should not stop while someone is halfway through an edit).
 */
export function emitLayerDeclarations(log: (line: string) => void = () => undefined): Map<string, Buffer> {
  const options = declarationOptions();
  const program = ts.createProgram([path.join(LAYER_SRC, 'index.ts')], options);
  const files = new Map<string, Buffer>();
  const emitted = program.emit(undefined, (fileName, text) => {
    files.set(path.relative(options.outDir!, fileName).split(path.sep).join('/'), Buffer.from(text));
  });
  const host = { getCanonicalFileName: (f: string) => f, getCurrentDirectory: () => ROOT, getNewLine: () => '\n' };
  const errors = (diagnostics: readonly ts.Diagnostic[]) => diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error);
  const emitErrors = errors(emitted.diagnostics);
  if (emitErrors.length > 0 || emitted.emitSkipped) {
    throw new Error(`the layer's type declarations were not emitted:\n${ts.formatDiagnostics(emitErrors, host)}`);
  }
  const typeErrors = errors(ts.getPreEmitDiagnostics(program));
  if (typeErrors.length > 0) {
    log(`warning: layer/src has type errors, so its declarations may be wrong:\n${ts.formatDiagnostics(typeErrors, host)}`);
  }
  return new Map([...files].sort(([a], [b]) => byCodePoint(a, b)));
}

/**
 * emitLayerDeclarations(), kept in `cacheDir` under a hash of what shapes its output: TypeScript's version, the
 * options, every file under layer/src, and package-lock.json (the versions of @types/node and the AWS SDK whose
 * types the declarations name).
 */
function cachedDeclarations(cacheDir: string, log: (line: string) => void): Map<string, Buffer> {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ typescript: ts.version, options: declarationOptions() }));
  for (const file of listFiles(LAYER_SRC)) hash.update(`\0${file}\0`).update(readFileSync(path.join(LAYER_SRC, file)));
  const lockFile = path.join(ROOT, 'package-lock.json');
  if (existsSync(lockFile)) hash.update('\0package-lock.json\0').update(readFileSync(lockFile));
  const key = hash.digest('hex');

  const cacheFile = path.join(cacheDir, 'declarations.json');
  if (existsSync(cacheFile)) {
    try {
      const cached = readJson(cacheFile) as { key?: string; files?: Record<string, string> };
      if (cached.key === key && cached.files) {
        return new Map(Object.entries(cached.files).map(([file, text]) => [file, Buffer.from(text)]));
      }
    } catch {
      // A torn or foreign file: emit again and replace it.
    }
  }
  log('emitting the type declarations');
  const files = emitLayerDeclarations(log);
  mkdirSync(cacheDir, { recursive: true });
  const partial = `${cacheFile}.${process.pid}.tmp`;
  writeFileSync(partial, JSON.stringify({ key, files: Object.fromEntries([...files].map(([f, data]) => [f, data.toString()])) }));
  renameSync(partial, cacheFile); // atomic, as for the zip: parallel test processes build side by side
  return files;
}

/** Every regular file under `dir`, as sorted paths relative to it. */
function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(path.join(dir, prefix), { withFileTypes: true })
    .flatMap((entry) => {
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      return entry.isDirectory() ? listFiles(dir, rel) : entry.isFile() ? [rel] : [];
    })
    .sort(byCodePoint);
}

/** `entry` and every file it reaches through relative require("./…") calls, as paths relative to `dir`. */
function relativeRequireClosure(dir: string, entry: string): string[] {
  const found = new Set<string>();
  const visit = (file: string) => {
    if (found.has(file)) return;
    const text = readFileSync(path.join(dir, file), 'utf8');
    found.add(file);
    for (const [, spec] of text.matchAll(/\brequire\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g)) {
      const target = path.posix.join(path.posix.dirname(file), spec!);
      const resolved = ['', '.cjs', '.js', '/index.cjs', '/index.js'].map((ext) => target + ext).find((f) => existsSync(path.join(dir, f)));
      if (resolved === undefined) throw new Error(`koffi/${file} requires ${spec}, which is not in ${dir}`);
      visit(resolved);
    }
  };
  visit(entry);
  return [...found].sort(byCodePoint);
}

/** koffi's package.json, pointing only at what the layer ships: the install script and other entries are gone. */
function trimKoffiPackage(pkg: Record<string, unknown>): Record<string, unknown> {
  const keep = ['name', 'version', 'description', 'repository', 'homepage', 'author', 'license', 'type'];
  return {
    ...Object.fromEntries(keep.filter((k) => k in pkg).map((k) => [k, pkg[k]])),
    main: './index.cjs',
    exports: { '.': { require: './index.cjs' } },
  };
}

function nativePackage(name: string, version: string, cacheDir: string, log: (line: string) => void): PackageSource {
  const installed = path.join(ROOT, 'node_modules', name);
  const installedPackage = path.join(installed, 'package.json');
  if (existsSync(installedPackage) && (readJson(installedPackage) as { version: string }).version === version) {
    return {
      describe: `node_modules/${name}`,
      read: (file) => (existsSync(path.join(installed, file)) ? readFileSync(path.join(installed, file)) : undefined),
    };
  }
  const integrity = lockedIntegrity(name, version);
  const tarball = path.join(cacheDir, `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`);
  if (!existsSync(tarball) || (integrity !== undefined && !matchesIntegrity(readFileSync(tarball), integrity))) {
    log(`npm pack ${name}@${version}`);
    npmPack(`${name}@${version}`, tarball);
  }
  const data = readFileSync(tarball);
  if (integrity !== undefined && !matchesIntegrity(data, integrity)) {
    throw new Error(`${name}@${version} from the registry does not match package-lock.json's integrity ${integrity}`);
  }
  const files = untar(data);
  return { describe: `npm registry (${path.relative(ROOT, tarball)})`, read: (file) => files.get(file) };
}

/** The integrity package-lock.json records for the package (npm locks every platform's optional package). */
function lockedIntegrity(name: string, version: string): string | undefined {
  const lockFile = path.join(ROOT, 'package-lock.json');
  if (!existsSync(lockFile)) return undefined;
  const lock = readJson(lockFile) as { packages?: Record<string, { version?: string; integrity?: string }> };
  const locked = lock.packages?.[`node_modules/${name}`];
  return locked?.version === version ? locked.integrity : undefined;
}

function matchesIntegrity(data: Buffer, integrity: string): boolean {
  return integrity.split(/\s+/).some((sri) => {
    const [algorithm, digest] = sri.split('-', 2);
    return algorithm !== undefined && digest !== undefined && createHash(algorithm).update(data).digest('base64') === digest;
  });
}

function npmPack(spec: string, destination: string): void {
  mkdirSync(path.dirname(destination), { recursive: true });
  const scratch = mkdtempSync(`${destination}.`);
  try {
    // npm from the npm running this build when there is one (npm run, npx), else from PATH.
    const npmCli = process.env.npm_execpath;
    const [command, prefix] = npmCli && /npm-cli\.c?js$/.test(npmCli)
      ? [process.execPath, [npmCli]]
      : [process.platform === 'win32' ? 'npm.cmd' : 'npm', []];
    const out = execFileSync(command, [...prefix, 'pack', spec, '--pack-destination', scratch, '--json', '--silent'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: process.platform === 'win32' && command === 'npm.cmd',
    });
    // npm 11 prints a list of packed packages; npm 12 an object keyed by package name.
    const parsed = JSON.parse(out) as Array<{ filename: string }> | Record<string, { filename: string }>;
    const [packed] = Array.isArray(parsed) ? parsed : Object.values(parsed);
    renameSync(path.join(scratch, packed!.filename), destination);
  } catch (err) {
    throw new Error(`could not fetch ${spec} from the npm registry with \`npm pack\`: ${(err as Error).message}`, { cause: err });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** The regular files of an npm tarball (ustar, with pax headers), by path inside its package/ folder. */
function untar(tgz: Buffer): Map<string, Buffer> {
  const tar = gunzipSync(tgz);
  const files = new Map<string, Buffer>();
  let paxPath: string | undefined;
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, length: number) => {
      const raw = header.subarray(start, start + length);
      const end = raw.indexOf(0);
      return raw.subarray(0, end === -1 ? length : end).toString('utf8');
    };
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = header[156] === 0 ? '0' : String.fromCharCode(header[156]!);
    const body = tar.subarray(offset + 512, offset + 512 + size);
    offset += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      paxPath = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString('utf8'))?.[1];
      continue;
    }
    const prefix = field(345, 155);
    const name = paxPath ?? (prefix ? `${prefix}/` : '') + field(0, 100);
    paxPath = undefined;
    if (type === '0') files.set(name.replace(/^[^/]+\//, ''), Buffer.from(body));
  }
  return files;
}

/** A wrongly labelled binary would only fail in Lambda; check the ELF header's machine here. */
function checkElfMachine(binary: Buffer, expected: number, what: string): void {
  const isElf = binary.length > 20 && binary.readUInt32BE(0) === 0x7f454c46;
  if (!isElf || binary.readUInt16LE(18) !== expected) {
    throw new Error(`${what} is not an ELF binary for machine ${expected}`);
  }
}

function need(source: PackageSource, file: string): Buffer {
  const data = source.read(file);
  if (data === undefined) throw new Error(`${source.describe} has no ${file}`);
  return data;
}

/** The folder of an installed package (koffi's `exports` do not expose its package.json to require.resolve). */
function packageDir(name: string): string {
  let dir = path.dirname(require.resolve(name, { paths: [ROOT] }));
  while (!existsSync(path.join(dir, 'package.json')) || (readJson(path.join(dir, 'package.json')) as { name?: string }).name !== name) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the folder of the installed package ${name}`);
    dir = parent;
  }
  return dir;
}

function readJson(file: string): unknown {
  return JSON.parse(readFileSync(file, 'utf8'));
}

function json(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** What `npm run build:layer` prints: the zip's size and its contents per package. */
export function describeLayer(build: LayerBuild): string {
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
  const packages = new Map<string, { files: number; bytes: number; compressed: number }>();
  for (const entry of build.entries) {
    const rest = entry.path.slice(NODE_MODULES.length + 1).split('/');
    const pkg = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
    const sum = packages.get(pkg) ?? { files: 0, bytes: 0, compressed: 0 };
    packages.set(pkg, { files: sum.files + 1, bytes: sum.bytes + entry.bytes, compressed: sum.compressed + entry.compressedBytes });
  }
  const lines = [
    `${path.relative(process.cwd(), build.zipPath)}: ${build.zipBytes} bytes (${(build.zipBytes / 1024 / 1024).toFixed(2)} MB; ` +
      `floor ${LAYER_ZIP_LIMIT_BYTES / 1024 / 1024} MB), ${build.entries.length} files under ${NODE_MODULES}/`,
  ];
  for (const [pkg, sum] of packages) {
    const from = build.nativeSources[pkg] ? `  from ${build.nativeSources[pkg]}` : '';
    lines.push(`  ${pkg.padEnd(28)} ${String(sum.files).padStart(2)} files  ${kb(sum.bytes).padStart(10)}  (${kb(sum.compressed)} zipped)${from}`);
  }
  lines.push('  files:');
  for (const entry of build.entries) lines.push(`    ${entry.path.slice(NODE_MODULES.length + 1)}  ${entry.bytes}`);
  return lines.join('\n');
}

if (require.main === module) {
  try {
    console.log(describeLayer(buildLayer({ log: (line) => console.error(line) })));
  } catch (err) {
    console.error(`build:layer failed: ${(err as Error).message}`);
    process.exit(1);
  }
}
