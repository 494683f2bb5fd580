/**
 * `npm run gen`: writes deploy/crds/*.yaml and docs/api.md from the zod schemas in shared/api.
 * `npm run gen -- --check` exits 1 when a generated file is stale (the unit tests run the same check).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generatedFiles } from './files.js';

const root = resolve(import.meta.dirname, '../..');
const check = process.argv.includes('--check');
const files = generatedFiles();
let stale = 0;
mkdirSync(join(root, 'deploy/crds'), { recursive: true });
mkdirSync(join(root, 'docs'), { recursive: true });
for (const name of readdirSync(join(root, 'deploy/crds'))) {
  if (!files.has(`deploy/crds/${name}`)) {
    stale++;
    if (check) console.error(`stale: deploy/crds/${name} is not generated any more`);
    else rmSync(join(root, 'deploy/crds', name));
  }
}
for (const [path, text] of files) {
  let current = '';
  try {
    current = readFileSync(join(root, path), 'utf8');
  } catch {}
  if (current === text) continue;
  stale++;
  if (check) console.error(`stale: ${path}`);
  else writeFileSync(join(root, path), text);
}
if (check && stale) {
  console.error('run `npm run gen` and commit the result');
  process.exit(1);
}
console.log(check ? 'generated files are up to date' : `generated ${files.size} files (${stale} changed)`);
