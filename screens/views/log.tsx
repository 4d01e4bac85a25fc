import { Box, Text } from 'ink';
import { Table } from '../components.js';
import { back, commandKey, help, moves, quit } from '../keys.js';
import type { LoggedCommand } from '../runState.js';
import type { Ctx, ScreenDef } from '../screen.js';

declare module '../screen.js' {
  interface Routes {
    /** run: only the current run's commands (from the run view), else the session's. */
    log: { run?: boolean };
  }
}

const commandsOf = (ctx: Ctx, run?: boolean): LoggedCommand[] => (run ? (ctx.model.getState().run?.commands ?? []) : ctx.model.commandLog);

/**
 * The command log: every command the runs ran (where, the line to type it again, how it ended), the
 * selected one in full below, so a sysadmin can redo a step by hand. Secrets show as ***.
 */
export const log: ScreenDef<'log'> = {
  count: (ctx, route) => commandsOf(ctx, route.run).length,
  keys: (ctx) => [...moves(ctx), commandKey(ctx), back(ctx), help(ctx), quit(ctx)],
  render: (ctx, route) => {
    const cmds = commandsOf(ctx, route.run);
    const sel = cmds[ctx.selected()];
    return (
      <Box flexDirection="column">
        <Text bold>{route.run ? 'Commands of this run' : 'Commands run from this console'}, oldest first</Text>
        <Table
          columns={[
            { title: 'WHERE', width: 8 },
            { title: 'RUN', width: 18 },
            { title: 'ENDED', width: 32, color: (v) => (v.startsWith('exit 0') ? undefined : 'red') },
            { title: 'COMMAND', width: Math.max(20, ctx.cols - 64) },
          ]}
          rows={cmds.map((c) => [c.place, c.run, c.outcome, c.line])}
          selected={ctx.selected()}
          height={ctx.bodyHeight - 5}
          empty="no commands yet: they appear here as runs start them"
        />
        {sel ? (
          <Box flexDirection="column" marginTop={1}>
            <Text dimColor>on {sel.place}, type (*** is a secret you supply):</Text>
            <Text wrap="wrap">{sel.line}</Text>
          </Box>
        ) : null}
      </Box>
    );
  },
};
