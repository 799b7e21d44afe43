/**
 * SharedArrayBuffers that every thread of the process shares: made by the first thread that loads the library and
 * handed to the worker threads it starts (and to theirs) through worker_threads environment data, which clones a
 * SharedArrayBuffer as the same memory. A thread started before its parent loaded the library gets its own.
 */
import { getEnvironmentData, setEnvironmentData } from 'node:worker_threads';

export function processShared(key: string, bytes: number): SharedArrayBuffer {
  const inherited = getEnvironmentData(key);
  // Not instanceof: a test runner's vm context has its own SharedArrayBuffer constructor.
  if (Object.prototype.toString.call(inherited) === '[object SharedArrayBuffer]') return inherited as SharedArrayBuffer;
  const made = new SharedArrayBuffer(bytes);
  setEnvironmentData(key, made);
  return made;
}
