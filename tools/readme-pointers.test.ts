// The README's "Where things are" table is how a newcomer finds a concept's one home: every file it
// names must exist, and every symbol it names must be declared in one of that row's files and
// exported from no other source file (a second home would make the pointer half true).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findWorkspaceRoot } from '@filmgenre/core';

const root = findWorkspaceRoot();

/** The rows of the table under `## Where things are`: what, and the backticked names of where. */
function pointerRows(): { what: string; files: string[]; symbols: string[] }[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = /^## Where things are\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1];
  if (!section) throw new Error('README.md has no "## Where things are" section');
  return section.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| what ')).map((line) => {
    const [, what, where] = /^\| (.*?) \| (.*) \|$/.exec(line) ?? [];
    const files: string[] = [];
    const symbols: string[] = [];
    let dir = '';
    for (const [, name] of (where ?? '').matchAll(/`([^`]+)`/g)) {
      if (/^[A-Za-z_$][\w$]*$/.test(name!)) symbols.push(name!);
      else {
        // A bare file name (`late.ts`) is beside the last path named before it.
        const path = name!.includes('/') ? name!.replace(/\/$/, '') : join(dir, name!);
        files.push(path);
        dir = name!.endsWith('/') ? path : dirname(path);
      }
    }
    return { what: what ?? line, files, symbols };
  });
}

/** Non-test TypeScript sources that export `symbol`, by path. */
function exportersOf(symbol: string): string[] {
  const pattern = `export (default )?(declare )?(async )?(abstract )?(function\\*?|const|let|class|interface|type|enum) ${symbol}\\b`;
  try {
    return execFileSync('git', ['grep', '-l', '-E', pattern, '--', '*.ts', ':!*.test.ts'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return []; // git grep exits 1 when nothing matches
  }
}

describe('README "Where things are"', () => {
  const rows = pointerRows();

  it('has the rows a newcomer looks for', () => {
    const whats = rows.map((r) => r.what).join('\n');
    for (const concept of [/request is validated/, /threshold is chosen/, /poster becomes a tensor/, /fusion is fit/, /the defaults/]) expect(whats).toMatch(concept);
  });

  it.each(rows.map((r) => [r.what, r] as const))('%s: every file exists, every symbol has its one home there', (_, row) => {
    expect(row.files.length).toBeGreaterThan(0);
    for (const file of row.files) expect(existsSync(join(root, file)), file).toBe(true);
    for (const symbol of row.symbols) {
      const homes = exportersOf(symbol);
      expect(homes, `${symbol}: exported from ${homes.join(', ') || 'nowhere'}`).toHaveLength(1);
      expect(row.files, `${symbol} is exported from ${homes[0]}, not from a file this row names`).toContain(homes[0]);
    }
  });
});
