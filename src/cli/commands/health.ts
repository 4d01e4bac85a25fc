import type { Command } from 'commander';
import { EXIT, UsageError } from '../../core/errors.js';
import { sweep, toPrometheus } from '../../health/probes.js';
import { DB_HEALTH_HEADERS, HOST_HEALTH_HEADERS, INSTANCE_HEALTH_HEADERS, dbHealthCells, hasDbRow, healthProblems, hostHealthCells, instanceHealthCells } from '../../present/health.js';
import type { Act } from '../action.js';
import { parseParallel } from '../run.js';
import { table } from '../render.js';
import { examples } from './help.js';

interface HealthOpts {
  all?: boolean;
  env?: string;
  parallel: string;
  prometheus?: boolean;
}

/** health: one sweep of every probe. */
export function register(program: Command, act: Act): void {
  program
    .command('health [target...]')
    .description(
      'one sweep of health: hosts (load, CPU, memory, disks, uptime), instances (site, maintenance, version, backup age), databases (size, connections, longest transaction, replication) and app metrics; exit 1 when something is down or a backup too old',
    )
    .addHelpText('after', examples('opsdeck health', 'opsdeck health shop-prod web1', 'opsdeck health --env prod --prometheus > /var/lib/node_exporter/textfile/opsdeck.prom'))
    .option('--all', 'every instance (the default when no target is given)')
    .option('--env <env>', 'every instance of this environment')
    .option('--parallel <n>', 'probes at once (default 8)', '8')
    .option('--prometheus', "print the Prometheus text format (for node_exporter's textfile collector)")
    .action(
      act(async (app, _g, targets: string[], o: HealthOpts) => {
        const parallel = parseParallel(o.parallel, 8);
        if (o.env) app.inv.requireEnv(o.env);
        // A target is an instance, or a host (meaning its instances).
        const all = app.inv.listInstances();
        let insts = all.filter((i) => (!targets.length && !o.env) || o.all || (o.env && i.env === o.env) || targets.includes(i.name) || targets.includes(i.host));
        for (const t of targets) if (!app.inv.getInstance(t) && !app.inv.getHost(t)) throw new UsageError(`no instance or host named ${t}`, 'list them with: opsdeck instance list');
        insts = [...new Map(insts.map((i) => [i.name, i])).values()];
        const r = await sweep(app, insts, parallel);
        const exitCode = healthProblems(r) ? EXIT.FAILED : EXIT.OK;
        if (o.prometheus) {
          process.stdout.write(toPrometheus(r));
          return { json: undefined, text: '', exitCode };
        }
        const dbRows = r.instances.filter(hasDbRow).map(dbHealthCells);
        return {
          json: r,
          text:
            table(r.hosts.map(hostHealthCells), HOST_HEALTH_HEADERS) +
            '\n' +
            table(r.instances.map(instanceHealthCells), INSTANCE_HEALTH_HEADERS) +
            (dbRows.length ? '\n' + table(dbRows, DB_HEALTH_HEADERS) : ''),
          exitCode,
        };
      }),
    );
}
