import { Box, Text, useApp, useInput, type Key } from 'ink';
import { useMemo, useRef, useState, useSyncExternalStore } from 'react';
import { runCommand } from './commands.js';
import { ConfirmView, Footer, Header, useTermSize } from './components.js';
import { dashboardData, firstPageData, matches, type DashboardData } from './listing.js';
import type { InstanceRow, UiModel } from './model.js';
import { PickView } from './picker.js';
import type { Binding, Ctx, Kind, Nav, Route, Screen } from './screen.js';
import { SCREENS } from './views/index.js';

export type Home = 'dashboard' | 'instances';

function keyName(input: string, key: Key): string {
  if (key.upArrow) return 'up';
  if (key.downArrow) return 'down';
  if (key.leftArrow) return 'left';
  if (key.rightArrow) return 'right';
  if (key.return) return 'enter';
  if (key.escape) return 'esc';
  if (key.tab) return 'tab';
  if (key.pageDown) return 'pgdn';
  if (key.pageUp) return 'pgup';
  if (key.backspace || key.delete) return 'backspace';
  if (key.ctrl && input === 'c') return 'ctrl-c';
  return input;
}

/** A screen's keys and its selection slot, for the route on top (one generic step keeps kind and route together). */
function keysFor<K extends Kind>(ctx: Ctx, route: Route<K>): Binding[] {
  const def = SCREENS[route.kind];
  return def.keys(ctx).map((b) => ({ ...b, run: () => b.run(route), denied: b.denied ? () => b.denied?.(route) : undefined }));
}
function countFor<K extends Kind>(ctx: Ctx, route: Route<K>): number {
  return SCREENS[route.kind].count(ctx, route);
}
function selKeyFor<K extends Kind>(nav: Nav, route: Route<K>): string {
  return SCREENS[route.kind].selKey?.(route, nav) ?? route.kind;
}
function renderFor<K extends Kind>(ctx: Ctx, route: Route<K>) {
  return SCREENS[route.kind].render(ctx, route);
}

/** Frame time: what comes faster than this from the model (a run's logs and commands) is drawn once. */
const FRAME_MS = 16;

/**
 * A model subscription that calls back at most once a frame: the first change at once, the ones
 * that follow within the frame together at its end. Ink draws every commit (maxFps 0, so that a
 * key's frame never waits); this keeps a burst of a run's events from drawing each one.
 */
export function onceAFrame(subscribe: (l: () => void) => () => void, ms = FRAME_MS): (l: () => void) => () => void {
  return (l) => {
    let last = -Infinity;
    let timer: NodeJS.Timeout | undefined;
    const fire = () => {
      timer = undefined;
      last = performance.now();
      l();
    };
    const off = subscribe(() => {
      if (timer) return;
      const wait = last + ms - performance.now();
      if (wait <= 0) fire();
      else timer = setTimeout(fire, wait);
    });
    return () => {
      clearTimeout(timer);
      off();
    };
  };
}

/**
 * The console: the navigation stack and the one key dispatcher (dialog, command line, filter, then
 * the keys of the screen on top). What each screen shows and which keys it has is in views/.
 */
export function App({ model, home = 'dashboard' }: { model: UiModel; home?: Home }) {
  const subscribe = useMemo(() => onceAFrame(model.subscribe), [model]);
  const state = useSyncExternalStore(subscribe, model.getState);
  const { exit } = useApp();
  const { cols, rows } = useTermSize();
  // Navigation state lives in a ref updated synchronously by each key, then one re-render: keys
  // typed faster than React renders (jjj Enter, a paste) each see the state the previous one left.
  const nav = useRef<Nav>({ stack: [{ kind: home }], sel: {}, filter: '', filtering: false, focus: 'instances' }).current;
  const [, setTick] = useState(0);
  const filtered = useRef<{ rows?: InstanceRow[]; env?: string; filter?: string; visible: InstanceRow[]; dash: DashboardData }>({ visible: [], dash: dashboardData([]) });
  const redraw = () => setTick((t) => t + 1);
  const bodyHeight = Math.max(3, rows - 5 - (nav.command !== undefined ? 1 : 0));

  /** The instances under the filters, worked out again only when the rows or a filter changed. */
  const listing = () => {
    const st = model.getState();
    // The first frame, drawn before the whole inventory is read: nothing is filtered yet.
    if (st.page) return { visible: st.instances, dash: firstPageData(st.instances, st.page) };
    const memo = filtered.current;
    if (memo.rows !== st.instances || memo.env !== st.env || memo.filter !== nav.filter) {
      // Typing narrows the filter: the next key only needs to look at what the last one kept.
      const narrowed = memo.rows === st.instances && memo.env === st.env && memo.filter !== undefined && nav.filter.startsWith(memo.filter);
      const f = nav.filter.toLowerCase();
      const base = narrowed ? memo.visible : st.instances;
      const kept = st.env || f ? base.filter((i) => matches(i, st.env, f)) : base;
      // A key that hides nothing ("a" of 10,000 app names) keeps the same rows, and so the same
      // panels: nothing to work out again or to draw differently.
      const same = kept.length === base.length && base === memo.visible;
      const visible = same ? memo.visible : kept;
      filtered.current = { rows: st.instances, env: st.env, filter: nav.filter, visible, dash: same ? memo.dash : dashboardData(visible) };
    }
    return filtered.current;
  };
  const top = () => nav.stack[nav.stack.length - 1];
  const selected = () => nav.sel[selKeyFor(nav, top())] ?? 0;
  const setSelected = (n: number) => {
    const count = countFor(ctx, top());
    nav.sel[selKeyFor(nav, top())] = Math.max(0, Math.min(count - 1, n));
  };

  // Built at each render: keys read nav and the model when they run, not what this render saw.
  const ctx: Ctx = {
    model,
    nav,
    cols,
    bodyHeight,
    visible: () => listing().visible,
    dash: () => listing().dash,
    selected,
    move: (n) => setSelected(selected() + n),
    jump: (where) => setSelected(where === 'top' ? 0 : Number.MAX_SAFE_INTEGER),
    top,
    push: (s: Screen) => void nav.stack.push(s),
    pop: () => void (nav.stack.length > 1 && nav.stack.pop()),
    replace: (s: Screen) => void (nav.stack[nav.stack.length - 1] = s),
    reset: (s: Screen) => void nav.stack.splice(0, nav.stack.length, s),
    keysOf: (kind) => SCREENS[kind].keys(ctx),
    confirm: (c) => void (nav.dialog = { kind: 'confirm', typed: '', focus: 'cancel', ...c }),
    pick: (message, items, onPick) =>
      void (nav.dialog = {
        kind: 'pick',
        message,
        count: items.length,
        selected: 0,
        pick: (i) => {
          const item = items[i];
          if (item) onPick(item.value);
        },
        render: (sel, height) => <PickView message={message} items={items} selected={sel} height={height} />,
      }),
    exit,
    redraw,
  };

  useInput((input, key) => {
    // Keys typed faster than the terminal is read (or a paste) arrive as one chunk: "/web" is the
    // filter key then w, e, b, as if typed one by one.
    const plain = input.length > 1 && !key.ctrl && !key.meta && !key.return && !key.escape && !key.tab;
    if (plain) for (const ch of input) handleKey(ch, { ...key, shift: ch !== ch.toLowerCase(), return: ch === '\r' || ch === '\n' });
    else handleKey(input, key);
    redraw();
  });

  function handleKey(input: string, key: Key): void {
    // Read through nav at key time, not the values captured by the last render.
    const dialog = nav.dialog;
    const k = keyName(input, key);
    // One dispatcher: the dialog, then the command line, then the filter line, then the screen's keys.
    if (dialog?.kind === 'pick') {
      if (k === 'esc' || k === 'ctrl-c') return void (nav.dialog = undefined);
      const step = k === 'down' || k === 'j' ? 1 : k === 'up' || k === 'k' ? -1 : k === 'pgdn' ? bodyHeight - 6 : k === 'pgup' ? -(bodyHeight - 6) : 0;
      if (step || k === 'g' || k === 'G') {
        const to = k === 'g' ? 0 : k === 'G' ? dialog.count - 1 : dialog.selected + step;
        nav.dialog = { ...dialog, selected: Math.max(0, Math.min(dialog.count - 1, to)) };
      } else if (k === 'enter') {
        nav.dialog = undefined;
        dialog.pick(dialog.selected);
      }
      return;
    }
    if (dialog) {
      if (k === 'esc' || (k === 'ctrl-c' && !dialog.typeName)) return void (nav.dialog = undefined);
      if (dialog.typeName) {
        if (k === 'enter') {
          nav.dialog = undefined;
          if (dialog.typed === dialog.typeName) dialog.onYes();
          else model.flash('error', 'the name typed does not match: nothing was done');
          return;
        }
        if (k === 'backspace') return void (nav.dialog = { ...dialog, typed: dialog.typed.slice(0, -1) });
        if (input && !key.ctrl && !key.meta) nav.dialog = { ...dialog, typed: dialog.typed + input };
        return;
      }
      if (k === 'left' || k === 'right' || k === 'tab' || k === 'h' || k === 'l') return void (nav.dialog = { ...dialog, focus: dialog.focus === 'cancel' ? 'ok' : 'cancel' });
      if (k === 'enter') {
        nav.dialog = undefined;
        if (dialog.focus === 'ok') dialog.onYes();
      }
      return;
    }
    if (nav.command !== undefined) {
      if (k === 'enter') {
        const line = nav.command;
        nav.command = undefined;
        runCommand(ctx, line);
      } else if (k === 'esc') nav.command = undefined;
      else if (k === 'backspace') nav.command = nav.command.slice(0, -1);
      else if (input && !key.ctrl && !key.meta) nav.command += input;
      return;
    }
    if (nav.filtering) {
      if (k === 'enter') nav.filtering = false;
      else if (k === 'esc') {
        nav.filtering = false;
        nav.filter = '';
      } else if (k === 'backspace') nav.filter = nav.filter.slice(0, -1);
      else if (input && !key.ctrl && !key.meta) {
        nav.filter += input;
        for (const slot of ['instances', 'dash:hosts', 'dash:instances', 'dash:databases']) nav.sel[slot] = 0;
      }
      return;
    }
    if (k === 'ctrl-c' && !model.running) return exit();
    const b = keysFor(ctx, top()).find((x) => x.keys.includes(k) && (!x.when || x.when()));
    const denied = b?.denied?.(top());
    if (denied) model.flash('error', `not allowed: ${denied}`);
    else b?.run(top());
  }

  const { filter, filtering, dialog } = nav;
  const hints: [string, string, boolean?][] =
    nav.command !== undefined
      ? [
          ['enter', 'run'],
          ['esc', 'cancel'],
        ]
      : filtering
        ? [['enter', 'done typing']]
        : keysFor(ctx, top())
            .filter((b) => (!b.when || b.when()) && !['G', 'pgup', 'pgdn', 'up', '?', 'q'].includes(b.keys[0]))
            .map((b) => {
              const denied = b.denied?.(top());
              // The footer is one line: the level needed; pressing the key says the rest (who may).
              return denied ? [b.label, `${b.hint} (not allowed: ${/needs \w+/.exec(denied)?.[0] ?? denied})`, true] : [b.label, b.hint];
            });
  const context = `${state.page?.instances ?? state.instances.length} instances · ${state.hostCount} hosts${state.env ? ` · env ${state.env}` : ''}${filter ? ` · filter "${filter}"` : ''}`;
  const body = dialog?.kind === 'pick' ? dialog.render(dialog.selected, bodyHeight) : dialog ? <ConfirmView {...dialog} width={cols} height={bodyHeight} /> : renderFor(ctx, top());

  return (
    <Box flexDirection="column" width={cols} height={rows}>
      <Header file={state.inventoryFile} context={context} width={cols} />
      <Box flexDirection="column" flexGrow={1} height={bodyHeight} overflow="hidden">
        {body}
      </Box>
      {nav.command !== undefined ? (
        <Text>
          :<Text inverse>{nav.command || ' '}</Text>
        </Text>
      ) : null}
      <Footer hints={hints} flash={state.flash} width={cols} />
    </Box>
  );
}
