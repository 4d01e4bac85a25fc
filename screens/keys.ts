import type { Binding, Ctx } from './screen.js';

/** Keys many screens share. Each screen's file lists which it has, in its order. */
export const moves = (ctx: Ctx): Binding[] => [
  { keys: ['down', 'j'], label: '↓/j', hint: 'down', run: () => ctx.move(1) },
  { keys: ['up', 'k'], label: '↑/k', hint: 'up', run: () => ctx.move(-1) },
  { keys: ['g'], label: 'g/G', hint: 'top/bottom', run: () => ctx.jump('top') },
  { keys: ['G'], label: 'G', hint: 'bottom', run: () => ctx.jump('bottom') },
  { keys: ['pgdn'], label: 'PgDn', hint: 'page down', run: () => ctx.move(ctx.bodyHeight - 2) },
  { keys: ['pgup'], label: 'PgUp', hint: 'page up', run: () => ctx.move(-(ctx.bodyHeight - 2)) },
];

export const quit = (ctx: Ctx): Binding => ({
  keys: ['q'],
  label: 'q',
  hint: 'quit',
  run: () => (ctx.model.running ? ctx.model.flash('error', 'a run is in progress: ctrl-c cancels it') : ctx.exit()),
});
export const help = (ctx: Ctx): Binding => ({ keys: ['?'], label: '?', hint: 'help', run: () => ctx.push({ kind: 'help', of: ctx.top().kind }) });
export const filterKey = (ctx: Ctx): Binding => ({ keys: ['/'], label: '/', hint: 'filter', run: () => void (ctx.nav.filtering = true) });
export const envKey = (ctx: Ctx): Binding => ({ keys: ['e'], label: 'e', hint: 'environment', run: () => ctx.model.nextEnv() });
export const commandKey = (ctx: Ctx): Binding => ({ keys: [':'], label: ':', hint: 'command', run: () => void (ctx.nav.command = '') });
/** esc: first clears a filter, then goes back. */
export const escBack = (ctx: Ctx): Binding => ({ keys: ['esc'], label: 'esc', hint: 'clear filter / back', run: () => (ctx.nav.filter ? void (ctx.nav.filter = '') : ctx.pop()) });
export const back = (ctx: Ctx): Binding => ({ keys: ['esc'], label: 'esc', hint: 'back', run: () => ctx.pop() });
export const drillsKey = (ctx: Ctx): Binding => ({
  keys: ['L'],
  label: 'L',
  hint: 'drill reports',
  run: () => {
    ctx.nav.sel.drills = 0;
    ctx.push({ kind: 'drills' });
  },
});
