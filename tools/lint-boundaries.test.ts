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

describe('nx lint module boundaries', () => {
  it('an image package importing a text package fails', async () => {
    const errors = await boundaryErrors('packages/model-cnn/src/boundary-probe.ts', "export { tokenize } from '@filmgenre/data-text';\n");
    expect(errors.join('\n')).toMatch(/scope:image.*can only depend on libs tagged with.*scope:image.*scope:shared/);
  });

  it('a data package importing a model package fails', async () => {
    // Within one scope this import would also close a cycle (every model package uses its data
    // package), which the rule reports instead; the poster model from the text data package shows the layer rule.
    const errors = await boundaryErrors('packages/data-text/src/boundary-probe.ts', "export { createPosterCnn } from '@filmgenre/model-cnn';\n");
    expect(errors.join('\n')).toMatch(/layer:data.*can only depend on libs tagged with.*layer:data.*layer:runtime/);
    const cycle = await boundaryErrors('packages/data-images/src/boundary-probe.ts', "export { createPosterCnn } from '@filmgenre/model-cnn';\n");
    expect(cycle.join('\n')).toMatch(/Circular dependency between "data-images" and "model-cnn"/);
  });

  it('a data package importing training code fails', async () => {
    const errors = await boundaryErrors('packages/data-images/src/boundary-probe.ts', "export { fitWithEarlyStopping } from '@filmgenre/training';\n");
    expect(errors.join('\n')).toMatch(/layer:data.*can only depend on libs tagged with.*layer:data.*layer:runtime/);
  });

  it('a model package importing training code fails', async () => {
    const errors = await boundaryErrors('packages/model-lstm/src/boundary-probe.ts', "export { fitWithEarlyStopping } from '@filmgenre/training';\n");
    expect(errors.join('\n')).toMatch(/layer:model.*can only depend on libs tagged with.*layer:model.*layer:data.*layer:runtime/);
  });

  it('a training package using its own scope\'s model and the shared training code passes', async () => {
    expect(await boundaryErrors('packages/training-image/src/boundary-probe.ts', "export { createPosterCnn } from '@filmgenre/model-cnn';\nexport { fitWithEarlyStopping } from '@filmgenre/training';\n")).toEqual([]);
  });
});
