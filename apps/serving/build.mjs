// Builds the serving app into a folder that runs on its own: dist/apps/serving/{main.js, package.json}.
// Workspace packages (@filmgenre/*) are bundled in, since they are not published; npm packages stay
// external (sharp and tfjs-backend-wasm ship native/wasm binaries that cannot be bundled) and are
// listed in the generated package.json with the exact versions of the root package.json.
import { build } from 'esbuild';
import { builtinModules } from 'node:module';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = dirname(fileURLToPath(import.meta.url));
const workspaceRoot = resolve(projectRoot, '../..');
const outDir = join(workspaceRoot, 'dist/apps/serving');
const rootPkg = JSON.parse(readFileSync(join(workspaceRoot, 'package.json'), 'utf8'));
const appPkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8'));
const builtins = new Set(builtinModules);

/** 'sharp' → 'sharp', '@tensorflow/tfjs-backend-wasm/dist/x' → '@tensorflow/tfjs-backend-wasm' */
const packageName = (specifier) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');

const externals = new Set();
const externalNpm = {
  name: 'external-npm-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:') || builtins.has(args.path)) return { path: args.path, external: true };
      if (args.path.startsWith('@filmgenre/')) return undefined; // bundle workspace sources
      externals.add(packageName(args.path));
      return { path: args.path, external: true };
    });
  },
};

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
// Four entry points: the start (src/main.ts, which answers signals while the server's modules load:
// bundled into it, their npm imports would be hoisted and load first), the server it imports, the
// model worker it starts beside itself (src/inference), and the large-poster decoder process (src/decode).
const serverModule = {
  name: 'server-module',
  setup(b) {
    b.onResolve({ filter: /^\.\/serve\.js$/ }, (args) => (args.importer.endsWith('main.ts') ? { path: './serve.js', external: true } : undefined));
  },
};
await build({
  entryPoints: [
    { in: join(projectRoot, 'src/main.ts'), out: 'main' },
    { in: join(projectRoot, 'src/serve.ts'), out: 'serve' },
    { in: join(projectRoot, 'src/inference/worker-entry.ts'), out: 'inference-worker' },
    { in: join(projectRoot, 'src/decode/process-entry.ts'), out: 'poster-decoder' },
  ],
  outdir: outDir,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  // Bundled CommonJS-style code may call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  plugins: [serverModule, externalNpm],
  logLevel: 'warning',
});

// Packages loaded through createRequire (e.g. one file of 'natural', to skip its heavy main entry, or
// onnxruntime-node's native addon, called as createRequire(…)('onnxruntime-node')) are plain function
// calls to esbuild, not imports: find them in the output so they are installed too.
const bundled = ['main.js', 'serve.js', 'inference-worker.js', 'poster-decoder.js'].map((file) => readFileSync(join(outDir, file), 'utf8')).join('\n');
for (const match of bundled.matchAll(/(?:\brequire\d*(?:\.resolve)?|\bcreateRequire\d*\([^()]*(?:\([^()]*\))?[^()]*\))\(\s*["']([^"'.\/][^"']*)["']\s*\)/g)) {
  const name = packageName(match[1]);
  if (!name.startsWith('node:') && !builtins.has(name) && !name.startsWith('@filmgenre/')) externals.add(name);
}

// Versions come from the root package.json; a package only reached through another one (e.g.
// @tensorflow/tfjs-core) gets the version the lockfile installed.
const installedVersion = (name) => {
  try {
    return JSON.parse(readFileSync(join(workspaceRoot, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
};
const dependencies = {};
const optionalDependencies = {};
for (const name of [...externals].sort()) {
  if (rootPkg.devDependencies?.[name]) throw new Error(`the bundle imports '${name}', a devDependency of the root package.json`);
  // tfjs-node is optional at the root too: it cannot install everywhere, and the runtime falls back to wasm.
  if (rootPkg.optionalDependencies?.[name]) {
    optionalDependencies[name] = rootPkg.optionalDependencies[name];
    continue;
  }
  const version = rootPkg.dependencies?.[name] ?? installedVersion(name);
  if (!version) throw new Error(`the bundle imports '${name}', which is neither declared in the root package.json nor installed`);
  dependencies[name] = version;
}

writeFileSync(join(outDir, 'package.json'), `${JSON.stringify({
  name: appPkg.name,
  version: appPkg.version,
  private: true,
  description: appPkg.description,
  type: 'module',
  main: 'main.js',
  bin: { 'filmgenre-serving': 'main.js' },
  scripts: { start: 'node main.js' },
  engines: rootPkg.engines,
  dependencies,
  optionalDependencies,
  // The root's install-script decisions for the packages shipped (onnxruntime-node's fetches GPU providers).
  allowScripts: Object.fromEntries(Object.entries(rootPkg.allowScripts ?? {}).filter(([name]) => name in dependencies)),
}, null, 2)}\n`);
console.log(`built ${appPkg.name}@${appPkg.version} → ${outDir}/main.js + serve.js + inference-worker.js + poster-decoder.js (${Object.keys(dependencies).length} npm dependencies: ${Object.keys(dependencies).join(', ')})`);
