/**
 * The Node.js binaries Lambda's runtimes run, pinned, from the npm registry's node-linux-<arch> packages: fetched
 * once with `npm pack`, checked against the registry's sha512 integrity, and unpacked under .ci/cache/ (gitignored).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';

export interface NodeRelease {
  version: string;
  arch: 'x64' | 'arm64';
  /** dist.integrity of node-linux-<arch>@<version> in the npm registry. */
  integrity: string;
}

/** nodejs22.x and nodejs24.x, the runtimes the stack may deploy, on both of Lambda's architectures. */
export const NODE_22_X64: NodeRelease = {
  version: '22.23.5',
  arch: 'x64',
  integrity: 'sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==',
};
export const NODE_24_X64: NodeRelease = {
  version: '24.22.3',
  arch: 'x64',
  integrity: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
};
export const NODE_22_ARM64: NodeRelease = {
  version: '22.23.5',
  arch: 'arm64',
  integrity: 'sha512-e1LOUGKVruPGuLVutn8+Cgm5pI1APm4Kvh+zbb/qe/ZpD9s+TQby5iUgZOWmPpbSKpj0Td8DP1N0NEnXasHizg==',
};

const CACHE = path.resolve(__dirname, '..', '..', '.ci', 'cache');

/** The path of the release's `node` binary, fetched and verified on first use. */
export function nodeBinary(release: NodeRelease): string {
  const dir = path.join(CACHE, `node-${release.version}-linux-${release.arch}`);
  const binary = path.join(dir, 'bin', 'node');
  if (existsSync(binary)) return binary;
  mkdirSync(CACHE, { recursive: true });
  const work = mkdtempSync(path.join(CACHE, '.fetch-'));
  try {
    const name = `node-linux-${release.arch}`;
    execFileSync('npm', ['pack', '--silent', `${name}@${release.version}`], { cwd: work, stdio: ['ignore', 'ignore', 'inherit'] });
    const tarball = path.join(work, `${name}-${release.version}.tgz`);
    const actual = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
    if (actual !== release.integrity) throw new Error(`${tarball}: integrity ${actual}, expected ${release.integrity}`);
    mkdirSync(path.join(work, 'out'));
    execFileSync('tar', ['-xzf', tarball, '-C', path.join(work, 'out'), '--strip-components=1', '--no-same-owner', 'package/bin/node']);
    renameSync(path.join(work, 'out'), dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return binary;
}
