/**
 * A small side-by-side benchmark harness. Each case is measured against its baseline in the same run,
 * interleaved round by round (these machines are noisy), and reported as the median ns/op and the ratio.
 */
export interface Pair {
  name: string;
  /** The thing measured. */
  subject: () => void;
  baseline: () => void;
  baselineName: string;
  /** Operations per round; each round times this many calls of one side. */
  opsPerRound?: number;
}

export interface PairResult {
  name: string;
  baselineName: string;
  subjectNs: number;
  baselineNs: number;
  ratio: number;
}

const now = () => process.hrtime.bigint();

function timeRound(fn: () => void, ops: number): number {
  const start = now();
  for (let i = 0; i < ops; i++) fn();
  return Number(now() - start) / ops;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export function measurePair(pair: Pair, rounds = 15): PairResult {
  const ops = pair.opsPerRound ?? 20_000;
  // Warm both sides up so the JIT has settled before anything counts.
  timeRound(pair.subject, ops);
  timeRound(pair.baseline, ops);
  const subject: number[] = [];
  const baseline: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      subject.push(timeRound(pair.subject, ops));
      baseline.push(timeRound(pair.baseline, ops));
    } else {
      baseline.push(timeRound(pair.baseline, ops));
      subject.push(timeRound(pair.subject, ops));
    }
  }
  const subjectNs = median(subject);
  const baselineNs = median(baseline);
  return { name: pair.name, baselineName: pair.baselineName, subjectNs, baselineNs, ratio: subjectNs / baselineNs };
}

export function printTable(title: string, results: PairResult[]): void {
  console.log(`\n## ${title}\n`);
  console.log('| case | ns/op | baseline | baseline ns/op | ratio (lower is better) |');
  console.log('|---|---:|---|---:|---:|');
  for (const r of results) {
    console.log(
      `| ${r.name} | ${r.subjectNs.toFixed(0)} | ${r.baselineName} | ${r.baselineNs.toFixed(0)} | ${r.ratio.toFixed(2)}x |`,
    );
  }
}

export interface GroupCase {
  name: string;
  /** One operation; may be async (each is awaited before the next starts). */
  run: () => unknown;
}

/**
 * Times several cases in the same run: each round times `opsPerRound` calls of every case, in an order that
 * rotates and reverses from round to round, so that no case always follows the same one (a case pays for garbage
 * the one before it left). The result is each case's median ns/op over the rounds.
 */
export async function measureGroup(cases: GroupCase[], opsPerRound: number, rounds = 12): Promise<Map<string, number>> {
  const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  const timeCase = async (c: GroupCase) => {
    const start = now();
    for (let i = 0; i < opsPerRound; i++) {
      const result = c.run();
      if (result instanceof Promise) await result;
    }
    return Number(now() - start) / opsPerRound;
  };
  for (const c of cases) await timeCase(c); // warm-up
  const n = cases.length;
  for (let r = 0; r < rounds; r++) {
    const rotation = Math.floor(r / 2) % n;
    for (let k = 0; k < n; k++) {
      const position = r % 2 === 0 ? k : n - 1 - k;
      const c = cases[(position + rotation) % n];
      samples.get(c.name)!.push(await timeCase(c));
    }
  }
  return new Map([...samples].map(([name, values]) => [name, median(values)]));
}
