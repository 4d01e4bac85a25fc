import { Box, Text } from 'ink';
import type { ChangeRequest } from '../../inventory/changes.js';
import { Table } from '../components.js';
import { back, commandKey, help, moves, quit } from '../keys.js';
import type { ScreenDef } from '../screen.js';

declare module '../screen.js' {
  interface Routes {
    changes: object;
  }
}

/** Open change requests on protected environments (team inventory): a approves, x rejects; the run view says how it went. */
export const changes: ScreenDef<'changes'> = {
  count: (ctx) => ctx.model.changes().length,
  keys: (ctx) => {
    const selected = () => ctx.model.changes()[ctx.selected()];
    const decide = (approve: boolean) => () => {
      const c = selected();
      if (c && ctx.model.decide(c.id, approve)) ctx.push({ kind: 'run' });
    };
    return [
      ...moves(ctx),
      { keys: ['a'], label: 'a', hint: 'approve', when: () => selected()?.status === 'pending', run: decide(true) },
      { keys: ['x'], label: 'x', hint: 'reject', when: () => !!selected(), run: decide(false) },
      commandKey(ctx),
      back(ctx),
      help(ctx),
      quit(ctx),
    ];
  },
  render: (ctx) => <ChangesView changes={ctx.model.changes()} selected={ctx.selected()} height={ctx.bodyHeight} width={ctx.cols} />,
};

function ChangesView({ changes, selected, height, width }: { changes: ChangeRequest[]; selected: number; height: number; width: number }) {
  const c = changes[selected];
  return (
    <Box flexDirection="column">
      <Text bold>Change requests waiting or approved</Text>
      <Table
        columns={[
          { title: 'ID', width: 5 },
          { title: 'STATUS', width: 9, color: (v) => (v === 'approved' ? 'green' : 'yellow') },
          { title: 'COMMAND', width: 16 },
          { title: 'INSTANCE', width: 18 },
          { title: 'ASKED BY', width: 16 },
          { title: 'WHY', width: Math.max(10, width - 70) },
        ]}
        rows={changes.map((x) => [String(x.id), x.status, x.command, x.instance ?? `${x.env} (standing)`, x.requestedBy, x.why])}
        selected={selected}
        height={Math.max(2, height - 6)}
        empty="no open change requests"
      />
      {c ? (
        <Box flexDirection="column" marginTop={1}>
          <Text wrap="truncate-end">plan: {c.plan.join(' → ')}</Text>
          <Text wrap="truncate-end">back-out: {c.backout}</Text>
        </Box>
      ) : null}
    </Box>
  );
}
