import { Box, Text } from 'ink';
import type { RunRecord } from '../../inventory/index.js';
import { age } from '../../src/core/format.js';
import { Table } from '../components.js';
import { back, commandKey, help, moves, quit } from '../keys.js';
import type { ScreenDef } from '../screen.js';

declare module '../screen.js' {
  interface Routes {
    runs: object;
  }
}

/** The audit trail, newest first. */
export const runs: ScreenDef<'runs'> = {
  count: (ctx) => ctx.model.runs().length,
  keys: (ctx) => [...moves(ctx), commandKey(ctx), back(ctx), help(ctx), quit(ctx)],
  render: (ctx) => <RunsView runs={ctx.model.runs()} selected={ctx.selected()} height={ctx.bodyHeight} width={ctx.cols} />,
};

function RunsView({ runs, selected, height, width }: { runs: RunRecord[]; selected: number; height: number; width: number }) {
  return (
    <Box flexDirection="column">
      <Text bold>The audit trail, newest first</Text>
      <Table
        columns={[
          { title: 'RUN', width: 6 },
          { title: 'STARTED', width: 10 },
          { title: 'COMMAND', width: 12 },
          { title: 'INSTANCE', width: 18 },
          { title: 'WHO', width: 16 },
          { title: 'STATUS', width: 11, color: (v) => (v === 'ok' ? 'green' : v === 'running' || v === 'dry-run' ? undefined : 'red') },
          { title: 'TIME', width: 7 },
          { title: 'ERROR', width: Math.max(10, width - 88) },
        ]}
        count={runs.length}
        row={(i) => {
          const r = runs[i];
          return [
            String(r.id),
            age(r.startedAt),
            r.command,
            r.instance ?? '-',
            `${r.osUser}@${r.origin}`,
            r.status,
            r.durationMs === null ? '-' : `${(r.durationMs / 1000).toFixed(1)} s`,
            r.error ?? '',
          ];
        }}
        selected={selected}
        height={height - 1}
        empty="no runs yet"
      />
    </Box>
  );
}
