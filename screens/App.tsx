import { Box, Text, useApp, useInput, type Key } from 'ink';
import { printable } from '../src/core/display.js';
import { useRef, useState, useSyncExternalStore, type ReactElement } from 'react';
import { age, formatBytes } from '../src/core/format.js';
import { ConfirmView, Footer, Header, RunView, Table, useTermSize, type Column } from './components.js';
import { DashboardView, dashboardData, metricsCell, PANELS, stateColor, useLive, type Panel } from './Dashboard.js';
import type { InstanceRow, UiModel } from './model.js';
import { sparkline } from './sparkline.js';
import type { Sampler } from '../src/health/sampler.js';
import { fullestDisk } from '../src/health/probes.js';

interface Nav {
  stack: Screen[];
  sel: Record<string, number>;
  filter: string;
  filtering: boolean;
  dialog?: Dialog;
  /** Which dashboard panel the keys move in. */
  focus: Panel;
  /** The : command line while it is being typed. */
  command?: string;
}

/** Whether a row passes the environment filter (e) and the text filter (/, already in lower case). */
function matches(i: InstanceRow, env: string, filter: string): boolean {
  return (!env || i.env === env) && (!filter || i.search.includes(filter));
}

type Screen =
  | { kind: 'dashboard' }
  | { kind: 'instances' }
  | { kind: 'instance'; name: string }
  | { kind: 'host'; name: string }
  | { kind: 'run' }
  | { kind: 'compare' }
  | { kind: 'drill'; source: string; stage: 'backup' | 'target'; backup?: string }
  | { kind: 'drills' }
  | { kind: 'runs' }
  | { kind: 'help'; of: Screen['kind'] };

export type Home = 'dashboard' | 'instances';

interface Dialog {
  message: string;
  action: string;
  typeName?: string;
  typed: string;
  focus: 'cancel' | 'ok';
  onYes: () => void;
  /** A picker instead of a yes/no: choose one of these, then onPick. */
  options?: string[];
  selected?: number;
  onPick?: (option: string) => void;
}

/** A key binding: the keys, the hint shown in the footer and help, and what it does. */
interface Binding {
  keys: string[];
  label: string;
  hint: string;
  when?: () => boolean;
  run: () => void;
}

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

export function App({ model, home = 'dashboard' }: { model: UiModel; home?: Home }) {
  const state = useSyncExternalStore(model.subscribe, model.getState);
  const { exit } = useApp();
  const { cols, rows } = useTermSize();
  // Navigation state lives in a ref updated synchronously by each key, then one re-render: keys
  // typed faster than React renders (jjj Enter, a paste) each see the state the previous one left.
  const nav = useRef<Nav>({ stack: [{ kind: home }], sel: {}, filter: '', filtering: false, focus: 'instances' }).current;
  const [, setTick] = useState(0);
  const filtered = useRef<{ rows?: InstanceRow[]; env?: string; filter?: string; visible: InstanceRow[]; dash: ReturnType<typeof dashboardData> }>({ visible: [], dash: dashboardData([]) });
  const redraw = () => setTick((t) => t + 1);
  const setDialog = (d: Dialog | undefined | ((d: Dialog | undefined) => Dialog | undefined)) => {
    nav.dialog = typeof d === 'function' ? d(nav.dialog) : d;
  };
  const bodyHeight = Math.max(3, rows - 5 - (nav.command !== undefined ? 1 : 0));

  /** What the screen shows now, derived from nav and the model at call time (render or key). */
  const view = () => {
    const screen = nav.stack[nav.stack.length - 1];
    const st = model.getState();
    // The environment filter (e) narrows every list, as the text filter (/) does. Worked out again
    // only when the rows or a filter changed: a key press reads it several times.
    const memo = filtered.current;
    if (memo.rows !== st.instances || memo.env !== st.env || memo.filter !== nav.filter) {
      // Typing narrows the filter: the next key only needs to look at what the last one kept.
      const narrowed = memo.rows === st.instances && memo.env === st.env && memo.filter !== undefined && nav.filter.startsWith(memo.filter);
      const f = nav.filter.toLowerCase();
      const base = narrowed ? memo.visible : st.instances;
      const visible = st.env || f ? base.filter((i) => matches(i, st.env, f)) : base;
      filtered.current = { rows: st.instances, env: st.env, filter: nav.filter, visible, dash: dashboardData(visible) };
    }
    const { visible, dash } = filtered.current;
    const selKey =
      screen.kind === 'instance' ? `backups:${screen.name}` :
      screen.kind === 'host' ? `host:${screen.name}` :
      screen.kind === 'dashboard' ? `dash:${nav.focus}` :
      screen.kind === 'drill' ? `drill:${screen.stage}` :
      screen.kind;
    const selected = nav.sel[selKey] ?? 0;
    const backups = screen.kind === 'instance' || (screen.kind === 'drill' && screen.stage === 'backup') ? model.backups(screen.kind === 'drill' ? screen.source : screen.name).filter((b) => b.kind === 'manual') : [];
    const hostInstances = screen.kind === 'host' ? st.instances.filter((i) => i.host === screen.name) : [];
    const drillTargets = screen.kind === 'drill' ? st.instances.filter((i) => i.name !== screen.source) : [];
    const count =
      screen.kind === 'instances' ? visible.length :
      screen.kind === 'dashboard' ? (nav.focus === 'hosts' ? dash.hosts.length : dash[nav.focus].length) :
      screen.kind === 'compare' ? compareRows(st.lastResult?.result as CompareResult | undefined).length :
      screen.kind === 'host' ? hostInstances.length :
      screen.kind === 'drills' ? model.drills().length :
      screen.kind === 'runs' ? model.runs().length :
      screen.kind === 'drill' && screen.stage === 'target' ? drillTargets.length :
      backups.length;
    const inst =
      screen.kind === 'instance' ? st.instances.find((i) => i.name === screen.name) :
      screen.kind === 'host' ? hostInstances[selected] :
      screen.kind === 'drill' ? st.instances.find((i) => i.name === screen.source) :
      screen.kind === 'dashboard' ? (nav.focus === 'hosts' ? undefined : dash[nav.focus][selected]) :
      screen.kind === 'instances' ? visible[selected] :
      undefined;
    return { screen, visible, dash, selKey, selected, backups, count, inst, hostInstances, drillTargets };
  };

  const push = (s: Screen) => void nav.stack.push(s);
  const pop = () => void (nav.stack.length > 1 && nav.stack.pop());
  const move = (n: number) => {
    const v = view();
    nav.sel[v.selKey] = Math.max(0, Math.min(v.count - 1, v.selected + n));
  };
  const jump = (where: 'top' | 'bottom') => {
    const v = view();
    nav.sel[v.selKey] = where === 'top' ? 0 : Math.max(0, v.count - 1);
  };

  const startBackup = () => {
    const { inst } = view();
    if (inst && model.start('backup', inst.name)) push({ kind: 'run' });
  };
  const startRestore = () => {
    const { inst, screen, selected } = view();
    if (!inst) return;
    const list = model.backups(inst.name).filter((b) => b.kind === 'manual');
    const b = screen.kind === 'instance' ? list[selected] : list[0];
    if (!b) return model.flash('error', `${inst.name} has no backup yet: press b to take one`);
    setDialog({
      message: `Restore backup ${b.id} (${age(b.createdAt)}) onto ${inst.name} at ${inst.host}:${inst.path}?\nIts code and database will be replaced; a safety backup is taken first.`,
      action: 'Restore',
      typeName: inst.protected ? inst.name : undefined,
      typed: '',
      focus: 'cancel',
      onYes: () => {
        if (model.start('restore', inst.name, { backup: b.id })) push({ kind: 'run' });
      },
    });
  };

  /** Confirms a change to `inst` (typed name when protected), then starts it in the run view. */
  const askChange = (inst: InstanceRow, message: string, action: string, start: () => boolean) =>
    setDialog({ message, action, typeName: inst.protected ? inst.name : undefined, typed: '', focus: 'cancel', onYes: () => void (start() && push({ kind: 'run' })) });
  const pick = (message: string, options: string[], onPick: (o: string) => void) =>
    setDialog({ message, action: '', typed: '', focus: 'cancel', onYes: () => {}, options, selected: 0, onPick });

  const startUpdate = () => {
    const { inst } = view();
    if (!inst) return;
    if (!inst.branch) return model.flash('error', `${inst.name} follows no branch: set one with opsdeck instance set ${inst.name} --branch B, or upgrade (U) to a tag`);
    askChange(inst, `Update ${inst.name} to the tip of ${inst.branch}?\nA backup is taken first; maintenance while it runs; any failure is undone.`, 'Update', () => model.start('update', inst.name));
  };
  const startUpgrade = () => {
    const { inst } = view();
    if (!inst) return;
    model.flash('info', `asking ${inst.host} for the tags of ${inst.name}...`);
    void model.tags(inst.name).then((tags) => {
      if (!tags.length) return model.flash('error', `no tags found for ${inst.name}`);
      model.flash('info', '');
      pick(`Upgrade ${inst.name} to which tag?`, tags, (tag) =>
        askChange(inst, `Upgrade ${inst.name} to ${tag}?\nA backup is taken first; maintenance while it runs; any failure is undone.`, 'Upgrade', () => model.start('upgrade', inst.name, { to: tag })),
      );
      redraw();
    });
  };
  const toggleMaintenance = () => {
    const { inst } = view();
    if (!inst) return;
    const mode = inst.maintenanceSince ? 'off' : 'on';
    askChange(inst, mode === 'on' ? `Put ${inst.name} in maintenance? Its site will answer 503.` : `Take ${inst.name} out of maintenance?`, mode === 'on' ? 'Maintenance on' : 'Maintenance off', () => model.start('maintenance', inst.name, { mode }));
  };
  const startClone = () => {
    const { inst } = view();
    if (!inst) return;
    const targets = model.getState().instances.filter((i) => i.name !== inst.name);
    if (!targets.length) return model.flash('error', 'there is no other instance to clone onto');
    pick(`Clone ${inst.name} onto which instance?`, targets.map((t) => `${t.name}  (${t.env}${t.protected ? ', PROTECTED' : ''}, ${t.host})`), (choice) => {
      const target = targets.find((t) => choice.startsWith(t.name + ' '))!;
      askChange(target, `Make ${target.name} a copy of ${inst.name} (code and database)?\n${target.name} keeps its URL, credentials, hooks and local files; its current state is saved first.`, 'Clone', () =>
        model.start('clone', inst.name, { to: target.name }),
      );
    });
  };

  const startCompare = () => {
    const { inst } = view();
    if (!inst) return;
    const others = model.getState().instances.filter((i) => i.name !== inst.name);
    if (!others.length) return model.flash('error', 'there is no other instance to compare with');
    pick(`Compare ${inst.name} with which instance?`, others.map((t) => `${t.name}  (${t.env}, ${t.host})`), (choice) => {
      const other = others.find((t) => choice.startsWith(t.name + ' '))!;
      // Read-only: no confirmation. The run view shows it working; Enter there opens the result.
      if (model.start('compare', inst.name, { to: other.name })) push({ kind: 'run' });
    });
  };

  /** The restore drill wizard: pick a backup, pick a scratch target, read the steps, confirm, watch it run. */
  const startDrill = () => {
    const { inst } = view();
    if (!inst) return;
    if (!model.backups(inst.name).some((b) => b.kind === 'manual')) return model.flash('error', `${inst.name} has no backup to drill: press b to take one`);
    nav.sel['drill:backup'] = 0;
    nav.sel['drill:target'] = 0;
    push({ kind: 'drill', source: inst.name, stage: 'backup' });
  };
  const drillNext = () => {
    const v = view();
    const screen = v.screen;
    if (screen.kind !== 'drill') return;
    if (screen.stage === 'backup') {
      const b = v.backups[v.selected];
      if (!b) return;
      nav.stack[nav.stack.length - 1] = { ...screen, stage: 'target', backup: b.id };
      return;
    }
    const target = v.drillTargets[v.selected];
    if (!target) return;
    if (target.protected) return model.flash('error', `${target.name} is in a protected environment: a drill never restores onto one. Pick a scratch instance.`);
    const steps = model.drillSteps(screen.source, target.name, screen.backup!);
    if (!steps) return;
    askChange(
      target,
      `Restore drill: backup ${screen.backup} of ${screen.source} onto ${target.name} (${target.host}:${target.path}).\n${target.name}'s code and database will be replaced. The steps:\n` +
        steps.map((x, i) => `${i + 1}. ${x.title}${x.explain ? `\n   ${x.explain}` : ''}`).join('\n'),
      'Start drill',
      () => {
        const ok = model.start('drill', screen.source, { to: target.name, backup: screen.backup });
        if (ok) nav.stack.pop();
        return ok;
      },
    );
  };
  /** File-integrity check: read-only (the first one records the baseline), so no confirmation. */
  const startWatch = () => {
    const { inst } = view();
    if (inst && model.start('watch', inst.name)) push({ kind: 'run' });
  };

  /** The : command line: a screen by name, or an operation on an instance by name. */
  const runCommand = (line: string) => {
    const [cmd, arg, ...rest] = line.trim().split(/\s+/);
    const st = model.getState();
    const inst = arg ? st.instances.find((i) => i.name === arg) : undefined;
    const usage = 'try :dashboard, :instances, :hosts, :runs, :drills, :backup NAME, :watch NAME, :drill NAME, :open NAME, :q';
    if (!cmd) return;
    if (rest.length) return model.flash('error', `:${cmd} takes at most one name; ${usage}`);
    if (['dashboard', 'dash', 'home'].includes(cmd)) return void nav.stack.splice(0, nav.stack.length, { kind: 'dashboard' });
    if (cmd === 'hosts') {
      nav.stack.splice(0, nav.stack.length, { kind: 'dashboard' });
      nav.focus = 'hosts';
      return;
    }
    if (cmd === 'instances' || cmd === 'runs' || cmd === 'drills') return push({ kind: cmd });
    if (cmd === 'q' || cmd === 'quit') return quit.run();
    if (cmd === 'help') return push({ kind: 'help', of: view().screen.kind });
    if (['backup', 'watch', 'drill', 'open'].includes(cmd)) {
      if (!arg) return model.flash('error', `:${cmd} needs an instance name, as in :${cmd} ${st.instances[0]?.name ?? 'NAME'}`);
      if (!inst) return model.flash('error', `no instance named ${arg}: see them with :instances`);
      if (cmd === 'open') return push({ kind: 'instance', name: inst.name });
      if (cmd === 'drill') {
        push({ kind: 'instance', name: inst.name });
        return startDrill();
      }
      if (model.start(cmd as 'backup' | 'watch', inst.name)) push({ kind: 'run' });
      return;
    }
    model.flash('error', `unknown command :${cmd}; ${usage}`);
  };

  const openDrills = () => {
    nav.sel.drills = 0;
    push({ kind: 'drills' });
  };

  const moves: Binding[] = [
    { keys: ['down', 'j'], label: '↓/j', hint: 'down', run: () => move(1) },
    { keys: ['up', 'k'], label: '↑/k', hint: 'up', run: () => move(-1) },
    { keys: ['g'], label: 'g/G', hint: 'top/bottom', run: () => jump('top') },
    { keys: ['G'], label: 'G', hint: 'bottom', run: () => jump('bottom') },
    { keys: ['pgdn'], label: 'PgDn', hint: 'page down', run: () => move(bodyHeight - 2) },
    { keys: ['pgup'], label: 'PgUp', hint: 'page up', run: () => move(-(bodyHeight - 2)) },
  ];
  /** The operations on an instance, the same on the list (selected row) and the instance screen. */
  const instanceActions = (restoreHint: string): Binding[] => [
    { keys: ['b'], label: 'b', hint: 'backup', run: startBackup },
    { keys: ['r'], label: 'r', hint: restoreHint, run: startRestore },
    { keys: ['u'], label: 'u', hint: 'update', run: startUpdate },
    { keys: ['U'], label: 'U', hint: 'upgrade', run: startUpgrade },
    { keys: ['m'], label: 'm', hint: 'maintenance', run: toggleMaintenance },
    { keys: ['c'], label: 'c', hint: 'clone', run: startClone },
    { keys: ['d'], label: 'd', hint: 'compare', run: startCompare },
    { keys: ['w'], label: 'w', hint: 'watch', run: startWatch },
  ];
  const quit: Binding = { keys: ['q'], label: 'q', hint: 'quit', run: () => (model.running ? model.flash('error', 'a run is in progress: ctrl-c cancels it') : exit()) };
  const help: Binding = { keys: ['?'], label: '?', hint: 'help', run: () => push({ kind: 'help', of: view().screen.kind }) };
  const filterKey: Binding = { keys: ['/'], label: '/', hint: 'filter', run: () => (nav.filtering = true) };
  const envKey: Binding = { keys: ['e'], label: 'e', hint: 'environment', run: () => model.nextEnv() };
  const drillKey: Binding = { keys: ['D'], label: 'D', hint: 'restore drill', run: startDrill };
  const drillsKey: Binding = { keys: ['L'], label: 'L', hint: 'drill reports', run: openDrills };
  const commandKey: Binding = { keys: [':'], label: ':', hint: 'command', run: () => (nav.command = '') };
  /** esc: first clears a filter, then goes back. */
  const escBack: Binding = { keys: ['esc'], label: 'esc', hint: 'clear filter / back', run: () => (nav.filter ? (nav.filter = '') : pop()) };
  const back: Binding = { keys: ['esc'], label: 'esc', hint: 'back', run: pop };
  const openInstance: Binding = { keys: ['enter'], label: 'enter', hint: 'open instance', run: () => {
    const { inst } = view();
    if (inst) push({ kind: 'instance', name: inst.name });
  } };
  const bindings: Record<Screen['kind'], Binding[]> = {
    dashboard: [
      ...moves,
      { keys: ['tab'], label: 'tab', hint: 'next panel', run: () => void (nav.focus = PANELS[(PANELS.indexOf(nav.focus) + 1) % PANELS.length]) },
      { keys: ['enter'], label: 'enter', hint: 'open', run: () => {
        const v = view();
        if (nav.focus === 'hosts') {
          const h = v.dash.hosts[v.selected];
          if (h) push({ kind: 'host', name: h });
        } else if (v.inst) push({ kind: 'instance', name: v.inst.name });
      } },
      envKey,
      filterKey,
      { keys: ['i'], label: 'i', hint: 'instances', run: () => push({ kind: 'instances' }) },
      drillKey,
      drillsKey,
      commandKey,
      escBack,
      help,
      quit,
    ],
    instances: [
      ...moves,
      openInstance,
      filterKey,
      envKey,
      ...instanceActions('restore latest'),
      drillKey,
      drillsKey,
      { keys: ['R'], label: 'R', hint: 'reload', run: () => model.reload() },
      commandKey,
      escBack,
      help,
      quit,
    ],
    instance: [
      ...moves,
      ...instanceActions('restore selected backup'),
      drillKey,
      commandKey,
      back,
      help,
      quit,
    ],
    host: [
      ...moves,
      openInstance,
      back,
      help,
      quit,
    ],
    drill: [...moves, { keys: ['enter'], label: 'enter', hint: 'next', run: drillNext }, { keys: ['esc'], label: 'esc', hint: 'back', run: () => {
      const top = nav.stack[nav.stack.length - 1];
      if (top.kind === 'drill' && top.stage === 'target') nav.stack[nav.stack.length - 1] = { ...top, stage: 'backup' };
      else pop();
    } }, help, quit],
    drills: [...moves, commandKey, back, help, quit],
    runs: [...moves, commandKey, back, help, quit],
    run: [
      { keys: ['esc'], label: 'esc', hint: 'back', when: () => !model.running, run: () => (model.clearRun(), pop()) },
      {
        keys: ['enter'],
        label: 'enter',
        hint: 'see the comparison',
        when: () => !model.running && model.getState().run?.command === 'compare' && model.getState().lastResult?.command === 'compare',
        run: () => {
          nav.stack[nav.stack.length - 1] = { kind: 'compare' };
          nav.sel.compare = 0;
        },
      },
      { keys: ['ctrl-c'], label: 'ctrl-c', hint: 'cancel (rolls back)', when: () => model.running, run: () => model.cancel() },
      help,
      quit,
    ],
    compare: [...moves, back, help, quit],
    help: [{ keys: ['esc', '?'], label: 'esc', hint: 'back', run: pop }, quit],
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
    const screen = nav.stack[nav.stack.length - 1];
    const dialog = nav.dialog;
    const filtering = nav.filtering;
    const k = keyName(input, key);
    // One dispatcher: the dialog, then the filter line, then the screen's bindings.
    if (dialog?.options) {
      const n = dialog.options.length;
      if (k === 'esc' || k === 'ctrl-c') return setDialog(undefined);
      if (k === 'down' || k === 'j') return setDialog((d) => d && { ...d, selected: Math.min(n - 1, (d.selected ?? 0) + 1) });
      if (k === 'up' || k === 'k') return setDialog((d) => d && { ...d, selected: Math.max(0, (d.selected ?? 0) - 1) });
      if (k === 'enter') {
        setDialog(undefined);
        dialog.onPick?.(dialog.options[dialog.selected ?? 0]);
      }
      return;
    }
    if (dialog) {
      if (k === 'esc' || (k === 'ctrl-c' && !dialog.typeName)) return setDialog(undefined);
      if (dialog.typeName) {
        if (k === 'enter') {
          setDialog(undefined);
          if (dialog.typed === dialog.typeName) dialog.onYes();
          else model.flash('error', 'the name typed does not match: nothing was done');
          return;
        }
        // Functional updates: keys typed fast arrive before the next render, and a paste as one chunk.
        if (k === 'backspace') return setDialog((d) => d && { ...d, typed: d.typed.slice(0, -1) });
        if (input && !key.ctrl && !key.meta) return setDialog((d) => d && { ...d, typed: d.typed + input });
        return;
      }
      if (k === 'left' || k === 'right' || k === 'tab' || k === 'h' || k === 'l') return setDialog((d) => d && { ...d, focus: d.focus === 'cancel' ? 'ok' : 'cancel' });
      if (k === 'enter') {
        setDialog(undefined);
        if (dialog.focus === 'ok') dialog.onYes();
        return;
      }
      return;
    }
    if (nav.command !== undefined) {
      if (k === 'enter') {
        const line = nav.command;
        nav.command = undefined;
        runCommand(line);
      } else if (k === 'esc') nav.command = undefined;
      else if (k === 'backspace') nav.command = nav.command.slice(0, -1);
      else if (input && !key.ctrl && !key.meta) nav.command += input;
      return;
    }
    if (filtering) {
      if (k === 'enter') nav.filtering = false;
      else if (k === 'esc') {
        nav.filtering = false;
        nav.filter = '';
      }
      else if (k === 'backspace') nav.filter = nav.filter.slice(0, -1);
      else if (input && !key.ctrl && !key.meta) {
        nav.filter += input;
        for (const k of ['instances', 'dash:hosts', 'dash:instances', 'dash:databases']) nav.sel[k] = 0;
      }
      return;
    }
    if (k === 'ctrl-c' && !model.running) return exit();
    const b = bindings[screen.kind].find((x) => x.keys.includes(k) && (!x.when || x.when()));
    b?.run();
  }

  const { screen, visible, selected, backups, dash, hostInstances, drillTargets } = view();
  const { filter, filtering, dialog } = nav;
  const hints = (screen.kind === 'help' ? bindings.help : bindings[screen.kind])
    .filter((b) => (!b.when || b.when()) && !['G', 'pgup', 'pgdn', 'up', '?', 'q'].includes(b.keys[0]))
    .map((b) => [b.label, b.hint] as [string, string]);
  const filterHint = nav.command !== undefined ? ([['enter', 'run'], ['esc', 'cancel']] as [string, string][]) : filtering ? ([['enter', 'done typing']] as [string, string][]) : hints;
  const ctx = `${state.instances.length} instances · ${state.hostCount} hosts${state.env ? ` · env ${state.env}` : ''}${filter ? ` · filter "${filter}"` : ''}`;
  const filterLine = filtering ? (
    <Text>
      /<Text inverse>{filter || ' '}</Text>
    </Text>
  ) : null;

  let body: ReactElement;
  if (dialog?.options) body = <PickView message={dialog.message} options={dialog.options} selected={dialog.selected ?? 0} height={bodyHeight} />;
  else if (dialog) body = <ConfirmView {...dialog} />;
  else if (screen.kind === 'dashboard')
    body = (
      <Box flexDirection="column">
        {filterLine}
        <DashboardView data={dash} shown={(name) => {
          const r = model.byName(name);
          return !!r && matches(r, state.env, filter.toLowerCase());
        }} sampler={model.sampler} sel={{ hosts: nav.sel['dash:hosts'] ?? 0, instances: nav.sel['dash:instances'] ?? 0, databases: nav.sel['dash:databases'] ?? 0 }} focus={nav.focus} height={bodyHeight - (filtering ? 1 : 0)} width={cols} />
      </Box>
    );
  else if (screen.kind === 'instances') body = <InstancesView rows={visible} selected={selected} height={bodyHeight - (filtering ? 1 : 0)} filtering={filtering} filter={filter} width={cols} />;
  else if (screen.kind === 'instance') body = <InstanceView inst={state.instances.find((i) => i.name === screen.name)} backups={backups} selected={selected} height={bodyHeight} sampler={model.sampler} />;
  else if (screen.kind === 'host') body = <HostView name={screen.name} host={model.host(screen.name)} sampler={model.sampler} instances={hostInstances} selected={selected} height={bodyHeight} width={cols} />;
  else if (screen.kind === 'drill') body = <DrillWizard screen={screen} backups={backups} targets={drillTargets} selected={selected} height={bodyHeight} />;
  else if (screen.kind === 'drills') body = <DrillsView drills={model.drills()} selected={selected} height={bodyHeight} width={cols} />;
  else if (screen.kind === 'runs') body = <RunsView runs={model.runs()} selected={selected} height={bodyHeight} width={cols} />;
  else if (screen.kind === 'compare') body = <CompareView result={state.lastResult?.result as CompareResult | undefined} selected={selected} height={bodyHeight} width={cols} />;
  else if (screen.kind === 'run')
    body = state.run ? (
      <Box flexDirection="column">
        <RunView run={state.run} width={cols} height={bodyHeight - (state.run.command === 'drill' && state.run.finished ? 4 : 0)} />
        {state.run.command === 'drill' && state.run.finished ? <DrillOutcome report={model.drills().find((d) => d.target === state.run!.instance)} /> : null}
      </Box>
    ) : (
      <Text dimColor>no run</Text>
    );
  else body = <HelpView bindings={bindings[screen.of]} of={screen.of} />;

  return (
    <Box flexDirection="column" width={cols} height={rows}>
      <Header file={state.inventoryFile} context={ctx} width={cols} />
      <Box flexDirection="column" flexGrow={1} height={bodyHeight} overflow="hidden">
        {body}
      </Box>
      {nav.command !== undefined ? (
        <Text>
          :<Text inverse>{nav.command || ' '}</Text>
        </Text>
      ) : null}
      <Footer hints={filterHint} flash={state.flash} width={cols} />
    </Box>
  );
}

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

function InstanceView({ inst, backups, selected, height, sampler }: { inst?: InstanceRow; backups: ReturnType<UiModel['backups']>; selected: number; height: number; sampler?: Sampler }) {
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
      {sampler ? <LiveLine sampler={sampler} name={inst.name} /> : null}
      <Box marginTop={1} flexDirection="column">
        <Text bold>Backups</Text>
        <BackupsTable backups={backups} selected={selected} height={Math.max(2, height - 10)} empty="no backups yet: press b" />
      </Box>
    </Box>
  );
}

type CompareResult = {
  a: string;
  b: string;
  identical: boolean;
  files: { onlyInA: string[]; onlyInB: string[]; different: { path: string; what: string[] }[]; compared: number };
  database?: { schemaSame: boolean; tables: { table: string; rowsA: number | null; rowsB: number | null; same: boolean }[] };
};

/** The comparison as rows of [what, left side, right side]: differences first, then the matching tables. */
function compareRows(r: CompareResult | undefined): string[][] {
  if (!r) return [];
  const rows: string[][] = [];
  for (const p of r.files.onlyInA) rows.push([p, 'present', 'MISSING']);
  for (const p of r.files.onlyInB) rows.push([p, 'MISSING', 'present']);
  for (const c of r.files.different) rows.push([c.path, 'differs', c.what.join(', ')]);
  if (r.database) {
    rows.push(['(schema)', r.database.schemaSame ? 'same' : 'DIFFERS', r.database.schemaSame ? 'same' : 'DIFFERS']);
    for (const t of [...r.database.tables].sort((x, y) => Number(x.same) - Number(y.same))) {
      rows.push([`table ${t.table}`, `${t.rowsA ?? 'missing'} rows`, `${t.rowsB ?? 'missing'} rows${t.same ? '' : '  DIFFERENT'}`]);
    }
  }
  return rows;
}

function CompareView({ result, selected, height, width }: { result?: CompareResult; selected: number; height: number; width: number }) {
  if (!result) return <Text dimColor>no comparison yet: press d on an instance</Text>;
  const side = Math.max(16, Math.floor((width - 4) * 0.3));
  const diffs = result.files.onlyInA.length + result.files.onlyInB.length + result.files.different.length;
  return (
    <Box flexDirection="column">
      <Text bold color={result.identical ? 'green' : 'yellow'}>
        {result.a} and {result.b} {result.identical ? 'are identical' : 'differ'}: {result.files.compared} files compared, {diffs} differ
        {result.database ? `; ${result.database.tables.filter((t) => !t.same).length} of ${result.database.tables.length} tables differ` : ''}
      </Text>
      <Table
        columns={[
          { title: 'WHAT', width: Math.max(20, width - 2 * side - 4) },
          { title: result.a, width: side },
          { title: result.b, width: side, color: (v) => (/DIFFER|MISSING|present|content|mode/.test(v) ? 'red' : undefined) },
        ]}
        rows={compareRows(result)}
        selected={selected}
        height={height - 1}
        empty="nothing to show"
      />
    </Box>
  );
}

function PickView({ message, options, selected, height }: { message: string; options: string[]; selected: number; height: number }) {
  return (
    <Box flexDirection="column" borderStyle="round" borderColor="cyan" paddingX={1}>
      <Text bold>{message}</Text>
      <Table columns={[{ title: '', width: 60 }]} rows={options.map((o) => [o])} selected={selected} height={Math.max(3, height - 4)} />
      <Text dimColor>↑/↓ choose · enter pick · esc cancel</Text>
    </Box>
  );
}

function HelpView({ bindings, of }: { bindings: Binding[]; of: string }) {
  // Two columns: a screen with many keys still fits a small terminal.
  const half = Math.ceil(bindings.length / 2);
  const column = (list: Binding[]) => (
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

/** The instance's newest health sample in one line: verdict, site, database, metrics. */
function LiveLine({ sampler, name }: { sampler: Sampler; name: string }) {
  const live = useLive(sampler).snap?.instances.get(name) ?? { history: {} };
  const s = live.sample;
  const verdict = !s ? 'probing…' : s.ok ? 'ok' : printable(`PROBLEM: ${s.reasons.join('; ')}`);
  return (
    <Text wrap="truncate-end">
      <Text dimColor>{'health'.padEnd(10)}</Text>
      <Text color={stateColor(verdict)}>{verdict}</Text>
      {s?.http ? <Text>  http {s.http.status ?? '---'} {s.http.ms} ms <Text color="cyan">{sparkline(live.history.http ?? [], 20)}</Text></Text> : null}
      {s?.db ? <Text>  db {s.db.ok ? `${formatBytes(s.db.sizeBytes ?? 0)}, ${s.db.connections}/${s.db.maxConnections} conns` : <Text color="red">DOWN {printable(s.db.reason ?? '')}</Text>}</Text> : null}
      {s?.metrics ? <Text>  {metricsCell(s, live.history)}</Text> : null}
    </Text>
  );
}

function HostView({ name, host, sampler, instances, selected, height, width }: { name: string; host?: ReturnType<UiModel['host']>; sampler?: Sampler; instances: InstanceRow[]; selected: number; height: number; width: number }) {
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
        {name} <Text dimColor>{host.user}@{host.address}:{host.port}{host.jump ? ` via ${host.jump}` : ''}</Text>{' '}
        {!s ? <Text color="yellow">probing…</Text> : s.ok ? <Text color="green">up</Text> : <Text color="red" bold>DOWN: {printable(s.reason ?? '')}</Text>}
        {stale ? <Text color="yellow"> STALE: no fresh sample</Text> : null}
      </Text>
      {line('load', s?.load ? `${s.load.map((x) => x.toFixed(2)).join(' ')}` : '-', h.load, s?.cpus)}
      {line('cpu', s?.cpu !== undefined ? `${Math.round(s.cpu * 100)}% of ${s.cpus}` : '-', h.cpu, 1)}
      {line('memory', s?.memTotal ? `${formatBytes(s.memUsed!)} of ${formatBytes(s.memTotal)}` : '-', h.mem, 1)}
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
        <Table columns={[{ title: 'INSTANCE', width: 24 }, { title: 'ENV', width: 10 }, { title: 'PATH', width: Math.max(10, width - 38) }]} rows={instances.map((i) => [i.name, i.env, i.path])} selected={selected} height={Math.max(2, height - 9 - (s?.disks?.length ?? 0))} empty="no instances on this host" />
      </Box>
    </Box>
  );
}
const HISTORY_W = 60;

function DrillWizard({ screen, backups, targets, selected, height }: { screen: Extract<Screen, { kind: 'drill' }>; backups: ReturnType<UiModel['backups']>; targets: InstanceRow[]; selected: number; height: number }) {
  return (
    <Box flexDirection="column">
      <Text bold>Restore drill of {screen.source}</Text>
      {screen.stage === 'backup' ? (
        <Box flexDirection="column">
          <Text>
            <Text color="cyan">Step 1 of 3: pick a backup.</Text> The newest is selected. Its age is how much data a real restore
            would lose (RPO). If every backup is old, fix the backups before anything else.
          </Text>
          <BackupsTable backups={backups} selected={selected} height={height - 4} />
        </Box>
      ) : (
        <Box flexDirection="column">
          <Text>
            <Text color="cyan">Step 2 of 3: pick the scratch instance to restore onto.</Text> Its code and database will be replaced by
            backup {screen.backup}. Never a protected instance: those are refused.
          </Text>
          <Table
            columns={[{ title: 'SCRATCH', width: 24 }, { title: 'ENV', width: 18, color: (v) => (v.endsWith('PROTECTED') ? 'red' : undefined) }, { title: 'HOST', width: 14 }, { title: 'DATABASE', width: 9 }]}
            rows={targets.map((t) => [t.name, t.protected ? `${t.env} PROTECTED` : t.env, t.host, t.dbUrl ? 'yes' : 'none'])}
            selected={selected}
            height={height - 4}
            empty="no other instance: make a scratch one with opsdeck instance make"
          />
        </Box>
      )}
      <Text dimColor>Step 3 shows every step of the drill before it starts; nothing changes until you confirm.</Text>
    </Box>
  );
}

function DrillsView({ drills, selected, height, width }: { drills: ReturnType<UiModel['drills']>; selected: number; height: number; width: number }) {
  return (
    <Box flexDirection="column">
      <Text bold>Restore drills, newest first</Text>
      <Table
        columns={[
          { title: 'DRILL', width: 26 },
          { title: 'SOURCE', width: 16 },
          { title: 'TARGET', width: 16 },
          { title: 'RESULT', width: 7, color: (v) => (v === 'passed' ? 'green' : 'red') },
          { title: 'RTO', width: 6 },
          { title: 'RPO', width: 7 },
          { title: 'REPORT / WHAT FAILED', width: Math.max(20, width - 86) },
        ]}
        rows={drills.map((d) => [d.id, d.source, d.target, d.ok ? 'passed' : 'FAILED', d.rtoSeconds >= 0 ? `${d.rtoSeconds} s` : '-', `${(d.rpoSeconds / 3600).toFixed(1)} h`, d.ok ? d.file : `${d.error ?? ''} (${d.file})`])}
        selected={selected}
        height={height - 1}
        empty="no drills yet: press D on an instance"
      />
    </Box>
  );
}

function DrillOutcome({ report }: { report?: ReturnType<UiModel['drills']>[number] }) {
  if (!report) return null;
  return (
    <Box flexDirection="column" borderStyle="round" borderColor={report.ok ? 'green' : 'red'} paddingX={1}>
      <Text bold color={report.ok ? 'green' : 'red'}>
        Drill {report.ok ? 'passed' : 'FAILED'}: RTO {report.rtoSeconds >= 0 ? `${report.rtoSeconds} s` : 'none (not restored)'}, RPO {(report.rpoSeconds / 3600).toFixed(1)} h
      </Text>
      <Text dimColor wrap="truncate-middle">report: {report.file}</Text>
    </Box>
  );
}

function RunsView({ runs, selected, height, width }: { runs: ReturnType<UiModel['runs']>; selected: number; height: number; width: number }) {
  return (
    <Box flexDirection="column">
      <Text bold>The audit trail, newest first</Text>
      <Table
        columns={[
          { title: 'RUN', width: 6 },
          { title: 'STARTED', width: 10 },
          { title: 'COMMAND', width: 12 },
          { title: 'INSTANCE', width: 18 },
          { title: 'WHO', width: 16 },
          { title: 'STATUS', width: 11, color: (v) => (v === 'ok' ? 'green' : v === 'running' || v === 'dry-run' ? undefined : 'red') },
          { title: 'TIME', width: 7 },
          { title: 'ERROR', width: Math.max(10, width - 88) },
        ]}
        count={runs.length}
        row={(i) => {
          const r = runs[i];
          return [String(r.id), age(r.startedAt), r.command, r.instance ?? '-', `${r.osUser}@${r.origin}`, r.status, r.durationMs === null ? '-' : `${(r.durationMs / 1000).toFixed(1)} s`, r.error ?? ''];
        }}
        selected={selected}
        height={height - 1}
        empty="no runs yet"
      />
    </Box>
  );
}

/** Backups newest first: the instance screen lists them to restore one, the drill wizard to pick one. */
function BackupsTable({ backups, selected, height, empty }: { backups: ReturnType<UiModel['backups']>; selected: number; height: number; empty?: string }) {
  const now = Date.now();
  return (
    <Table
      columns={[
        { title: 'BACKUP', width: 22 },
        { title: 'TAKEN', width: 10 },
        { title: 'FILES', width: 8 },
        { title: 'SIZE', width: 10 },
        { title: 'VERIFIED', width: 9 },
      ]}
      rows={backups.map((b) => [b.id, age(b.createdAt, now), String(b.manifest.code?.files ?? '-'), formatBytes((b.manifest.code?.bytes ?? 0) + (b.manifest.db?.bytes ?? 0)), b.verifyFailed ? 'FAILED' : b.verifiedAt ? 'yes' : ''])}
      selected={selected}
      height={height}
      empty={empty}
    />
  );
}
