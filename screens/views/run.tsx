import { Box, Text } from 'ink';
import type { DrillReport } from '../../src/actions/drill.js';
import { drillResultWord, rpoWords, rtoWords } from '../../src/present/index.js';
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
      { keys: ['ctrl-c'], label: 'ctrl-c', hint: 'cancel (rolls back)', when: () => model.running, run: () => model.cancel() },
      help(ctx),
      quit(ctx),
    ];
  },
  render: (ctx) => {
    const { run } = ctx.model.getState();
    if (!run) return <Text dimColor>no run</Text>;
    const drillEnded = run.command === 'drill' && !!run.finished;
    return (
      <Box flexDirection="column">
        <RunView run={run} width={ctx.cols} height={ctx.bodyHeight - (drillEnded ? 4 : 0)} />
        {drillEnded ? <DrillOutcome report={ctx.model.drills().find((d) => d.target === run.instance)} /> : null}
      </Box>
    );
  },
};

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
