import { Box, Text } from 'ink';
import { useMemo } from 'react';
import { fullestDisk, memoryUsed, type HostSample, type InstanceSample } from '../../src/health/probes.js';
import type { Sampler, SamplerState, Tracked } from '../../src/health/sampler.js';
import { duration, formatBytes, percent } from '../../src/core/format.js';
import { drillKey } from '../actions.js';
import { Table, type Column } from '../components.js';
import { commandKey, drillsKey, envKey, escBack, filterKey, help, moves, quit } from '../keys.js';
import { matches, PANELS, type DashboardData, type Panel } from '../listing.js';
import { metricsCell, stateColor, useLive } from '../live.js';
import type { InstanceRow } from '../model.js';
import type { Ctx, ScreenDef } from '../screen.js';
import { sparkline } from '../sparkline.js';

declare module '../screen.js' {
  interface Routes {
    dashboard: object;
  }
}

/** The instance under the selection, when the focus is on instances or databases. */
function selectedInstance(ctx: Ctx): InstanceRow | undefined {
  const focus = ctx.nav.focus;
  return focus === 'hosts' ? undefined : ctx.dash()[focus][ctx.selected()];
}

/** The home screen: live hosts, instances and databases, each a panel the selection moves in. */
export const dashboard: ScreenDef<'dashboard'> = {
  selKey: (_route, nav) => `dash:${nav.focus}`,
  count: (ctx) => ctx.dash()[ctx.nav.focus].length,
  keys: (ctx) => [
    ...moves(ctx),
    { keys: ['tab'], label: 'tab', hint: 'next panel', run: () => void (ctx.nav.focus = PANELS[(PANELS.indexOf(ctx.nav.focus) + 1) % PANELS.length]) },
    {
      keys: ['enter'],
      label: 'enter',
      hint: 'open',
      run: () => {
        if (ctx.nav.focus === 'hosts') {
          const h = ctx.dash().hosts[ctx.selected()];
          if (h) ctx.push({ kind: 'host', name: h });
          return;
        }
        const inst = selectedInstance(ctx);
        if (inst) ctx.push({ kind: 'instance', name: inst.name });
      },
    },
    envKey(ctx),
    filterKey(ctx),
    { keys: ['i'], label: 'i', hint: 'instances', run: () => ctx.push({ kind: 'instances' }) },
    drillKey(ctx, () => selectedInstance(ctx)),
    drillsKey(ctx),
    commandKey(ctx),
    escBack(ctx),
    help(ctx),
    quit(ctx),
  ],
  render: (ctx) => {
    const { nav, model } = ctx;
    const env = model.getState().env;
    const filter = nav.filter.toLowerCase();
    return (
      <Box flexDirection="column">
        {nav.filtering ? (
          <Text>
            /<Text inverse>{nav.filter || ' '}</Text>
          </Text>
        ) : null}
        <DashboardView
          data={ctx.dash()}
          shown={(name) => {
            const r = model.byName(name);
            return !!r && matches(r, env, filter);
          }}
          sampler={model.sampler}
          sel={{ hosts: nav.sel['dash:hosts'] ?? 0, instances: nav.sel['dash:instances'] ?? 0, databases: nav.sel['dash:databases'] ?? 0 }}
          focus={nav.focus}
          height={ctx.bodyHeight - (nav.filtering ? 1 : 0)}
          width={ctx.cols}
          readWhole={model.getState().storeReadWhole}
        />
      </Box>
    );
  },
};

/** Sparkline width: a minute of samples on a wide terminal, half on a narrow one. */
const sparkWidth = (width: number) => (width >= 140 ? 12 : 6);

/** A state cell: the verdict, or that no sample came yet, with a stale marker when the sample is late. */
function stateCell<S extends { ok: boolean }>(t: Tracked<S> | undefined, stale: boolean, now: number, up: string, down: string): string {
  if (!t?.sample) return t?.since !== undefined && stale ? 'no answer' : 'probing…';
  const v = t.sample.ok ? up : down;
  return stale ? `${v} STALE ${duration((now - (t.at ?? now)) / 1000)}` : v;
}

const sparkColor = () => 'cyan';

function hostRow(name: string, snap: SamplerState, isStale: (t?: Tracked<unknown>) => boolean, now: number, spark = 12): string[] {
  const t = snap.hosts.get(name);
  const s: HostSample | undefined = t?.sample;
  const h = t?.history ?? {};
  return [
    name,
    stateCell(t, isStale(t), now, 'up', 'DOWN'),
    s?.load ? s.load[0].toFixed(2) : '-',
    sparkline(h.load ?? [], spark, { max: s?.cpus }),
    percent(s?.cpu),
    percent(memoryUsed(s)),
    percent(fullestDisk(s)),
    sparkline(h.disk ?? [], spark, { max: 1 }),
    s?.uptimeSeconds ? duration(s.uptimeSeconds) : '-',
    s && !s.ok ? (s.reason ?? '') : '',
  ];
}

function instanceRow(i: InstanceRow, snap: SamplerState, isStale: (t?: Tracked<unknown>) => boolean, now: number, spark = 12): string[] {
  const t = snap.instances.get(i.name);
  const s: InstanceSample | undefined = t?.sample;
  const backup = s ? (s.backupAgeSeconds === null ? 'never' : duration(s.backupAgeSeconds)) : '-';
  return [
    i.name,
    i.env + (i.protected ? '*' : ''),
    stateCell(t, isStale(t), now, 'ok', 'PROBLEM'),
    s?.http ? `${s.http.status ?? '---'} ${s.http.ms}ms` : '-',
    sparkline(t?.history.http ?? [], spark, { fromMin: false }),
    s ? (s.halfRestored ? 'HALF-REST' : s.maintenance ? 'maintenance' : 'live') : '-',
    backup,
    !s?.watch ? '-' : s.watch.changes ? `${s.watch.changes} CHANGED` : 'ok',
    s?.reasons.join('; ') ?? '',
  ];
}

function databaseRow(i: InstanceRow, snap: SamplerState, isStale: (t?: Tracked<unknown>) => boolean, now: number, spark = 12): string[] {
  const t = snap.instances.get(i.name);
  const s = t?.sample;
  const d = s?.db;
  const stale = isStale(t);
  return [
    i.name,
    !i.dbUrl ? '-' : !d ? stateCell(t && { ...t, sample: undefined }, stale, now, 'up', 'DOWN') : (d.ok ? 'up' : 'DOWN') + (stale ? ' STALE' : ''),
    d?.sizeBytes !== undefined ? formatBytes(d.sizeBytes) : (d?.reason ?? '-'),
    d?.connections !== undefined ? `${d.connections}/${d.maxConnections}` : '-',
    sparkline(t?.history.connections ?? [], spark, { max: d?.maxConnections }),
    d?.longestTransactionSeconds != null ? duration(d.longestTransactionSeconds) : '-',
    d?.replication ? `${d.replication.role}${d.replication.lagSeconds !== null ? ` ${duration(d.replication.lagSeconds)}` : ''}` : '-',
    metricsCell(s, t?.history ?? {}),
  ];
}

/**
 * How many of the rows shown are bad: walks the bad ones (usually a few) or the rows shown, whichever
 * is fewer (on a fleet that is all down, the bad are every row).
 */
function countShown(bad: ReadonlySet<string>, rows: readonly (string | { name: string })[], shown: (name: string) => boolean): number {
  if (bad.size <= rows.length) {
    let n = 0;
    for (const name of bad) if (shown(name)) n++;
    return n;
  }
  let n = 0;
  for (const r of rows) if (bad.has(typeof r === 'string' ? r : r.name)) n++;
  return n;
}

function DashboardView({
  data,
  sampler,
  sel,
  focus,
  height,
  width,
  shown,
  readWhole,
}: {
  data: DashboardData;
  /** When the store was last read whole (backups check --read-data-subset); null: never. */
  readWhole?: string | null;
  /** Whether an instance passes the filters: counts the bad ones shown without a set of every row. */
  shown: (instance: string) => boolean;
  sampler?: Sampler;
  sel: Record<Panel, number>;
  focus: Panel;
  height: number;
  width: number;
}) {
  const { snap, isStale } = useLive(sampler);
  // Worked out again only when the sampler's findings or the rows shown change, not at each key
  // that moves the selection.
  const bad = snap?.bad;
  const { hostDown, instBad, dbBad } = useMemo(() => {
    if (!bad) return { hostDown: 0, instBad: 0, dbBad: 0 };
    return {
      hostDown: countShown(bad.hosts, data.hosts, (n) => data.hostSet.has(n)),
      instBad: countShown(bad.instances, data.instances, shown),
      dbBad: countShown(bad.databases, data.databases, shown),
    };
    // shown is made at each render; what it answers changes only with data (the filters).
  }, [bad, data]);
  if (!snap) return <Text dimColor>live health is off in this console</Text>;
  const now = Date.now();
  const spark = sparkWidth(width);
  // Hosts and databases take what they need up to a third each; instances get the rest.
  const third = Math.max(4, Math.floor((height - 3) / 3));
  const instCount = data.counts?.instances ?? data.instances.length;
  const dbCount = data.counts?.databases ?? data.databases.length;
  const hostsH = Math.min(data.hosts.length + 2, third);
  const dbH = Math.min(Math.max(2, dbCount + 2), third);
  const instH = Math.max(4, height - hostsH - dbH - 3);
  // On a narrow terminal (80 columns on a jump box) what goes first is what helps least: sparklines,
  // then lesser figures; the state and the reason a row is bad stay (flex: the width left over).
  const hostCols: Column[] = [
    { title: 'HOST', width: 14 },
    { title: 'STATE', width: 12, color: stateColor },
    { title: 'LOAD', width: 6, drop: 4 },
    { title: 'load', width: spark, color: sparkColor, drop: 1 },
    { title: 'CPU', width: 4, drop: 5 },
    { title: 'MEM', width: 4, drop: 5 },
    { title: 'DISK', width: 4, drop: 6 },
    { title: 'disk', width: spark, color: sparkColor, drop: 1 },
    { title: 'UP', width: 4, drop: 2 },
    { title: 'WHY', width: 16, flex: true, color: () => 'red' },
  ];
  const nameW = Math.max(12, Math.min(28, Math.floor(width * 0.2)));
  const instCols: Column[] = [
    { title: 'INSTANCE', width: nameW },
    { title: 'ENV', width: 8, color: (v) => (v.endsWith('*') ? 'red' : undefined), drop: 5 },
    { title: 'STATE', width: 12, color: stateColor },
    { title: 'HTTP', width: 9, drop: 2 },
    { title: 'resp', width: spark, color: sparkColor, drop: 1 },
    { title: 'MODE', width: 11, color: (v) => (v === 'maintenance' ? 'yellow' : v === 'HALF-REST' ? 'red' : undefined), drop: 6 },
    { title: 'BACKUP', width: 6, color: (v) => (v === 'never' ? 'red' : undefined), drop: 4 },
    { title: 'WATCH', width: 8, color: (v) => (v.endsWith('CHANGED') ? 'red' : v === 'ok' ? 'green' : undefined), drop: 3 },
    { title: 'WHY', width: 16, flex: true, color: () => 'red' },
  ];
  const dbCols: Column[] = [
    { title: 'DATABASE OF', width: nameW },
    { title: 'STATE', width: 12, color: stateColor },
    { title: 'SIZE', width: 9, drop: 3 },
    { title: 'CONNS', width: 8, drop: 4 },
    { title: 'conns', width: spark, color: sparkColor, drop: 1 },
    { title: 'LONG TX', width: 7, drop: 5 },
    { title: 'REPLICA', width: 10, drop: 5 },
    { title: 'METRICS', width: 12, flex: true, drop: 2 },
  ];
  const title = (p: Panel, label: string, n: number, bad: number, what: string) => (
    <Text>
      <Text bold color={focus === p ? 'cyan' : undefined} inverse={focus === p}>
        {' '}
        {label}{' '}
      </Text>
      <Text dimColor> {n} </Text>
      {bad ? (
        <Text color="red" bold>
          {bad} {what}
        </Text>
      ) : (
        <Text color="green">all well</Text>
      )}
    </Text>
  );
  return (
    <Box flexDirection="column">
      {title('hosts', 'HOSTS', data.hosts.length, hostDown, 'down')}
      <Table
        columns={hostCols}
        width={width}
        count={data.hosts.length}
        row={(i) => hostRow(data.hosts[i], snap, isStale, now, spark)}
        selected={sel.hosts}
        height={hostsH - 1}
        focused={focus === 'hosts'}
        empty="no hosts: add one with opsdeck host add NAME --address ADDR"
      />
      <Text wrap="truncate-end">
        {title('instances', 'INSTANCES', instCount, instBad, 'with a problem')}
        {/* On the panel's title line: no line of the 24 taken. The date a check cycle last read every pack. */}
        {readWhole !== undefined ? (
          <Text color={readWhole ? undefined : 'yellow'} dimColor={!!readWhole}>
            {'   store read whole '}
            {readWhole ? `${readWhole.slice(0, 16).replace('T', ' ')}Z` : 'never'}
          </Text>
        ) : null}
      </Text>
      <Table
        columns={instCols}
        width={width}
        count={instCount}
        row={(i) => instanceRow(data.instances[i], snap, isStale, now, spark)}
        selected={sel.instances}
        height={instH}
        focused={focus === 'instances'}
        empty="no instances: add one with opsdeck instance add"
      />
      {title('databases', 'DATABASES', dbCount, dbBad, 'down')}
      <Table
        columns={dbCols}
        width={width}
        count={dbCount}
        row={(i) => databaseRow(data.databases[i], snap, isStale, now, spark)}
        selected={sel.databases}
        height={dbH - 1}
        focused={focus === 'databases'}
        empty="no databases"
      />
    </Box>
  );
}
