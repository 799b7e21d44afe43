/**
 * npm run bench: every side-by-side benchmark, printed as markdown tables.
 * `npm run bench -- --baseline=<git ref>` adds that commit's layer to the envelope table (before/after ratios).
 */
import os from 'node:os';
import { printColdStartTable, runColdStartBench } from './cold-start.bench';
import { baselineArgument, printEnvelopeTable, runEnvelopeBench } from './envelope.bench';
import { printTable } from './harness';
import { runSecureMemoryBench } from './securememory.bench';

async function main(): Promise<void> {
  console.log(`# Benchmarks\n\nNode ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} x${os.cpus().length}, ${new Date().toISOString()}`);
  console.log('Medians of interleaved rounds; every ratio compares two cases measured in the same run.');
  printTable('Secure memory vs plain Buffers (ns/op)', runSecureMemoryBench());
  printColdStartTable(await runColdStartBench());
  // Last: loading the Rust addon hardens this process (core dumps off, no-new-privs).
  printEnvelopeTable(await runEnvelopeBench({ baseline: baselineArgument() }));
}

void main();
