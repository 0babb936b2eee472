/**
 * File-size budget for hand-written code (issue 13): a file a newcomer cannot read whole
 * is a file that hides its structure. Generated code and lock files are exempt.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const MAX_LINES = 400;
const CHECKED = /\.(ts|tsx|js|mjs|cjs|java|graphql|sh)$/;
const EXEMPT = [/^src\/generated\//, /^src\/client\/generated\.ts$/, /^schema\.graphql$/, /package-lock\.json$/];

const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8' })
  .split('\n')
  .filter((file) => CHECKED.test(file) && !EXEMPT.some((pattern) => pattern.test(file)));

const over = files
  .map((file) => ({ file, lines: readFileSync(file, 'utf8').split('\n').length - 1 }))
  .filter(({ lines }) => lines > MAX_LINES);

for (const { file, lines } of over) console.error(`${file}: ${lines} lines (budget ${MAX_LINES})`);
if (over.length > 0) {
  console.error(`${over.length} hand-written file(s) over the ${MAX_LINES}-line budget: split them along their own steps.`);
  process.exit(1);
}
console.log(`file-size budget: ${files.length} hand-written files, none over ${MAX_LINES} lines`);
