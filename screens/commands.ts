import { startBackup, startDrill, startWatch } from './actions.js';
import type { Ctx } from './screen.js';

const USAGE = 'try :backup NAME, :watch NAME, :drill NAME, :open NAME, :dashboard, :instances, :hosts, :runs, :drills, :changes, :log, :q';

/** The : command line: a screen by name, or an operation on an instance by name. */
export function runCommand(ctx: Ctx, line: string): void {
  const { model } = ctx;
  const [cmd, arg, ...rest] = line.trim().split(/\s+/);
  if (!cmd) return;
  if (rest.length) return model.flash('error', `:${cmd} takes at most one name; ${USAGE}`);
  switch (cmd) {
    case 'dashboard':
    case 'dash':
    case 'home':
      return ctx.reset({ kind: 'dashboard' });
    case 'hosts':
      ctx.reset({ kind: 'dashboard' });
      ctx.nav.focus = 'hosts';
      return;
    case 'instances':
    case 'runs':
    case 'drills':
    case 'changes':
      return ctx.push({ kind: cmd });
    case 'log':
      return ctx.push({ kind: 'log' });
    case 'q':
    case 'quit':
      return model.running ? model.flash('error', 'a run is in progress: ctrl-c cancels it') : ctx.exit();
    case 'help':
      return ctx.push({ kind: 'help', of: ctx.top().kind });
    case 'backup':
    case 'watch':
    case 'drill':
    case 'open': {
      const instances = model.getState().instances;
      if (!arg) return model.flash('error', `:${cmd} needs an instance name, as in :${cmd} ${instances[0]?.name ?? 'NAME'}`);
      const inst = model.byName(arg);
      if (!inst) return model.flash('error', `no instance named ${arg}: see them with :instances`);
      if (cmd === 'open') return ctx.push({ kind: 'instance', name: inst.name });
      if (cmd === 'drill') {
        ctx.push({ kind: 'instance', name: inst.name });
        return startDrill(ctx, inst);
      }
      return cmd === 'backup' ? startBackup(ctx, inst) : startWatch(ctx, inst);
    }
  }
  model.flash('error', `unknown command :${cmd}; ${USAGE}`);
}
