import type { Command } from 'commander';
import { EXIT } from '../../core/errors.js';
import { printable, printableText } from '../../core/display.js';
import { watchChanged, watchPlan, type WatchReport } from '../../actions/watch.js';
import { watchLines } from '../../present/index.js';
import { comparePlan, type CompareReport } from '../../actions/compare.js';
import type { Act } from '../action.js';
import { alert, forEachInstance, runPlan, unattended, type ManyOpts } from '../run.js';
import { examples } from './help.js';

interface WatchOpts extends ManyOpts {
  accept?: boolean;
}

interface CompareOpts {
  diff?: string;
}

const describeWatch = (r: WatchReport): string => watchLines(r).join('\n');

function describeCompare(r: CompareReport & { diff?: string }): string {
  const lines: string[] = [];
  const f = r.files;
  lines.push(`files: ${f.compared} compared; ${f.onlyInA.length} only in ${r.a}, ${f.onlyInB.length} only in ${r.b}, ${f.different.length} different`);
  for (const p of f.onlyInA) lines.push(`  < ${printable(p)}`);
  for (const p of f.onlyInB) lines.push(`  > ${printable(p)}`);
  for (const c of f.different) lines.push(`  ~ ${printable(c.path)} (${c.what.map(printable).join(', ')})`);
  if (r.database) {
    const diff = r.database.tables.filter((t) => !t.same);
    lines.push(`database: schema ${r.database.schemaSame ? 'identical' : 'DIFFERS'}; ${r.database.tables.length} tables, ${diff.length} with different contents`);
    for (const t of diff) lines.push(`  ~ ${printable(t.table)}: ${t.rowsA ?? 'missing'} rows in ${r.a}, ${t.rowsB ?? 'missing'} in ${r.b}${t.rowsA === t.rowsB ? ' (contents differ)' : ''}`);
    if (!r.database.schemaSame) lines.push(printableText(r.database.schemaDiff.trimEnd()));
  }
  lines.push(r.identical ? `${r.a} and ${r.b} are identical` : `${r.a} and ${r.b} differ`);
  if (r.diff !== undefined) lines.push(r.diff ? printableText(r.diff.trimEnd()) : '(the file is the same on both)');
  return lines.join('\n');
}

/** watch (file integrity), compare (two instances). */
export function register(program: Command, act: Act): void {
  program
    .command('watch [instance...]')
    .description('file-integrity check: hash every file on the host and report what was added, changed or removed since the baseline (exit 1 if anything was)')
    .addHelpText('after', examples('opsdeck watch shop-prod   # the first run records the baseline', 'opsdeck watch shop-prod --accept', 'opsdeck watch --all --yes'))
    .option('--accept', 'make the current state the baseline')
    .option('--all', 'every instance')
    .option('--env <env>', 'every instance of this environment')
    .option('--parallel <n>', 'how many at once (default 1)')
    .action(
      act(async (app, g, names: string[], o: WatchOpts) => {
        const out = await forEachInstance(app, g, o, names, (n) => watchPlan(app, n, { accept: o.accept }), describeWatch, 'watch');
        const changed = out.results.flatMap((r) => (r.result && watchChanged(r.result) ? [r.result] : []));
        if (changed.length && unattended(g)) {
          for (const r of changed) {
            await alert(app, {
              subject: `watch found changes on ${r.instance}`,
              body: `${describeWatch(r)}\n\nSee them with: opsdeck --home ${app.home} watch ${r.instance}; accept them with --accept.`,
              fields: { event: 'watch-changes', instance: r.instance, added: r.added, removed: r.removed, changed: r.changed },
            });
          }
        }
        return { json: out.json, text: out.text, exitCode: Math.max(out.exitCode ?? EXIT.OK, changed.length ? EXIT.FAILED : EXIT.OK) };
      }),
    );

  program
    .command('compare <a> <b>')
    .description('compare two instances: files (added, removed, changed) and database (schema; per table, rows and whether the contents match); exit 1 if they differ')
    .addHelpText('after', examples('opsdeck compare shop-prod shop-uat', 'opsdeck compare shop-prod shop-uat --diff config/app.php'))
    .option('--diff <path>', 'also show a unified diff of this file (relative to the instance)')
    .action(
      act(async (app, g, a: string, b: string, o: CompareOpts) => {
        let identical = true;
        const out = await runPlan(app, g, comparePlan(app, a, b, { diff: o.diff }), (r) => {
          identical = r.identical;
          return describeCompare(r);
        });
        return { ...out, exitCode: identical ? EXIT.OK : EXIT.FAILED };
      }),
    );
}
