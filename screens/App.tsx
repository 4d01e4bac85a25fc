import { Box, Text, useApp, useInput, type Key } from 'ink';
import { useRef, useState, useSyncExternalStore, type ReactElement } from 'react';
import { age, formatBytes } from '../src/util/format.js';
import { ConfirmView, Footer, Header, RunView, Table, useTermSize, type Column } from './components.js';
import type { InstanceRow, UiModel } from './model.js';

interface Nav {
  stack: Screen[];
  sel: Record<string, number>;
  filter: string;
  filtering: boolean;
  dialog?: Dialog;
}

function filterRows(rows: InstanceRow[], filter: string): InstanceRow[] {
  const f = filter.toLowerCase();
  return f ? rows.filter((i) => i.name.toLowerCase().includes(f) || i.env.toLowerCase().includes(f) || i.host.toLowerCase().includes(f)) : rows;
}

type Screen = { kind: 'instances' } | { kind: 'instance'; name: string } | { kind: 'run' } | { kind: 'compare' } | { kind: 'help'; of: Screen['kind'] };

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

export function App({ model }: { model: UiModel }) {
  const state = useSyncExternalStore(model.subscribe, model.getState);
  const { exit } = useApp();
  const { cols, rows } = useTermSize();
  // Navigation state lives in a ref updated synchronously by each key, then one re-render: keys
  // typed faster than React renders (jjj Enter, a paste) each see the state the previous one left.
  const nav = useRef<Nav>({ stack: [{ kind: 'instances' }], sel: {}, filter: '', filtering: false }).current;
  const [, setTick] = useState(0);
  const redraw = () => setTick((t) => t + 1);
  const setDialog = (d: Dialog | undefined | ((d: Dialog | undefined) => Dialog | undefined)) => {
    nav.dialog = typeof d === 'function' ? d(nav.dialog) : d;
  };
  const bodyHeight = Math.max(3, rows - 5);

  /** What the screen shows now, derived from nav and the model at call time (render or key). */
  const view = () => {
    const screen = nav.stack[nav.stack.length - 1];
    const visible = filterRows(model.getState().instances, nav.filter);
    const selKey = screen.kind === 'instance' ? `backups:${screen.name}` : screen.kind;
    const selected = nav.sel[selKey] ?? 0;
    const backups = screen.kind === 'instance' ? model.backups(screen.name).filter((b) => b.kind === 'manual') : [];
    const count = screen.kind === 'instances' ? visible.length : screen.kind === 'compare' ? compareRows(model.getState().lastResult?.result as CompareResult | undefined).length : backups.length;
    const inst = screen.kind === 'instance' ? model.getState().instances.find((i) => i.name === screen.name) : visible[selected];
    return { screen, visible, selKey, selected, backups, count, inst };
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
  ];
  const quit: Binding = { keys: ['q'], label: 'q', hint: 'quit', run: () => (model.running ? model.flash('error', 'a run is in progress: ctrl-c cancels it') : exit()) };
  const help: Binding = { keys: ['?'], label: '?', hint: 'help', run: () => push({ kind: 'help', of: view().screen.kind }) };
  const bindings: Record<Screen['kind'], Binding[]> = {
    instances: [
      ...moves,
      { keys: ['enter'], label: 'enter', hint: 'open', run: () => {
        const { inst } = view();
        if (inst) push({ kind: 'instance', name: inst.name });
      } },
      { keys: ['/'], label: '/', hint: 'filter', run: () => (nav.filtering = true) },
      ...instanceActions('restore latest'),
      { keys: ['R'], label: 'R', hint: 'reload', run: () => model.reload() },
      { keys: ['esc'], label: 'esc', hint: 'clear filter', run: () => (nav.filter = '') },
      help,
      quit,
    ],
    instance: [
      ...moves,
      ...instanceActions('restore selected backup'),
      { keys: ['esc'], label: 'esc', hint: 'back', run: pop },
      help,
      quit,
    ],
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
    compare: [...moves, { keys: ['esc'], label: 'esc', hint: 'back', run: pop }, help, quit],
    help: [{ keys: ['esc', '?'], label: 'esc', hint: 'back', run: pop }, quit],
  };

  useInput((input, key) => {
    handleKey(input, key);
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
    if (filtering) {
      if (k === 'enter' || k === 'esc') nav.filtering = false;
      else if (k === 'backspace') nav.filter = nav.filter.slice(0, -1);
      else if (input && !key.ctrl && !key.meta) {
        nav.filter += input;
        nav.sel.instances = 0;
      }
      return;
    }
    if (k === 'ctrl-c' && !model.running) return exit();
    const b = bindings[screen.kind].find((x) => x.keys.includes(k) && (!x.when || x.when()));
    b?.run();
  }

  const { screen, visible, selected, backups } = view();
  const { filter, filtering, dialog } = nav;
  const hints = (screen.kind === 'help' ? bindings.help : bindings[screen.kind])
    .filter((b) => (!b.when || b.when()) && !['G', 'pgup', 'pgdn', 'up', '?', 'q'].includes(b.keys[0]))
    .map((b) => [b.label, b.hint] as [string, string]);
  const filterHint = filtering ? ([['enter', 'done typing']] as [string, string][]) : hints;
  const ctx = `${state.instances.length} instances · ${state.hostCount} hosts${filter ? ` · filter "${filter}"` : ''}`;

  let body: ReactElement;
  if (dialog?.options) body = <PickView message={dialog.message} options={dialog.options} selected={dialog.selected ?? 0} height={bodyHeight} />;
  else if (dialog) body = <ConfirmView {...dialog} />;
  else if (screen.kind === 'instances') body = <InstancesView rows={visible} selected={selected} height={bodyHeight - (filtering ? 1 : 0)} filtering={filtering} filter={filter} width={cols} />;
  else if (screen.kind === 'instance') body = <InstanceView inst={state.instances.find((i) => i.name === screen.name)} backups={backups} selected={selected} height={bodyHeight} />;
  else if (screen.kind === 'compare') body = <CompareView result={state.lastResult?.result as CompareResult | undefined} selected={selected} height={bodyHeight} width={cols} />;
  else if (screen.kind === 'run') body = state.run ? <RunView run={state.run} width={cols} height={bodyHeight} /> : <Text dimColor>no run</Text>;
  else body = <HelpView bindings={bindings[screen.of]} of={screen.of} />;

  return (
    <Box flexDirection="column" width={cols} height={rows}>
      <Header file={state.inventoryFile} context={ctx} width={cols} />
      <Box flexDirection="column" flexGrow={1} height={bodyHeight} overflow="hidden">
        {body}
      </Box>
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
  const data = rows.map((i) => [i.name, i.env + (i.protected ? '*' : ''), i.host, age(i.lastBackup, now), i.path]);
  return (
    <Box flexDirection="column">
      {filtering ? (
        <Text>
          /<Text inverse>{filter || ' '}</Text>
        </Text>
      ) : null}
      <Table columns={columns} rows={data} selected={selected} height={height} empty="no instances: add one with opsdeck instance add (see --help)" />
    </Box>
  );
}

function InstanceView({ inst, backups, selected, height }: { inst?: InstanceRow; backups: ReturnType<UiModel['backups']>; selected: number; height: number }) {
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
      <Box marginTop={1} flexDirection="column">
        <Text bold>Backups</Text>
        <Table
          columns={[
            { title: 'ID', width: 22 },
            { title: 'TAKEN', width: 10 },
            { title: 'FILES', width: 8 },
            { title: 'SIZE', width: 10 },
            { title: 'VERIFIED', width: 9 },
          ]}
          rows={backups.map((b) => [b.id, age(b.createdAt), String(b.manifest.code?.files ?? '-'), formatBytes((b.manifest.code?.bytes ?? 0) + (b.manifest.db?.bytes ?? 0)), b.verifiedAt ? 'yes' : ''])}
          selected={selected}
          height={Math.max(2, height - 9)}
          empty="no backups yet: press b"
        />
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
  return (
    <Box flexDirection="column">
      <Text bold>Keys on the {of} screen</Text>
      {bindings.map((b, i) => (
        <Text key={i}>
          <Text color="yellow">{b.keys.join(', ').padEnd(16)}</Text> {b.hint}
        </Text>
      ))}
      <Text> </Text>
      <Text dimColor>Everywhere: ? help · q quit · esc back. Destructive actions ask first, with Cancel focused.</Text>
    </Box>
  );
}
