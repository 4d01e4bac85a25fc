import { Box, Text } from 'ink';
import type { DrillReport } from '../../src/actions/drill.js';
import type { WatchReport } from '../../src/actions/watch.js';
import { drillResultWord, rpoWords, rtoWords, watchLines } from '../../src/present/index.js';
import { RunView } from '../components.js';
import { help, quit } from '../keys.js';
import type { ScreenDef } from '../screen.js';

declare module '../screen.js' {
  interface Routes {
    run: object;
  }
}

/** The run under way or just ended: its steps ticking, progress, log; ctrl-c cancels and rolls back. */
export const run: ScreenDef<'run'> = {
  count: () => 0,
  keys: (ctx) => {
    const { model } = ctx;
    return [
      {
        keys: ['esc'],
        label: 'esc',
        hint: 'back',
        when: () => !model.running,
        run: () => {
          model.clearRun();
          ctx.pop();
        },
      },
      {
        keys: ['enter'],
        label: 'enter',
        hint: 'see the comparison',
        when: () => !model.running && model.getState().run?.command === 'compare' && !!model.getState().lastCompare,
        run: () => {
          ctx.replace({ kind: 'compare' });
          ctx.nav.sel.compare = 0;
        },
      },
      {
        keys: ['l'],
        label: 'l',
        hint: 'the commands it ran',
        when: () => (model.getState().run?.commands.length ?? 0) > 0,
        run: () => ctx.push({ kind: 'log', run: true }),
      },
      { keys: ['ctrl-c'], label: 'ctrl-c', hint: 'cancel (rolls back)', when: () => model.running, run: () => model.cancel() },
      help(ctx),
      quit(ctx),
    ];
  },
  render: (ctx) => {
    const { run } = ctx.model.getState();
    if (!run) return <Text dimColor>no run</Text>;
    const drillEnded = run.command === 'drill' && !!run.finished;
    const watched = run.command === 'watch' && run.finished ? ctx.model.getState().lastWatch : undefined;
    // The watch's findings take at most half the body; the run's steps keep the rest.
    const watchRows = watched ? Math.min(watchLines(watched).length, Math.max(1, Math.floor(ctx.bodyHeight / 2) - 2)) + 2 : 0;
    return (
      <Box flexDirection="column">
        <RunView run={run} width={ctx.cols} height={ctx.bodyHeight - (drillEnded ? 4 : 0) - watchRows} />
        {drillEnded ? <DrillOutcome report={ctx.model.drills().find((d) => d.target === run.instance)} /> : null}
        {watched ? <WatchOutcome report={watched} rows={watchRows - 2} /> : null}
      </Box>
    );
  },
};

/** What the watch found, as opsdeck watch prints it; what does not fit is counted. */
function WatchOutcome({ report, rows }: { report: WatchReport; rows: number }) {
  const lines = watchLines(report);
  const shown = lines.length > rows ? [...lines.slice(0, rows - 1), `  ... and ${lines.length - rows + 1} more (opsdeck watch ${report.instance} lists them all)`] : lines;
  const changed = lines.length > 1;
  return (
    <Box flexDirection="column" borderStyle="round" borderColor={changed ? 'red' : 'green'} paddingX={1}>
      {shown.map((l, i) => (
        <Text key={i} wrap="truncate-end" bold={i === 0} color={i === 0 && changed ? 'red' : undefined}>
          {l}
        </Text>
      ))}
    </Box>
  );
}

function DrillOutcome({ report }: { report?: DrillReport }) {
  if (!report) return null;
  return (
    <Box flexDirection="column" borderStyle="round" borderColor={report.ok ? 'green' : 'red'} paddingX={1}>
      <Text bold color={report.ok ? 'green' : 'red'}>
        Drill {drillResultWord(report)}: RTO {rtoWords(report.rtoSeconds, 'none (not restored)')}, RPO {rpoWords(report.rpoSeconds)}
      </Text>
      <Text dimColor wrap="truncate-middle">
        report: {report.file}
      </Text>
    </Box>
  );
}
