import { Box, Text } from 'ink';
import { printable } from '../../src/core/display.js';
import { formatBytes } from '../../src/core/format.js';
import { fullestDisk } from '../../src/health/probes.js';
import type { Sampler } from '../../src/health/sampler.js';
import { Table } from '../components.js';
import { back, help, moves, quit } from '../keys.js';
import { useLive } from '../live.js';
import type { InstanceRow, UiModel } from '../model.js';
import type { Ctx, ScreenDef } from '../screen.js';
import { sparkline } from '../sparkline.js';

declare module '../screen.js' {
  interface Routes {
    host: { name: string };
  }
}

const instancesOn = (ctx: Ctx, host: string): InstanceRow[] => ctx.model.getState().instances.filter((i) => i.host === host);

/** One host: its live figures with their history, and the instances on it (Enter opens one). */
export const host: ScreenDef<'host'> = {
  selKey: (route) => `host:${route.name}`,
  count: (ctx, route) => instancesOn(ctx, route.name).length,
  keys: (ctx) => [
    ...moves(ctx),
    {
      keys: ['enter'],
      label: 'enter',
      hint: 'open instance',
      run: (route: { name: string }) => {
        const inst = instancesOn(ctx, route.name)[ctx.selected()];
        if (inst) ctx.push({ kind: 'instance', name: inst.name });
      },
    },
    back(ctx),
    help(ctx),
    quit(ctx),
  ],
  render: (ctx, route) => (
    <HostView
      name={route.name}
      host={ctx.model.host(route.name)}
      sampler={ctx.model.sampler}
      instances={instancesOn(ctx, route.name)}
      selected={ctx.selected()}
      height={ctx.bodyHeight}
      width={ctx.cols}
    />
  ),
};

const HISTORY_W = 60;

function HostView({
  name,
  host,
  sampler,
  instances,
  selected,
  height,
  width,
}: {
  name: string;
  host?: ReturnType<UiModel['host']>;
  sampler?: Sampler;
  instances: InstanceRow[];
  selected: number;
  height: number;
  width: number;
}) {
  const { snap, isStale } = useLive(sampler);
  const live = snap?.hosts.get(name);
  const stale = isStale(live);
  if (!host) return <Text color="red">host {name} is no longer in the inventory</Text>;
  const s = live?.sample;
  const h = live?.history ?? {};
  const w = Math.max(10, Math.min(HISTORY_W, width - 40));
  const line = (label: string, value: string, hist?: number[], max?: number) => (
    <Text>
      <Text dimColor>{label.padEnd(10)}</Text>
      {value.padEnd(16)}
      {hist ? <Text color="cyan">{sparkline(hist, w, { max })}</Text> : null}
    </Text>
  );
  const disk = fullestDisk(s);
  return (
    <Box flexDirection="column">
      <Text bold>
        {name}{' '}
        <Text dimColor>
          {host.user}@{host.address}:{host.port}
          {host.jump ? ` via ${host.jump}` : ''}
        </Text>{' '}
        {!s ? (
          <Text color="yellow">probing…</Text>
        ) : s.ok ? (
          <Text color="green">up</Text>
        ) : (
          <Text color="red" bold>
            DOWN: {printable(s.reason ?? '')}
          </Text>
        )}
        {stale ? <Text color="yellow"> STALE: no fresh sample</Text> : null}
      </Text>
      {line('load', s?.load ? `${s.load.map((x) => x.toFixed(2)).join(' ')}` : '-', h.load, s?.cpus)}
      {line('cpu', s?.cpu !== undefined ? `${Math.round(s.cpu * 100)}% of ${s.cpus}` : '-', h.cpu, 1)}
      {line('memory', s?.memTotal ? `${formatBytes(s.memUsed ?? 0)} of ${formatBytes(s.memTotal)}` : '-', h.mem, 1)}
      {line('disk', disk !== undefined ? `${Math.round(disk * 100)}% (fullest)` : '-', h.disk, 1)}
      {(s?.disks ?? []).map((d) => (
        <Text key={d.mount} dimColor>
          {'          '}
          {d.mount} {formatBytes(d.used)} of {formatBytes(d.size)}
        </Text>
      ))}
      {line('uptime', s?.uptimeSeconds ? `${(s.uptimeSeconds / 86400).toFixed(1)} days` : '-')}
      <Box marginTop={1} flexDirection="column">
        <Text bold>Instances on {name}</Text>
        <Table
          columns={[
            { title: 'INSTANCE', width: 24 },
            { title: 'ENV', width: 10 },
            { title: 'PATH', width: Math.max(10, width - 38) },
          ]}
          rows={instances.map((i) => [i.name, i.env, i.path])}
          selected={selected}
          height={Math.max(2, height - 9 - (s?.disks?.length ?? 0))}
          empty="no instances on this host"
        />
      </Box>
    </Box>
  );
}
