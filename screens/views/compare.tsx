import { Box, Text } from 'ink';
import type { CompareReport } from '../../src/actions/compare.js';
import { Table } from '../components.js';
import { back, help, moves, quit } from '../keys.js';
import type { Ctx, ScreenDef } from '../screen.js';

declare module '../screen.js' {
  interface Routes {
    compare: object;
  }
}

/** The last comparison side by side (Enter on a finished compare run opens it). */
export const compare: ScreenDef<'compare'> = {
  count: (ctx: Ctx) => compareRows(ctx.model.getState().lastCompare).length,
  keys: (ctx) => [...moves(ctx), back(ctx), help(ctx), quit(ctx)],
  render: (ctx) => <CompareView result={ctx.model.getState().lastCompare} selected={ctx.selected()} height={ctx.bodyHeight} width={ctx.cols} />,
};

/** The comparison as rows of [what, left side, right side]: differences first, then the matching tables. */
function compareRows(r: CompareReport | undefined): string[][] {
  if (!r) return [];
  const rows: string[][] = [];
  for (const p of r.files.onlyInA) rows.push([p, 'present', 'MISSING']);
  for (const p of r.files.onlyInB) rows.push([p, 'MISSING', 'present']);
  for (const c of r.files.different) rows.push([c.path, 'differs', c.what.join(', ')]);
  if (r.database) {
    rows.push(['(schema)', r.database.schemaSame ? 'same' : 'DIFFERS', r.database.schemaSame ? 'same' : 'DIFFERS']);
    for (const t of [...r.database.tables].sort((x, y) => Number(x.same) - Number(y.same))) {
      rows.push([`table ${t.table}`, `${t.rowsA ?? 'missing'} rows`, `${t.rowsB ?? 'missing'} rows${t.same ? '' : '  DIFFERENT'}`]);
    }
  }
  return rows;
}

function CompareView({ result, selected, height, width }: { result?: CompareReport; selected: number; height: number; width: number }) {
  if (!result) return <Text dimColor>no comparison yet: press d on an instance</Text>;
  const side = Math.max(16, Math.floor((width - 4) * 0.3));
  const diffs = result.files.onlyInA.length + result.files.onlyInB.length + result.files.different.length;
  return (
    <Box flexDirection="column">
      <Text bold color={result.identical ? 'green' : 'yellow'}>
        {result.a} and {result.b} {result.identical ? 'are identical' : 'differ'}: {result.files.compared} files compared, {diffs} differ
        {result.database ? `; ${result.database.tables.filter((t) => !t.same).length} of ${result.database.tables.length} tables differ` : ''}
      </Text>
      <Table
        columns={[
          { title: 'WHAT', width: Math.max(20, width - 2 * side - 4) },
          { title: result.a, width: side },
          { title: result.b, width: side, color: (v) => (/DIFFER|MISSING|present|content|mode/.test(v) ? 'red' : undefined) },
        ]}
        rows={compareRows(result)}
        selected={selected}
        height={height - 1}
        empty="nothing to show"
      />
    </Box>
  );
}
