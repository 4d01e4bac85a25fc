import { createInterface } from 'node:readline';
import { UsageError } from '../core/errors.js';
import type { App, GlobalOpts } from '../app/app.js';
import { interactive } from '../core/secret-prompt.js';

// Shared with the console (which asks for a team inventory's password before it opens).
export { interactive, readSecret } from '../core/secret-prompt.js';

/**
 * Asks before something destructive. With --yes it goes on; with no terminal it refuses with exit 2
 * instead of waiting for an answer that never comes (cron). On a protected target the person types
 * the name; non-interactively that takes --allow-protected as well as --yes.
 */
export async function confirm(question: string, o: { yes?: boolean; typeToConfirm?: string; allowProtected?: boolean }): Promise<void> {
  if (o.typeToConfirm && o.yes && !interactive() && !o.allowProtected) {
    throw new UsageError(`${o.typeToConfirm} is in a protected environment: --yes alone does not change it`, 'add --allow-protected as well, or run it at a terminal and type the name');
  }
  if (o.yes && (!o.typeToConfirm || o.allowProtected)) return;
  if (!interactive()) throw new UsageError(`this needs a confirmation and there is no terminal: ${question}`, 'run it at a terminal, or add --yes');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const ask = (q: string) => new Promise<string>((r) => rl.question(q, r));
    if (o.typeToConfirm) {
      const a = await ask(`${question}\n${o.typeToConfirm} is PROTECTED. Type its name to go on: `);
      if (a.trim() !== o.typeToConfirm) throw new UsageError('cancelled: the name typed did not match');
    } else {
      const a = await ask(`${question} [y/N] `);
      if (!/^y(es)?$/i.test(a.trim())) throw new UsageError('cancelled');
    }
  } finally {
    rl.close();
  }
}

/** Confirms a change to an instance; a protected one needs its name typed (or --yes --allow-protected). */
export async function confirmChange(app: App, g: GlobalOpts, name: string, question: string, allowProtected?: boolean): Promise<void> {
  if (g.dryRun) return;
  const inst = app.inv.requireInstance(name);
  const prot = app.inv.requireEnv(inst.env).protected;
  await confirm(question, { yes: g.yes, typeToConfirm: prot ? name : undefined, allowProtected });
}
