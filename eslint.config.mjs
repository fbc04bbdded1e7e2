import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

// Module boundaries are the point of this file, on two axes of project tags. Scope says which
// modalities' code a project sees: a modality's packages see their own scope and shared code only, so
// the image team can never import text code; fusion code reaches the modalities' models only through
// the registry (scope:all), which, like the apps and the encoder probe, sees every scope. Layer says
// where a project stands (runtime < data < model < training < app | tool): serving's models never
// pull in training code. Every rule but scope:all's can be broken (training, apps and tools may use any
// library, and Nx itself refuses any import of an app); tools/lint-boundaries.test.ts proves each.
const LAYERS = [
  // Listed first: the rule reports the first constraint an import breaks.
  { sourceTag: 'layer:runtime', onlyDependOnLibsWithTags: ['layer:runtime'] },
  { sourceTag: 'layer:data', onlyDependOnLibsWithTags: ['layer:data', 'layer:runtime'] },
  { sourceTag: 'layer:model', onlyDependOnLibsWithTags: ['layer:model', 'layer:data', 'layer:runtime'] },
];
const scopes = (fusionSees) => [
  { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
  { sourceTag: 'scope:image', onlyDependOnLibsWithTags: ['scope:image', 'scope:shared'] },
  { sourceTag: 'scope:text', onlyDependOnLibsWithTags: ['scope:text', 'scope:shared'] },
  { sourceTag: 'scope:fusion', onlyDependOnLibsWithTags: ['scope:fusion', 'scope:shared', 'scope:all', ...fusionSees] },
  // Nx blocks every import of a project no constraint names.
  { sourceTag: 'scope:all', onlyDependOnLibsWithTags: ['*'] },
];
const boundaries = (fusionSees) => ({
  '@nx/enforce-module-boundaries': ['error', { enforceBuildableLibDependency: false, allow: [], depConstraints: [...LAYERS, ...scopes(fusionSees)] }],
});

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/.nx/**', '**/*.mjs', '**/*.js'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      ...boundaries([]),
    },
  },
  // Fusion's tests build small members of each modality to fuse.
  { files: ['packages/*-fusion/**/*.test.ts'], rules: boundaries(['scope:image', 'scope:text']) },
);
