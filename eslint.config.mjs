import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

// Module boundaries are the point of this file, on two axes of project tags: scope (a modality's
// packages may use shared code and their own scope only, so the image team can never import text
// code) and layer (runtime < data < model < training < app: serving's models never pull in training).
export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/.nx/**', '**/*.mjs', '**/*.js'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            // Layer: each layer uses only the layers below it, so preprocessing never depends on a model
            // and a model (what serving loads) never depends on training code. Listed first: the rule
            // reports the first constraint an import breaks.
            { sourceTag: 'layer:runtime', onlyDependOnLibsWithTags: ['layer:runtime'] },
            { sourceTag: 'layer:data', onlyDependOnLibsWithTags: ['layer:data', 'layer:runtime'] },
            { sourceTag: 'layer:model', onlyDependOnLibsWithTags: ['layer:model', 'layer:data', 'layer:runtime'] },
            { sourceTag: 'layer:training', onlyDependOnLibsWithTags: ['layer:training', 'layer:model', 'layer:data', 'layer:runtime'] },
            { sourceTag: 'layer:app', onlyDependOnLibsWithTags: ['layer:training', 'layer:model', 'layer:data', 'layer:runtime'] },
            // Scope: a modality never sees another modality; fusion sees both; shared sees only shared.
            { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
            { sourceTag: 'scope:image', onlyDependOnLibsWithTags: ['scope:image', 'scope:shared'] },
            { sourceTag: 'scope:text', onlyDependOnLibsWithTags: ['scope:text', 'scope:shared'] },
            { sourceTag: 'scope:fusion', onlyDependOnLibsWithTags: ['scope:fusion', 'scope:image', 'scope:text', 'scope:shared'] },
            { sourceTag: 'scope:app', onlyDependOnLibsWithTags: ['scope:fusion', 'scope:image', 'scope:text', 'scope:shared'] },
            // Workspace tooling (test set-up, the boundary test itself) uses shared code only.
            { sourceTag: 'scope:tools', onlyDependOnLibsWithTags: ['scope:shared'] },
          ],
        },
      ],
    },
  },
);
