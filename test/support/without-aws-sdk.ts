/**
 * Runs a script in a child node process in which every @aws-sdk/* package fails to resolve, as on a host
 * without the AWS SDK, and returns the last line it printed, parsed as JSON. The layer must load there.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const HIDE_AWS_SDK = `
  const Module = require('node:module');
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    if (request.startsWith('@aws-sdk/')) throw Object.assign(new Error('Cannot find module ' + request), { code: 'MODULE_NOT_FOUND' });
    return resolve.call(this, request, ...rest);
  };
`;

export function runWithoutAwsSdk<T = Record<string, unknown>>(script: string): T {
  const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', HIDE_AWS_SDK + script], {
    cwd: path.resolve(__dirname, '..', '..'),
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (child.status !== 0) throw new Error(`the child failed (status ${child.status}):\n${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').pop() ?? 'null') as T;
}
