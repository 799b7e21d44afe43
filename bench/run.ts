/** npm run bench: every side-by-side benchmark, printed as markdown tables. */
import os from 'node:os';
import { printTable } from './harness';
import { runSecureMemoryBench } from './securememory.bench';

console.log(`# Benchmarks\n\nNode ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} x${os.cpus().length}, ${new Date().toISOString()}`);
console.log('Each row: median of 15 interleaved rounds; ratio = case time / baseline time in the same run.');
printTable('Secure memory vs plain Buffers', runSecureMemoryBench());
