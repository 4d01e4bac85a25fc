import type { Plan } from '../core/plan.js';

/**
 * A change to the inventory (host trust, settings, hooks, passwords, alert channels, import) as a
 * run of one step, so the engine records it in the audit trail with who, when and from where, as it
 * does every operation. `params` says what changed; a secret appears as the fact that it was set
 * or cleared, never its value. `instance` locks the instance for the change when it names one.
 */
export function changePlan<R>(
  command: string,
  params: Record<string, unknown>,
  apply: () => R | Promise<R>,
  opts: { instance?: string | null; title?: string } = {},
): Plan<{ result?: R }, R | undefined> {
  return {
    command,
    params,
    instance: opts.instance ?? null,
    state: {},
    steps: [
      {
        name: 'apply',
        title: opts.title ?? `Record the change: ${command}`,
        run: async (ctx) => {
          ctx.state.result = await apply();
        },
      },
    ],
    result: (s) => s.result,
    preview: async () => [`would change the inventory: ${command} ${JSON.stringify(params)}`],
  };
}
