import { Box, Text } from 'ink';
import { quit } from '../keys.js';
import type { Binding, Kind, ScreenDef } from '../screen.js';

declare module '../screen.js' {
  interface Routes {
    help: { of: Kind };
  }
}

/** The keys of the screen it was opened on. */
export const help: ScreenDef<'help'> = {
  count: () => 0,
  keys: (ctx) => [{ keys: ['esc', '?'], label: 'esc', hint: 'back', run: () => ctx.pop() }, quit(ctx)],
  render: (ctx, route) => <HelpView bindings={ctx.keysOf(route.of)} of={route.of} />,
};

function HelpView({ bindings, of }: { bindings: Pick<Binding, 'keys' | 'label' | 'hint'>[]; of: string }) {
  // Two columns: a screen with many keys still fits a small terminal.
  const half = Math.ceil(bindings.length / 2);
  const column = (list: Pick<Binding, 'keys' | 'label' | 'hint'>[]) => (
    <Box flexDirection="column" width={44}>
      {list.map((b, i) => (
        <Text key={i} wrap="truncate-end">
          <Text color="yellow">{b.keys.join(', ').padEnd(12)}</Text> {b.hint}
        </Text>
      ))}
    </Box>
  );
  return (
    <Box flexDirection="column">
      <Text bold>Keys on the {of} screen</Text>
      <Box>
        {column(bindings.slice(0, half))}
        {column(bindings.slice(half))}
      </Box>
      <Text> </Text>
      <Text dimColor>Everywhere: ? help · q quit · esc back. Destructive actions ask first, with Cancel focused.</Text>
    </Box>
  );
}
