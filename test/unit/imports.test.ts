/**
 * The import rules of the layout: no import runs in a circle inside the layer, type-only imports included (a circle
 * makes the load order matter and hides which part depends on which), and infra reaches the layer only through its
 * configuration folder.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(__dirname, '../../layer/src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? sources(full) : entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Each file's relative imports and re-exports, as files. */
function graph(): Map<string, string[]> {
  const edges = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/\bfrom\s+'(\.{1,2}\/[^']+)'/g)].map(([, spec]) =>
      path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')),
    );
    edges.set(file, targets);
  }
  return edges;
}

function cycles(edges: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of edges.get(file) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of edges.keys()) if (!state.has(file)) visit(file);
  return found.map((cycle) => cycle.map((file) => path.relative(SRC, file)));
}

test('no import cycle in layer/src, type-only imports included', () => {
  const edges = graph();
  expect(edges.size).toBeGreaterThan(40);
  expect(cycles(edges)).toEqual([]);
});

test('infra imports layer code only from layer/src/appencryption/config (configuration and composition)', () => {
  const infra = path.resolve(__dirname, '../../infra');
  const allowed = path.join(SRC, 'appencryption', 'config') + path.sep;
  const reaching: string[] = [];
  for (const file of sources(infra)) {
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(/\bfrom\s+'(\.{1,2}\/[^']+)'/g)) {
      const target = path.resolve(path.dirname(file), spec);
      // layer/build (the zip builder) is a tool, not layer code.
      if (target.startsWith(SRC + path.sep) && !target.startsWith(allowed)) {
        reaching.push(`${path.relative(infra, file)} → ${spec}`);
      }
    }
  }
  expect(reaching).toEqual([]);
});
