import { Box, Text } from 'ink';
import { age } from '../../src/core/format.js';
import { drillKey, instanceActions } from '../actions.js';
import { manualBackups } from '../backups.js';
import { Table, type Column } from '../components.js';
import { commandKey, drillsKey, envKey, escBack, filterKey, help, moves, quit } from '../keys.js';
import type { InstanceRow } from '../model.js';
import type { Ctx, ScreenDef } from '../screen.js';

declare module '../screen.js' {
  interface Routes {
    instances: object;
  }
}

const selectedInstance = (ctx: Ctx): InstanceRow | undefined => ctx.visible()[ctx.selected()];

/** Every instance under the filters; the operation keys act on the selected row. */
export const instances: ScreenDef<'instances'> = {
  count: (ctx) => ctx.visible().length,
  keys: (ctx) => [
    ...moves(ctx),
    {
      keys: ['enter'],
      label: 'enter',
      hint: 'open instance',
      run: () => {
        const inst = selectedInstance(ctx);
        if (inst) ctx.push({ kind: 'instance', name: inst.name });
      },
    },
    filterKey(ctx),
    envKey(ctx),
    ...instanceActions(
      ctx,
      () => {
        const inst = selectedInstance(ctx);
        return { inst, backup: inst && manualBackups(ctx.model, inst.name)[0] };
      },
      'restore latest',
    ),
    drillKey(ctx, () => selectedInstance(ctx)),
    drillsKey(ctx),
    { keys: ['R'], label: 'R', hint: 'reload', run: () => ctx.model.reload() },
    commandKey(ctx),
    escBack(ctx),
    help(ctx),
    quit(ctx),
  ],
  render: (ctx) => (
    <InstancesView rows={ctx.visible()} selected={ctx.selected()} height={ctx.bodyHeight - (ctx.nav.filtering ? 1 : 0)} filtering={ctx.nav.filtering} filter={ctx.nav.filter} width={ctx.cols} />
  ),
};

const backupColor = (v: string) => (v === 'never' ? 'red' : v.endsWith('d ago') ? 'yellow' : 'green');

function InstancesView({ rows, selected, height, filtering, filter, width }: { rows: InstanceRow[]; selected: number; height: number; filtering: boolean; filter: string; width: number }) {
  const now = Date.now();
  const nameW = Math.max(12, Math.min(32, Math.floor(width * 0.25)));
  const columns: Column[] = [
    { title: 'INSTANCE', width: nameW },
    { title: 'ENV', width: 10, color: (v) => (v.endsWith('*') ? 'red' : undefined) },
    { title: 'HOST', width: 14 },
    { title: 'LAST BACKUP', width: 12, color: backupColor },
    { title: 'PATH', width: Math.max(10, width - nameW - 42) },
  ];
  // Only the visible window is turned into cells: thousands of rows stay cheap.
  const row = (n: number) => {
    const i = rows[n];
    return [i.name, i.env + (i.protected ? '*' : ''), i.host, age(i.lastBackup, now), i.path];
  };
  return (
    <Box flexDirection="column">
      {filtering ? (
        <Text>
          /<Text inverse>{filter || ' '}</Text>
        </Text>
      ) : null}
      <Table columns={columns} count={rows.length} row={row} selected={selected} height={height} empty="no instances: add one with opsdeck instance add (see --help)" />
    </Box>
  );
}
