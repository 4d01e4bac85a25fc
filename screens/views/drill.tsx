import { Box, Text } from 'ink';
import type { Backup } from '../../inventory/index.js';
import { confirmDrill } from '../actions.js';
import { BACKUP_COLUMNS, backupCells, manualBackups } from '../backups.js';
import type { Column } from '../components.js';
import { help, moves, quit } from '../keys.js';
import type { InstanceRow } from '../model.js';
import { columnLabel, pickable, Picker, type PickItem } from '../picker.js';
import type { Ctx, Route, ScreenDef } from '../screen.js';

declare module '../screen.js' {
  interface Routes {
    /** The restore drill wizard: step 1 picks a backup, step 2 the scratch target, step 3 confirms. */
    drill: { source: string } & ({ stage: 'backup' } | { stage: 'target'; backup: string });
  }
}

type DrillRoute = Route<'drill'>;

/** Every instance but the source, those a drill may restore onto first; the protected ones after them, refused (pickable says so). */
const targetsOf = (ctx: Ctx, source: string): InstanceRow[] => {
  const others = ctx.model.getState().instances.filter((i) => i.name !== source);
  return [...others.filter((i) => !i.protected), ...others.filter((i) => i.protected)];
};

/** The scratch picker's rows: a protected instance is listed with why the drill refuses it. */
const targetItems = (targets: InstanceRow[]): PickItem<InstanceRow>[] =>
  targets.map((t) => ({
    key: t.name,
    label: columnLabel(TARGET_COLUMNS, [t.name, t.protected ? `${t.env} PROTECTED` : t.env, t.host, t.dbUrl ? 'yes' : 'none']),
    value: t,
    ...(t.protected && { disabled: 'refused: protected' }),
  }));

const TARGET_COLUMNS: Column[] = [
  { title: 'SCRATCH', width: 24 },
  { title: 'ENV', width: 18, color: (v) => (v.endsWith('PROTECTED') ? 'red' : undefined) },
  { title: 'HOST', width: 14 },
  { title: 'DATABASE', width: 9 },
];

export const drill: ScreenDef<'drill'> = {
  selKey: (route) => `drill:${route.stage}`,
  count: (ctx, route) => (route.stage === 'backup' ? manualBackups(ctx.model, route.source) : targetsOf(ctx, route.source)).length,
  keys: (ctx) => [
    ...moves(ctx),
    {
      keys: ['enter'],
      label: 'enter',
      hint: 'next',
      run: (route: DrillRoute) => {
        if (route.stage === 'backup') {
          const b = manualBackups(ctx.model, route.source)[ctx.selected()];
          if (b) ctx.replace({ kind: 'drill', source: route.source, stage: 'target', backup: b.id });
          return;
        }
        const targets = targetsOf(ctx, route.source);
        // A refused row is not picked: it says why on the row itself.
        if (pickable(targetItems(targets), ctx.selected())) confirmDrill(ctx, route.source, route.backup, targets[ctx.selected()]);
      },
    },
    {
      keys: ['esc'],
      label: 'esc',
      hint: 'back',
      run: (route: DrillRoute) => (route.stage === 'target' ? ctx.replace({ kind: 'drill', source: route.source, stage: 'backup' }) : ctx.pop()),
    },
    help(ctx),
    quit(ctx),
  ],
  render: (ctx, route) => <DrillWizard route={route} backups={manualBackups(ctx.model, route.source)} targets={targetsOf(ctx, route.source)} selected={ctx.selected()} height={ctx.bodyHeight} />,
};

function DrillWizard({ route, backups, targets, selected, height }: { route: DrillRoute; backups: Backup[]; targets: InstanceRow[]; selected: number; height: number }) {
  const now = Date.now();
  return (
    <Box flexDirection="column">
      <Text bold>Restore drill of {route.source}</Text>
      {route.stage === 'backup' ? (
        <Box flexDirection="column">
          <Text>
            <Text color="cyan">Step 1 of 3: pick a backup.</Text> The newest is selected. Its age is how much data a real restore would lose (RPO). If every backup is old, fix the backups before
            anything else.
          </Text>
          <Picker columns={BACKUP_COLUMNS} items={backups.map((b) => ({ key: b.id, label: columnLabel(BACKUP_COLUMNS, backupCells(now)(b)), value: b }))} selected={selected} height={height - 4} />
        </Box>
      ) : (
        <Box flexDirection="column">
          <Text>
            <Text color="cyan">Step 2 of 3: pick the scratch instance to restore onto.</Text> Its code and database will be replaced by backup {route.backup}. Protected instances are listed dimmed: a
            drill never restores onto one.
          </Text>
          <Picker columns={TARGET_COLUMNS} items={targetItems(targets)} selected={selected} height={height - 4} empty="no other instance: make a scratch one with opsdeck instance make" />
        </Box>
      )}
      <Text dimColor>Step 3 shows every step of the drill before it starts; nothing changes until you confirm.</Text>
    </Box>
  );
}
