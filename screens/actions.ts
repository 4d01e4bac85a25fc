import type { Backup } from '../inventory/index.js';
import { age } from '../src/core/format.js';
import { manualBackups } from './backups.js';
import type { InstanceRow } from './model.js';
import type { Binding, Ctx } from './screen.js';

/**
 * The operations on an instance, started from the keys. Each builds its plan first (model.prepare):
 * what the action refuses (a protected drill target, an update without a branch, a backup that failed
 * verification) is said on the status line in the action's words, and nothing is asked.
 */

/** Confirms a change to `inst` (its name typed when protected), then starts it in the run view. */
function askChange(ctx: Ctx, inst: InstanceRow, message: string, action: string, start: () => boolean): void {
  ctx.confirm({ message, action, typeName: inst.protected ? inst.name : undefined, onYes: () => void (start() && ctx.push({ kind: 'run' })) });
}

export function startBackup(ctx: Ctx, inst: InstanceRow): void {
  if (ctx.model.start('backup', inst.name)) ctx.push({ kind: 'run' });
}

export function startWatch(ctx: Ctx, inst: InstanceRow): void {
  // File integrity is read-only (the first run records the baseline): no confirmation.
  if (ctx.model.start('watch', inst.name)) ctx.push({ kind: 'run' });
}

/** Restores `backup` (the list's newest when none is selected) after a confirmation. */
export function startRestore(ctx: Ctx, inst: InstanceRow, backup: Backup | undefined): void {
  const p = ctx.model.prepare('restore', inst.name, { backup: backup?.id });
  if (!p || !backup) return;
  askChange(
    ctx,
    inst,
    `Restore backup ${backup.id} (${age(backup.createdAt)}) onto ${inst.name} at ${inst.host}:${inst.path}?\nIts code and database will be replaced; a safety backup is taken first.`,
    'Restore',
    p.start,
  );
}

export function startUpdate(ctx: Ctx, inst: InstanceRow): void {
  const p = ctx.model.prepare('update', inst.name);
  if (p) askChange(ctx, inst, `Update ${inst.name} to the tip of ${inst.branch}?\nA backup is taken first; maintenance while it runs; any failure is undone.`, 'Update', p.start);
}

export function startUpgrade(ctx: Ctx, inst: InstanceRow): void {
  const model = ctx.model;
  model.flash('info', `asking ${inst.host} for the tags of ${inst.name}...`);
  void model.tags(inst.name).then((tags) => {
    if (!tags.length) return model.flash('error', `no tags found for ${inst.name}`);
    model.flash('info', '');
    ctx.pick(
      `Upgrade ${inst.name} to which tag?`,
      tags.map((t) => ({ key: t, label: t, value: t })),
      (tag) => {
        const p = model.prepare('upgrade', inst.name, { to: tag });
        if (p) askChange(ctx, inst, `Upgrade ${inst.name} to ${tag}?\nA backup is taken first; maintenance while it runs; any failure is undone.`, 'Upgrade', p.start);
      },
    );
    ctx.redraw();
  });
}

export function toggleMaintenance(ctx: Ctx, inst: InstanceRow): void {
  const mode = inst.maintenanceSince ? 'off' : 'on';
  const p = ctx.model.prepare('maintenance', inst.name, { mode });
  if (p)
    askChange(
      ctx,
      inst,
      mode === 'on' ? `Put ${inst.name} in maintenance? Its site will answer 503.` : `Take ${inst.name} out of maintenance?`,
      mode === 'on' ? 'Maintenance on' : 'Maintenance off',
      p.start,
    );
}

/** The instances other than `inst`, as picker items whose value is the instance itself. */
function others(ctx: Ctx, inst: InstanceRow, label: (t: InstanceRow) => string) {
  return ctx.model
    .getState()
    .instances.filter((i) => i.name !== inst.name)
    .map((t) => ({ key: t.name, label: label(t), value: t }));
}

export function startClone(ctx: Ctx, inst: InstanceRow): void {
  const targets = others(ctx, inst, (t) => `${t.name}  (${t.env}${t.protected ? ', PROTECTED' : ''}, ${t.host})`);
  if (!targets.length) return ctx.model.flash('error', 'there is no other instance to clone onto');
  ctx.pick(`Clone ${inst.name} onto which instance?`, targets, (target) => {
    const p = ctx.model.prepare('clone', inst.name, { to: target.name });
    if (p)
      askChange(
        ctx,
        target,
        `Make ${target.name} a copy of ${inst.name} (code and database)?\n${target.name} keeps its URL, credentials, hooks and local files; its current state is saved first.`,
        'Clone',
        p.start,
      );
  });
}

/** f: a staging or dev instance gets the data of the one it copies (redacted with its rules); M: a mirror is synced; P: promote. */
export function startRefresh(ctx: Ctx, inst: InstanceRow): void {
  const p = ctx.model.prepare('refresh', inst.name);
  const rel = ctx.model.app.inv.relations.get(inst.name);
  if (p)
    askChange(
      ctx,
      inst,
      `Refresh ${inst.name}'s data from ${rel.of}${rel.redact ? `, redacted by ${rel.redact.statements.length} rule(s)` : ''}?\nIts code stays; its current database is saved first.`,
      'Refresh',
      p.start,
    );
}

export function startMirrorSync(ctx: Ctx, inst: InstanceRow): void {
  // A mirror is a copy by definition (never protected): no confirmation.
  if (ctx.model.start('mirror sync', inst.name)) ctx.push({ kind: 'run' });
}

export function startPromote(ctx: Ctx, inst: InstanceRow): void {
  const p = ctx.model.prepare('promote', inst.name);
  const prod = p && ctx.model.getState().instances.find((i) => i.name === ctx.model.app.inv.relations.get(inst.name).of);
  if (p && prod)
    askChange(
      ctx,
      prod,
      `Promote ${inst.name} over ${prod.name}?\n${inst.name} takes ${prod.name}'s environment and URL, with its data from the newest backup; ${prod.name} is kept, held.`,
      'Promote',
      p.start,
    );
}

export function startCompare(ctx: Ctx, inst: InstanceRow): void {
  const choices = others(ctx, inst, (t) => `${t.name}  (${t.env}, ${t.host})`);
  if (!choices.length) return ctx.model.flash('error', 'there is no other instance to compare with');
  ctx.pick(`Compare ${inst.name} with which instance?`, choices, (other) => {
    // Read-only: no confirmation. The run view shows it working; Enter there opens the result.
    if (ctx.model.start('compare', inst.name, { to: other.name })) ctx.push({ kind: 'run' });
  });
}

/** Opens the restore drill wizard: pick a backup, pick a scratch target, read the steps, confirm. */
export function startDrill(ctx: Ctx, inst: InstanceRow): void {
  // The wizard's first step lists backups: with none, there is nothing to walk through.
  if (!manualBackups(ctx.model, inst.name).length) return ctx.model.flash('error', `${inst.name} has no backup to drill: press b to take one`);
  ctx.nav.sel['drill:backup'] = 0;
  ctx.nav.sel['drill:target'] = 0;
  ctx.push({ kind: 'drill', source: inst.name, stage: 'backup' });
}

/** Confirms the drill with its steps listed, then runs it in the run view in place of the wizard. */
export function confirmDrill(ctx: Ctx, source: string, backup: string, target: InstanceRow): void {
  const p = ctx.model.prepare('drill', source, { to: target.name, backup });
  if (!p) return;
  askChange(
    ctx,
    target,
    `Restore drill: backup ${backup} of ${source} onto ${target.name} (${target.host}:${target.path}).\n${target.name}'s code and database will be replaced. The steps:\n` +
      p.steps.map((x, i) => `${i + 1}. ${x.title}${x.explain ? `\n   ${x.explain}` : ''}`).join('\n'),
    'Start drill',
    () => {
      const ok = p.start();
      if (ok) ctx.pop();
      return ok;
    },
  );
}

/**
 * The operation keys, the same on the list (the selected row) and the instance screen. `target` says
 * which instance a key acts on, and which backup r restores.
 */
export function instanceActions<R>(ctx: Ctx, target: (route: R) => { inst?: InstanceRow; backup?: Backup }, restoreHint: string): Binding<R>[] {
  const on =
    (f: (ctx: Ctx, inst: InstanceRow) => void) =>
    (route: R): void => {
      const { inst } = target(route);
      if (inst) f(ctx, inst);
    };
  // The role's right on the instance's environment (team inventory): a key it may not use is greyed.
  const deny = (action: string) => (route: R) => ctx.model.may(action, target(route).inst?.name);
  return [
    { keys: ['b'], label: 'b', hint: 'backup', denied: deny('backup'), run: on(startBackup) },
    {
      keys: ['r'],
      label: 'r',
      hint: restoreHint,
      denied: deny('restore'),
      run: (route) => {
        const { inst, backup } = target(route);
        if (inst) startRestore(ctx, inst, backup);
      },
    },
    { keys: ['u'], label: 'u', hint: 'update', denied: deny('update'), run: on(startUpdate) },
    { keys: ['U'], label: 'U', hint: 'upgrade', denied: deny('upgrade'), run: on(startUpgrade) },
    { keys: ['m'], label: 'm', hint: 'maintenance', denied: deny('maintenance'), run: on(toggleMaintenance) },
    // Clone and drill write to the target picked next: refused there (model.prepare), not greyed here.
    { keys: ['c'], label: 'c', hint: 'clone', run: on(startClone) },
    { keys: ['d'], label: 'd', hint: 'compare', denied: deny('compare'), run: on(startCompare) },
    { keys: ['w'], label: 'w', hint: 'watch', denied: deny('watch'), run: on(startWatch) },
    { keys: ['f'], label: 'f', hint: 'refresh data', denied: deny('refresh'), run: on(startRefresh) },
    { keys: ['M'], label: 'M', hint: 'mirror sync', denied: deny('mirror sync'), run: on(startMirrorSync) },
    // Promote changes production's environment: refused there (model.prepare), not greyed here.
    { keys: ['P'], label: 'P', hint: 'promote', run: on(startPromote) },
  ];
}

export function drillKey<R>(ctx: Ctx, target: (route: R) => InstanceRow | undefined): Binding<R> {
  return {
    keys: ['D'],
    label: 'D',
    hint: 'restore drill',
    run: (route) => {
      const inst = target(route);
      if (inst) startDrill(ctx, inst);
    },
  };
}
