import type { Instance } from '../../inventory/index.js';
import type { TableDigest } from '../databases/index.js';
import type { Plan } from '../core/plan.js';
import { LocalShell } from '../remote/local.js';
import { OpsError, UsageError } from '../core/errors.js';
import { checkLocalPath } from '../../inventory/validate.js';
import { dbFor, shellFor, type Deps } from '../deps/deps.js';
import { DEFAULT_EXCLUDES, diffListings, scanTree } from './watch.js';

export interface TableCompare {
  table: string;
  rowsA: number | null;
  rowsB: number | null;
  same: boolean;
}

export interface CompareReport {
  a: string;
  b: string;
  files: { onlyInA: string[]; onlyInB: string[]; different: { path: string; what: string[] }[]; compared: number };
  database?: { schemaSame: boolean; schemaDiff: string; tables: TableCompare[] };
  identical: boolean;
}

/** Every table's row count and an order-independent hash of its rows, computed by the database. */
async function tableDigests(deps: Deps, inst: Instance): Promise<Map<string, TableDigest>> {
  const db = dbFor(deps, inst)!;
  return db.engine.tableDigests(shellFor(deps, inst), db);
}

/** The schema as the database's engine dumps it, without what differs between any two dumps (keys, comments). */
async function schemaText(deps: Deps, inst: Instance): Promise<string> {
  const db = dbFor(deps, inst)!;
  return db.engine.schema(shellFor(deps, inst), db);
}

/** A unified diff of two texts, by diff(1) on this machine. */
async function unifiedDiff(labelA: string, a: string, labelB: string, b: string): Promise<string> {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'opsdeck-diff-'));
  try {
    writeFileSync(join(dir, 'a'), a);
    writeFileSync(join(dir, 'b'), b);
    const res = await new LocalShell().exec(['diff', '-u', '--label', labelA, '--label', labelB, join(dir, 'a'), join(dir, 'b')]);
    if (res.code !== 0 && res.code !== 1) throw new OpsError(`diff failed: ${res.stderr.trim()}`);
    return res.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads one file of an instance (for --diff); refuses what is not a plain text file of sane size. */
async function readFile(deps: Deps, inst: Instance, rel: string): Promise<string> {
  // A symlink anywhere on the way (config -> /etc, or the file itself) would read outside the instance.
  const script =
    'r=$1; rest=$2; while :; do r=$r/${rest%%/*}; [ -L "$r" ] && exit 4; case $rest in */*) rest=${rest#*/} ;; *) break ;; esac; done; f="$1/$2"; [ -f "$f" ] || exit 3; exec head -c 5000001 -- "$f"';
  const res = await shellFor(deps, inst).exec(['sh', '-c', script, 'sh', inst.path, rel], { maxBuffer: 6_000_000 });
  if (res.code === 3) return '';
  if (res.code === 4) throw new UsageError(`${rel} of ${inst.name} is or lies under a symlink: compare follows no link out of the instance's directory`, 'compare the link targets by hand');
  if (res.code !== 0) throw new OpsError(`cannot read ${rel} of ${inst.name}: ${res.stderr.trim()}`);
  if (res.stdout.length > 5_000_000) throw new UsageError(`${rel} is over 5 MB`, 'compare it by hand');
  return res.stdout;
}

export function comparePlan(deps: Deps, aName: string, bName: string, opts: { diff?: string } = {}): Plan<{ report?: CompareReport; diff?: string }, CompareReport & { diff?: string }> {
  const a = deps.inv.requireInstance(aName);
  const b = deps.inv.requireInstance(bName);
  if (a.name === b.name) throw new UsageError('compare needs two different instances');
  const rel = opts.diff !== undefined ? checkLocalPath(opts.diff) : undefined;
  return {
    command: 'compare',
    params: { a: aName, b: bName, diff: rel },
    instance: null,
    state: {},
    steps: [
      {
        name: 'compare',
        title: `Compare ${aName} and ${bName}`,
        explain: 'Hashes every file on both hosts, and compares the database schemas and every table’s rows; nothing is changed.',
        run: async (ctx) => {
          if (rel !== undefined) {
            const [ta, tb] = await Promise.all([readFile(deps, a, rel), readFile(deps, b, rel)]);
            ctx.state.diff = await unifiedDiff(`${aName}:${rel}`, ta, `${bName}:${rel}`, tb);
          }
          // Files that belong to each instance alone (its own config) are not differences.
          const excludes = [...new Set([...(a.watchExcludes ?? DEFAULT_EXCLUDES), ...(b.watchExcludes ?? DEFAULT_EXCLUDES), ...a.localPaths, ...b.localPaths])];
          const [la, lb] = await Promise.all([scanTree(deps, a, excludes, ctx.signal), scanTree(deps, b, excludes, ctx.signal)]);
          const d = diffListings(la, lb);
          const report: CompareReport = { a: aName, b: bName, files: { onlyInA: d.removed, onlyInB: d.added, different: d.changed, compared: lb.size }, identical: false };
          if (a.dbUrl && b.dbUrl) {
            const [sa, sb, ta, tb] = await Promise.all([schemaText(deps, a), schemaText(deps, b), tableDigests(deps, a), tableDigests(deps, b)]);
            const names = [...new Set([...ta.keys(), ...tb.keys()])].sort();
            report.database = {
              schemaSame: sa === sb,
              schemaDiff: sa === sb ? '' : await unifiedDiff(`${aName} schema`, sa, `${bName} schema`, sb),
              tables: names.map((t) => ({
                table: t,
                rowsA: ta.get(t)?.rows ?? null,
                rowsB: tb.get(t)?.rows ?? null,
                same: !!ta.get(t) && ta.get(t)!.sum === tb.get(t)?.sum && ta.get(t)!.rows === tb.get(t)!.rows,
              })),
            };
          }
          report.identical =
            !d.added.length && !d.removed.length && !d.changed.length && (!report.database || (report.database.schemaSame && report.database.tables.every((t) => t.same))) && !!a.dbUrl === !!b.dbUrl;
          ctx.state.report = report;
        },
      },
    ],
    result: (s) => ({ ...s.report!, ...(s.diff !== undefined ? { diff: s.diff } : {}) }),
  };
}
