import { Box, Text } from 'ink';
import { describeLock, type Backup, type LockRecord } from '../../inventory/index.js';
import type { ChangeRequest } from '../../inventory/changes.js';
import { printable } from '../../src/core/display.js';
import { formatBytes } from '../../src/core/format.js';
import { relationWords } from '../../src/present/relations.js';
import type { Sampler } from '../../src/health/sampler.js';
import { drillKey, instanceActions } from '../actions.js';
import { BACKUP_COLUMNS, backupCells, manualBackups } from '../backups.js';
import { Table } from '../components.js';
import { back, commandKey, help, moves, quit } from '../keys.js';
import { metricsCell, stateColor, useLive } from '../live.js';
import type { InstanceRow } from '../model.js';
import type { ScreenDef } from '../screen.js';
import { sparkline } from '../sparkline.js';

declare module '../screen.js' {
  interface Routes {
    instance: { name: string };
  }
}

/** One instance: its settings, live health, and its backups (r restores the selected one). */
export const instance: ScreenDef<'instance'> = {
  selKey: (route) => `backups:${route.name}`,
  count: (ctx, route) => manualBackups(ctx.model, route.name).length,
  keys: (ctx) => [
    ...moves(ctx),
    ...instanceActions(ctx, (route: { name: string }) => ({ inst: ctx.model.byName(route.name), backup: manualBackups(ctx.model, route.name)[ctx.selected()] }), 'restore selected backup'),
    drillKey(ctx, (route: { name: string }) => ctx.model.byName(route.name)),
    commandKey(ctx),
    back(ctx),
    help(ctx),
    quit(ctx),
  ],
  render: (ctx, route) => (
    <InstanceView
      inst={ctx.model.byName(route.name)}
      backups={manualBackups(ctx.model, route.name)}
      selected={ctx.selected()}
      height={ctx.bodyHeight}
      sampler={ctx.model.sampler}
      lock={ctx.model.lockOf(route.name)}
      change={ctx.model.changeOf(route.name)}
      relation={relationWords(ctx.model.app, route.name)}
    />
  ),
};

function InstanceView({
  inst,
  backups,
  selected,
  height,
  sampler,
  lock,
  change,
  relation,
}: {
  inst?: InstanceRow;
  backups: Backup[];
  selected: number;
  height: number;
  sampler?: Sampler;
  lock?: LockRecord;
  change?: ChangeRequest;
  /** Staging, dev copy or mirror of which instance (a mirror: how old its data really is), a hold. */
  relation: string | null;
}) {
  if (!inst) return <Text color="red">this instance is no longer in the inventory</Text>;
  const field = (k: string, v: string | null) => (
    <Text>
      <Text dimColor>{k.padEnd(10)}</Text>
      {v ?? '-'}
    </Text>
  );
  return (
    <Box flexDirection="column">
      <Text bold>
        {inst.name}{' '}
        {inst.protected ? (
          <Text color="red" bold>
            PROTECTED
          </Text>
        ) : null}
      </Text>
      {field('env', inst.env)}
      {field('host', inst.host)}
      {field('path', inst.path)}
      {field('url', inst.url)}
      {field('database', inst.dbUrl)}
      {field('branch', inst.branch)}
      {field('revision', inst.revision?.slice(0, 12) ?? null)}
      <Text>
        <Text dimColor>{'state'.padEnd(10)}</Text>
        {inst.maintenanceSince ? <Text color="yellow">IN MAINTENANCE since {inst.maintenanceSince}</Text> : <Text color="green">live</Text>}
      </Text>
      {relation ? (
        <Text wrap="truncate-end">
          <Text dimColor>{'relation'.padEnd(10)}</Text>
          <Text color={relation.includes('HELD') || relation.includes('sync due') ? 'yellow' : undefined}>{printable(relation)}</Text>
        </Text>
      ) : null}
      {sampler ? <LiveLine sampler={sampler} name={inst.name} /> : null}
      {/* A run going on now, here or from another jump box (re-read every refresh interval on a team inventory). */}
      {lock ? (
        <Text wrap="truncate-end">
          <Text dimColor>{'running'.padEnd(10)}</Text>
          <Text color="yellow">{printable(describeLock(lock))}</Text>
        </Text>
      ) : null}
      {change ? (
        <Text wrap="truncate-end">
          <Text dimColor>{'change'.padEnd(10)}</Text>
          <Text color="yellow">{printable(`#${change.id} ${change.command} ${change.status.toUpperCase()}, asked by ${change.requestedBy}: ${change.why} (:changes)`)}</Text>
        </Text>
      ) : null}
      <Box marginTop={1} flexDirection="column">
        <Text bold>Backups</Text>
        <Table columns={BACKUP_COLUMNS} rows={backups.map(backupCells(Date.now()))} selected={selected} height={Math.max(2, height - 10)} empty="no backups yet: press b" />
      </Box>
    </Box>
  );
}

/** The instance's newest health sample in one line: verdict, site, database, metrics. */
function LiveLine({ sampler, name }: { sampler: Sampler; name: string }) {
  const live = useLive(sampler).snap?.instances.get(name) ?? { history: {} };
  const s = live.sample;
  const verdict = !s ? 'probing…' : s.ok ? 'ok' : printable(`PROBLEM: ${s.reasons.join('; ')}`);
  return (
    <Text wrap="truncate-end">
      <Text dimColor>{'health'.padEnd(10)}</Text>
      <Text color={stateColor(verdict)}>{verdict}</Text>
      {s?.http ? (
        <Text>
          {'  '}http {s.http.status ?? '---'} {s.http.ms} ms <Text color="cyan">{sparkline(live.history.http ?? [], 20)}</Text>
        </Text>
      ) : null}
      {s?.db ? (
        <Text> db {s.db.ok ? `${formatBytes(s.db.sizeBytes ?? 0)}, ${s.db.connections}/${s.db.maxConnections} conns` : <Text color="red">DOWN {printable(s.db.reason ?? '')}</Text>}</Text>
      ) : null}
      {s?.metrics ? <Text> {metricsCell(s, live.history)}</Text> : null}
    </Text>
  );
}
