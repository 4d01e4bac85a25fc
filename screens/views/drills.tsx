import { Box, Text } from 'ink';
import type { DrillReport } from '../../src/actions/drill.js';
import { drillResultWord, rpoWords, rtoWords } from '../../src/present/index.js';
import { Table } from '../components.js';
import { back, commandKey, help, moves, quit } from '../keys.js';
import type { ScreenDef } from '../screen.js';

declare module '../screen.js' {
  interface Routes {
    drills: object;
  }
}

/** The restore drills' reports, newest first. */
export const drills: ScreenDef<'drills'> = {
  count: (ctx) => ctx.model.drills().length,
  keys: (ctx) => [...moves(ctx), commandKey(ctx), back(ctx), help(ctx), quit(ctx)],
  render: (ctx) => <DrillsView drills={ctx.model.drills()} selected={ctx.selected()} height={ctx.bodyHeight} width={ctx.cols} />,
};

function DrillsView({ drills, selected, height, width }: { drills: DrillReport[]; selected: number; height: number; width: number }) {
  return (
    <Box flexDirection="column">
      <Text bold>Restore drills, newest first</Text>
      <Table
        columns={[
          { title: 'DRILL', width: 26 },
          { title: 'SOURCE', width: 16 },
          { title: 'TARGET', width: 16 },
          { title: 'RESULT', width: 7, color: (v) => (v === 'passed' ? 'green' : 'red') },
          { title: 'RTO', width: 6 },
          { title: 'RPO', width: 7 },
          { title: 'REPORT / WHAT FAILED', width: Math.max(20, width - 86) },
        ]}
        rows={drills.map((d) => [d.id, d.source, d.target, drillResultWord(d), rtoWords(d.rtoSeconds), rpoWords(d.rpoSeconds), d.ok ? d.file : `${d.error ?? ''} (${d.file})`])}
        selected={selected}
        height={height - 1}
        empty="no drills yet: press D on an instance"
      />
    </Box>
  );
}
