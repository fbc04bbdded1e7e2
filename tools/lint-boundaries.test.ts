// The module boundaries are enforced by `nx lint`; this proves each rule bites. Each case lints a
// one-line file placed (virtually) in a real package, with the workspace's own ESLint config.
import { execFileSync } from 'node:child_process';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';
import { findWorkspaceRoot } from '@filmgenre/core';

const root = findWorkspaceRoot();
let eslint: ESLint;

beforeAll(() => {
  // The boundary rule reads Nx's cached project graph and silently skips itself without one.
  execFileSync('npx', ['nx', 'show', 'projects'], { cwd: root, stdio: 'ignore', env: { ...process.env, NX_DAEMON: 'false' } });
  eslint = new ESLint({ cwd: root });
}, 120_000);

async function boundaryErrors(file: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath: `${root}/${file}` });
  return result!.messages.filter((m) => m.ruleId === '@nx/enforce-module-boundaries').map((m) => m.message);
}

const rule = (tag: string, allowed: string[]) => new RegExp(`"${tag}" can only depend on libs tagged with ${allowed.map((t) => `"${t}"`).join(', ')}`);

describe('nx lint module boundaries: one test per rule of eslint.config.mjs', () => {
  it('layer:runtime: a runtime package importing a data package fails', async () => {
    const errors = await boundaryErrors('packages/metrics/src/boundary-probe.ts', "export { tokenize } from '@filmgenre/data-text';\n");
    expect(errors.join('\n')).toMatch(rule('layer:runtime', ['layer:runtime']));
  });

  it('layer:data: a data package importing a model package, or training code, fails', async () => {
    // Within one scope this import would also close a cycle (every model package uses its data
    // package), which the rule reports instead; the poster model from the text data package shows the layer rule.
    const errors = await boundaryErrors('packages/data-text/src/boundary-probe.ts', "export { createPosterCnn } from '@filmgenre/model-cnn';\n");
    expect(errors.join('\n')).toMatch(rule('layer:data', ['layer:data', 'layer:runtime']));
    const cycle = await boundaryErrors('packages/data-images/src/boundary-probe.ts', "export { createPosterCnn } from '@filmgenre/model-cnn';\n");
    expect(cycle.join('\n')).toMatch(/Circular dependency between "data-images" and "model-cnn"/);
    const training = await boundaryErrors('packages/data-images/src/boundary-probe.ts', "export { fitWithEarlyStopping } from '@filmgenre/training';\n");
    expect(training.join('\n')).toMatch(rule('layer:data', ['layer:data', 'layer:runtime']));
  });

  it('layer:model: a model package importing training code fails', async () => {
    const errors = await boundaryErrors('packages/model-lstm/src/boundary-probe.ts', "export { fitWithEarlyStopping } from '@filmgenre/training';\n");
    expect(errors.join('\n')).toMatch(rule('layer:model', ['layer:model', 'layer:data', 'layer:runtime']));
  });

  it('scope:shared: shared code (training, the workspace tools) importing a modality fails', async () => {
    for (const file of ['packages/training/src/boundary-probe.ts', 'tools/testing/boundary-probe.ts']) {
      const errors = await boundaryErrors(file, "export { createPosterCnn } from '@filmgenre/model-cnn';\n");
      expect(errors.join('\n'), file).toMatch(rule('scope:shared', ['scope:shared']));
    }
  });

  it('scope:image: an image package importing a text package fails', async () => {
    const errors = await boundaryErrors('packages/model-cnn/src/boundary-probe.ts', "export { tokenize } from '@filmgenre/data-text';\n");
    expect(errors.join('\n')).toMatch(rule('scope:image', ['scope:image', 'scope:shared']));
  });

  it('scope:text: a text package importing an image package fails', async () => {
    const errors = await boundaryErrors('packages/training-text/src/boundary-probe.ts', "export { createPosterCnn } from '@filmgenre/model-cnn';\n");
    expect(errors.join('\n')).toMatch(rule('scope:text', ['scope:text', 'scope:shared']));
  });

  it('scope:fusion: fusion code importing a modality directly fails; through the registry it passes, and its tests may build members', async () => {
    const errors = await boundaryErrors('packages/training-fusion/src/boundary-probe.ts', "export { createPosterCnn } from '@filmgenre/model-cnn';\n");
    expect(errors.join('\n')).toMatch(rule('scope:fusion', ['scope:fusion', 'scope:shared', 'scope:all']));
    expect(await boundaryErrors('packages/training-fusion/src/boundary-probe.ts', "export { loadModel } from '@filmgenre/model-registry';\n")).toEqual([]);
    expect(await boundaryErrors('packages/training-fusion/src/boundary-probe.test.ts', "export { createPosterCnn } from '@filmgenre/model-cnn';\n")).toEqual([]);
  });

  it('nothing imports an app, not even a tool or another app', async () => {
    for (const file of ['tools/encoder-probe/boundary-probe.ts', 'apps/serving/src/boundary-probe.ts']) {
      expect((await boundaryErrors(file, "export * from '@filmgenre/trainer';\n")).join('\n'), file).toMatch(/Imports of apps are forbidden/);
    }
  });

  it('a training package using its own scope\'s model and the shared training code passes; the probe (scope:all, layer:tool) may use any library', async () => {
    expect(await boundaryErrors('packages/training-image/src/boundary-probe.ts', "export { createPosterCnn } from '@filmgenre/model-cnn';\nexport { fitWithEarlyStopping } from '@filmgenre/training';\n")).toEqual([]);
    expect(await boundaryErrors('tools/encoder-probe/boundary-probe.ts', "export { createPosterCnn } from '@filmgenre/model-cnn';\nexport { tokenize } from '@filmgenre/data-text';\nexport { crossFitFusion } from '@filmgenre/training-fusion';\n")).toEqual([]);
  });
});
