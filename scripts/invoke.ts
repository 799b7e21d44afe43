/**
 * npm run invoke -- <event.json | inline JSON>: one event through the handler, as Lambda would run it, locally.
 * stdout gets the response JSON alone (logs and EMF go to stderr); on error it prints
 * {"errorType","errorMessage"} as Lambda reports it and exits 1.
 */
import { existsSync, readFileSync } from 'node:fs';

// Everything the function writes (Powertools logs, EMF) goes to stderr, so that stdout is the response alone.
const writeStdout = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;

function readEvent(arg: string | undefined): unknown {
  if (arg === undefined) {
    throw new Error('usage: npm run invoke -- <event.json | inline JSON>, e.g. npm run invoke -- functions/encrypt-decrypt/events/encrypt.json');
  }
  const text = arg.trimStart().startsWith('{') ? arg : existsSync(arg) ? readFileSync(arg, 'utf8') : undefined;
  if (text === undefined) throw new Error(`no such file: ${arg}`);
  return JSON.parse(text);
}

async function main(): Promise<void> {
  let output: unknown;
  let code = 0;
  try {
    const event = readEvent(process.argv[2]);
    const { handler } = await import('../functions/encrypt-decrypt/handler.js');
    output = await handler(event);
  } catch (err) {
    const e = err as Error;
    output = { errorType: e.name ?? 'Error', errorMessage: e.message };
    code = 1;
  }
  writeStdout(JSON.stringify(output, null, 2) + '\n');
  process.exitCode = code;
}

void main();
