/**
 * `tsx bench/profile-summary.ts <file.cpuprofile> [top]`: the top self-time frames of a V8
 * CPU profile (from `node --cpu-prof`), as percentages of the sampled time, plus the same
 * grouped by package, so a profile can be summarised in docs/performance.md.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error('usage: tsx bench/profile-summary.ts <file.cpuprofile> [top]');
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[] };
const hits = new Map<number, number>();
for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
const total = profile.samples.length;
const byFrame = new Map<string, number>();
const byPackage = new Map<string, number>();
let idle = 0;
for (const node of profile.nodes) {
  const count = hits.get(node.id) ?? 0;
  if (count === 0) continue;
  const { functionName, url, lineNumber } = node.callFrame;
  if (functionName === '(idle)') idle += count;
  const where = url.replace(/^file:\/\/.*?\/(node_modules|src|bench)\//, '$1/');
  const key = `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
  byFrame.set(key, (byFrame.get(key) ?? 0) + count);
  const pkg =
    /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ??
    (url.includes('/src/')
      ? 'allotment src'
      : url.startsWith('node:')
        ? 'node core'
        : functionName.startsWith('(')
          ? functionName
          : url || '(native)');
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + count);
}
const busy = total - idle;
const pct = (count: number) => `${((count / busy) * 100).toFixed(1).padStart(5)} %`;
process.stdout.write(
  `${file}: ${total} samples, ${((busy / total) * 100).toFixed(0)} % not idle; shares below are of the non-idle samples\n\nTop self-time frames:\n`,
);
for (const [key, count] of [...byFrame]
  .filter(([key]) => !key.startsWith('(idle)'))
  .sort((a, b) => b[1] - a[1])
  .slice(0, top)) {
  process.stdout.write(`${pct(count)}  ${key}\n`);
}
// Inclusive time: each sample counts once for every distinct frame on its stack.
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const nodeById = new Map(profile.nodes.map((node) => [node.id, node]));
const label = (node: ProfileNode) =>
  `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^file:\/\/.*?\/(node_modules|src|bench)\//, '$1/')}:${node.callFrame.lineNumber + 1}`;
const inclusive = new Map<string, number>();
for (const [id, count] of hits) {
  if (nodeById.get(id)?.callFrame.functionName === '(idle)') continue;
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) seen.add(label(nodeById.get(at)!));
  for (const key of seen) inclusive.set(key, (inclusive.get(key) ?? 0) + count);
}
if (process.env.INCLUSIVE) {
  process.stdout.write('\nTop inclusive frames:\n');
  for (const [key, count] of [...inclusive]
    .filter(([key]) => !key.startsWith('(root)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(process.env.INCLUSIVE))) {
    process.stdout.write(`${pct(count)}  ${key}\n`);
  }
}
process.stdout.write('\nBy package:\n');
for (const [key, count] of [...byPackage]
  .filter(([key]) => key !== '(idle)')
  .sort((a, b) => b[1] - a[1])
  .slice(0, 15)) {
  process.stdout.write(`${pct(count)}  ${key}\n`);
}
