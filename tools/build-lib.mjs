// Builds one library or app: bundles its own sources to dist/<projectRoot>/index.js and leaves every
// package dependency (workspace siblings included) external, so each project builds alone.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const projectRoot = process.argv[2];
if (!projectRoot) {
  console.error('usage: node tools/build-lib.mjs <projectRoot>');
  process.exit(2);
}
const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8'));
await build({
  entryPoints: [join(projectRoot, 'src/index.ts')],
  outfile: join('dist', projectRoot, 'index.js'),
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
});
console.log(`built ${pkg.name}@${pkg.version} → dist/${projectRoot}/index.js`);
