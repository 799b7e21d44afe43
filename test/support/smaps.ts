import { readFileSync } from 'node:fs';

export interface Mapping {
  start: bigint;
  end: bigint;
  perms: string;
  vmFlags: string[];
  locked: number;
}

/** The kernel's view of this process's mappings (/proc/self/smaps). */
export function readMappings(): Mapping[] {
  const mappings: Mapping[] = [];
  let current: Mapping | undefined;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) /.exec(line);
    if (header) {
      current = { start: BigInt(`0x${header[1]}`), end: BigInt(`0x${header[2]}`), perms: header[3], vmFlags: [], locked: 0 };
      mappings.push(current);
    } else if (current && line.startsWith('VmFlags:')) {
      current.vmFlags = line.slice('VmFlags:'.length).trim().split(/\s+/);
    } else if (current && line.startsWith('Locked:')) {
      current.locked = Number(/(\d+)/.exec(line)![1]) * 1024;
    }
  }
  return mappings;
}

export function mappingAt(address: bigint): Mapping {
  const found = readMappings().find((m) => m.start <= address && address < m.end);
  if (!found) throw new Error(`no mapping contains 0x${address.toString(16)}`);
  return found;
}

export const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
