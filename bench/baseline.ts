/**
 * The layers the envelope bench measures: this checkout's and, for before/after ratios (`npm run bench --
 * --baseline=<git ref>`), another commit's, each bundled as build:layer bundles it (one CommonJS file, so module
 * boundaries cost what they cost in Lambda). The commit's layer/src comes out of git (`git archive`), so the
 * checkout is untouched.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { bundleLayer } from '../layer/build';

const ROOT = path.resolve(__dirname, '..');
// Under node_modules so that the bundles' require('koffi') and require('better-sqlite3') resolve to this checkout's.
const CACHE = path.join(ROOT, 'node_modules', '.cache', 'asherah-bench');

/** The calls the envelope bench makes: present in every version of the layer. */
export interface LayerApi {
  setup(config: object): void;
  shutdown(): void;
  encryptAsync(partitionId: string, data: Uint8Array): Promise<string>;
  decryptAsync(partitionId: string, drr: string): Promise<Buffer>;
}

export interface LayerBundles {
  /** The bundle files: this checkout's, and the baseline's if one was asked for. */
  current: string;
  baseline?: string;
  /** The ref as given, and the commit it named. */
  baselineName?: string;
}

/** Bundles this checkout's layer, and `ref`'s if one is given. */
export function bundleLayers(ref?: string): LayerBundles {
  const current = write('current', bundleLayer(ROOT));
  if (ref === undefined) return { current };
  const commit = git(['rev-parse', '--verify', `${ref}^{commit}`]).trim();
  const tree = path.join(CACHE, commit, 'tree');
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  execFileSync('tar', ['-x', '-C', tree], { input: gitBuffer(['archive', commit, 'layer/src']) });
  return { current, baseline: write(commit, bundleLayer(tree)), baselineName: `${ref} (${commit.slice(0, 7)})` };
}

export function loadLayer(file: string): LayerApi {
  return createRequire(__filename)(file) as LayerApi;
}

function write(name: string, bundle: Buffer): string {
  const file = path.join(CACHE, name, 'index.js');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, bundle);
  return file;
}

function gitBuffer(args: string[]): Buffer {
  return execFileSync('git', args, { cwd: ROOT, maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'inherit'] });
}

function git(args: string[]): string {
  return gitBuffer(args).toString('utf8');
}
