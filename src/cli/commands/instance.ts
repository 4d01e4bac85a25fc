import { forgetMirror } from '../../store/tree-mirror.js';
import { Option, type Command } from 'commander';
import { HOOK_KINDS, type Inventory } from '../../../inventory/index.js';
import type { Relation } from '../../../inventory/relations.js';
import { checkLocalPath, checkName, checkRef, checkRemotePath, checkUrl, checkWatchExclude } from '../../../inventory/validate.js';
import { UsageError } from '../../core/errors.js';
import { age, duration } from '../../core/format.js';
import { dbUrlForms, normalizeDbUrl, sqlMetricProblem } from '../../databases/index.js';
import { makePlan, purgePlan } from '../../actions/make.js';
import { MAINTENANCE_FILE } from '../../actions/app.js';
import { DEFAULT_EXCLUDES } from '../../actions/watch.js';
import { checkTakeOver } from '../../actions/takeover.js';
import { checkRedactionScope, readRedaction, redactionDigest } from '../../actions/redact.js';
import { instancesWithLastBackup } from '../../present/backups.js';
import type { Act } from '../action.js';
import { collect, parseHealth, parseHooks, parseMetrics, readDbPassword, type HealthOpts } from '../options.js';
import { confirm, confirmChange } from '../prompt.js';
import { runChange, runPlan } from '../run.js';
import { table } from '../render.js';
import { examples } from './help.js';

interface InstanceAddOpts {
  host: string;
  path: string;
  env: string;
  url?: string;
  db?: string;
  dbPasswordFile?: string;
  branch?: string;
  /** false with --no-db-check. */
  dbCheck: boolean;
}

interface InstanceMakeOpts extends HealthOpts {
  host: string;
  path: string;
  env: string;
  repo: string;
  ref: string;
  db?: string;
  dbPasswordFile?: string;
  url?: string;
  hook: string[];
  local: string[];
}

interface InstanceListOpts {
  env?: string;
}

interface InstanceRemoveOpts {
  purge?: boolean;
  allowProtected?: boolean;
}

interface InstanceSetOpts extends HealthOpts {
  url?: string;
  branch?: string;
  hook: string[];
  /** The paths given, or false with --no-local. */
  local: string[] | false;
  watchExclude: string[];
  dbPassword?: boolean;
  dbPasswordFile?: string;
  metric: string[];
  releases?: string;
  /** The directories given, or false with --no-shared. */
  shared: string[] | false;
  stagingOf?: string;
  devOf?: string;
  standalone?: boolean;
  /** A rules file, or false with --no-redact. */
  redact?: string | false;
  releaseHold?: boolean;
}

type InstancePatch = Parameters<Inventory['updateInstance']>[1];

/** --releases N: how many releases to keep, 1 to 100; 0 or off turns release mode off. */
function checkReleases(v: string): number {
  const n = v === 'off' ? 0 : Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 100)
    throw new UsageError(`invalid --releases ${JSON.stringify(v)}`, 'a number of releases to keep, 1 to 100 (at least 2 to roll back), or 0/off for in place');
  return n;
}

/** An argv word as a person would type it back: bare when it is plain, else quoted. */
const shownWord = (a: string) => (/^[\w./=:@%+-]+$/.test(a) ? a : JSON.stringify(a));

export function register(program: Command, act: Act): void {
  const inst = program
    .command('instance')
    .description('application instances: a code tree plus a database')
    .addHelpText(
      'after',
      examples(
        'opsdeck instance add shop-prod --host web1 --path /srv/www/shop --env prod --db postgres://shop@127.0.0.1:5432/shop',
        'opsdeck instance list --env prod',
        'opsdeck instance show shop-prod',
      ),
    );
  inst
    .command('add <name>')
    .description('take over an existing instance')
    .addHelpText(
      'after',
      examples(
        'OPSDECK_DB_PASSWORD=... opsdeck instance add shop-prod --host web1 --path /srv/www/shop --env prod --db postgres://shop@127.0.0.1:5432/shop --url https://shop.example',
        'opsdeck instance add blog --host web1 --path /srv/www/blog --env dev --db postgres://blog@127.0.0.1/blog --db-password-file ~/blog.pw',
      ),
    )
    .requiredOption('--host <host>', 'host it lives on')
    .requiredOption('--path <dir>', 'absolute path of its code tree')
    .requiredOption('--env <env>', 'environment')
    .option('--url <url>', 'its public URL')
    .option('--db <url>', `${dbUrlForms()} as seen from the host (the password: OPSDECK_DB_PASSWORD, --db-password-file or the prompt)`)
    .option('--db-password-file <file>', 'read the database password from this file')
    .option('--branch <branch>', 'git branch it follows')
    .option('--no-db-check', 'do not log in to the database first (it is down now); the first backup will tell')
    .action(
      act(async (app, g, name: string, o: InstanceAddOpts) => {
        checkName('instance', name);
        const h = app.inv.requireHost(checkName('host', o.host));
        app.inv.requireEnv(checkName('environment', o.env));
        const path = checkRemotePath(o.path);
        app.inv.refuseNested(name, h.name, path);
        const dbUrl = o.db ? normalizeDbUrl(o.db) : null;
        if (o.url) checkUrl(o.url);
        if (o.branch) checkRef(o.branch);
        const pw = dbUrl ? await readDbPassword(dbUrl, o.dbPasswordFile) : undefined;
        const { git } = await checkTakeOver(app, h, { name, path, dbUrl, dbPassword: pw, dbCheck: o.dbCheck !== false });
        const fields = { name, host: h.name, path, env: o.env, url: o.url ?? null, dbUrl, branch: o.branch ?? git?.branch ?? null, revision: git?.revision ?? null };
        // The password is recorded as a fact, never its value.
        const params = { ...fields, dbLogin: pw ? 'password set' : 'no password' };
        return runChange(
          app,
          g,
          'instance add',
          params,
          () => {
            const i = app.inv.addInstance({ ...fields, dbPassword: pw });
            const found = git ? `; git ${git.branch ? `branch ${git.branch}, ` : ''}${git.describe ?? git.revision.slice(0, 10)}` : '';
            return { json: i, text: `instance ${i.name} added: ${i.host}:${i.path} (${i.env})${dbUrl ? `, database ${dbUrl}` : ''}${found}` };
          },
          { instance: name },
        );
      }),
    );
  inst
    .command('make <name>')
    .description('make a new instance: the code at REF, an empty database, its install hooks, then registered; a failure leaves nothing behind')
    .addHelpText(
      'after',
      examples(
        'opsdeck instance make blog-dev --host web1 --path /srv/www/blog --env dev --repo https://git.example/blog.git --ref v2.1 --db postgres://blog@127.0.0.1/blog --hook migrate=bin/migrate',
        'opsdeck --dry-run instance make api-dev --host web2 --path /srv/api --env dev --repo https://git.example/api.git --ref main',
      ),
    )
    .requiredOption('--host <host>', 'host to make it on')
    .requiredOption('--path <dir>', 'absolute path for its code tree (must not exist)')
    .requiredOption('--env <env>', 'environment')
    .requiredOption('--repo <git>', 'git repository (URL, user@host:path, or a path on the host)')
    .requiredOption('--ref <ref>', 'tag or branch to check out')
    .option('--db <url>', `${dbUrlForms()} (created when missing; the password as for instance add)`)
    .option('--db-password-file <file>', 'read the database password from this file')
    .option('--url <url>', 'its public URL')
    .option('--hook <kind=command>', `an app hook (${HOOK_KINDS.join(', ')}); repeatable`, collect, [])
    .option('--health-url <url>', 'URL the health check asks')
    .option('--health-status <n>', 'HTTP status it must answer (default 200)')
    .option('--health-text <text>', 'text the page must contain')
    .option('--local <path>', 'a file or directory that belongs to this instance alone; repeatable', collect, [])
    .action(
      act(async (app, g, name: string, o: InstanceMakeOpts) => {
        checkName('instance', name);
        const host = app.inv.requireHost(checkName('host', o.host)).name;
        app.inv.requireEnv(checkName('environment', o.env));
        const dbUrl = o.db ? normalizeDbUrl(o.db) : null;
        const url = o.url ? checkUrl(o.url) : null;
        const dbPassword = dbUrl ? await readDbPassword(dbUrl, o.dbPasswordFile) : undefined;
        const path = checkRemotePath(o.path);
        // Refused before anything is made; the register step checks again.
        app.inv.refuseNested(name, host, path);
        const plan = makePlan(app, {
          name,
          host,
          path,
          env: o.env,
          repo: o.repo,
          ref: o.ref,
          url,
          dbUrl,
          dbPassword,
          hooks: parseHooks(o.hook),
          health: parseHealth(o, null, url) ?? null,
          localPaths: o.local.map(checkLocalPath),
        });
        return runPlan(app, g, plan, (i) => `instance ${i.name} made on ${i.host}:${i.path} (${i.env}) at ${i.revision?.slice(0, 10) ?? o.ref}${i.dbUrl ? `, database ${i.dbUrl}` : ''}`);
      }),
    );
  inst
    .command('list')
    .description('list instances')
    .addHelpText('after', examples('opsdeck instance list', 'opsdeck instance list --env prod', 'opsdeck instance list --json'))
    .option('--env <env>', 'only this environment')
    .action(
      act(async (app, _g, o: InstanceListOpts) => {
        const rows = instancesWithLastBackup(app.inv, o.env);
        return {
          json: rows,
          text: rows.length
            ? table(
                rows.map((i) => [i.name, i.env, i.host, i.path, age(i.lastBackup)]),
                ['NAME', 'ENV', 'HOST', 'PATH', 'LAST BACKUP'],
              )
            : 'no instances yet: opsdeck instance add NAME --host H --path DIR --env E',
        };
      }),
    );
  inst
    .command('show <name>')
    .description('show one instance')
    .addHelpText('after', examples('opsdeck instance show shop-prod', 'opsdeck instance show shop-prod --json'))
    .action(
      act(async (app, _g, name: string) => {
        const i = app.inv.requireInstance(name);
        const backups = app.inv.listBackups(name);
        const e = app.inv.requireEnv(i.env);
        return {
          json: { ...i, protected: e.protected, backups: backups.length, lastBackup: backups[0]?.createdAt ?? null, relation: app.inv.relations.get(name) },
          text:
            `instance ${i.name}\n  env       ${i.env}${e.protected ? ' (protected)' : ''}\n  host      ${i.host}\n  path      ${i.path}\n  url       ${i.url ?? '-'}\n` +
            `  database  ${i.dbUrl ?? '-'}${i.dbUrl ? (i.hasDbPassword ? ' (password stored, encrypted)' : ' (no password stored)') : ''}\n  branch    ${i.branch ?? '-'}\n` +
            `  revision  ${i.revision ?? '-'}\n  state     ${i.maintenanceSince ? `IN MAINTENANCE since ${i.maintenanceSince}` : 'live'}\n` +
            `  health    ${i.health ? `${i.health.url} expects ${i.health.status}${i.health.text ? ` and ${JSON.stringify(i.health.text)}` : ''}` : i.url ? `${i.url} expects 200` : '-'}\n` +
            HOOK_KINDS.map((k) => `  hook ${k.padEnd(16)}${i.hooks[k]?.map(shownWord).join(' ') ?? (k.startsWith('maintenance') ? `(default: ${MAINTENANCE_FILE})` : '-')}\n`).join('') +
            `  local     ${i.localPaths.join(', ') || '-'}\n` +
            i.metrics.map((m) => `  metric    ${m.name} = ${m.kind}:${m.source}\n`).join('') +
            `  releases  ${i.releases ? `${i.releases} kept in ${i.path}.releases, shared: ${[...i.localPaths, ...(i.sharedPaths ?? [])].join(', ') || '-'}` : 'off (updated in place)'}\n` +
            relationLines(app.inv, name) +
            `  backups   ${backups.length}, last ${age(backups[0]?.createdAt)}`,
        };
      }),
    );
  inst
    .command('remove <name>')
    .description('remove an instance from the inventory; with --purge also delete its code tree and database (after a last backup)')
    .addHelpText('after', examples('opsdeck instance remove blog-dev', 'opsdeck instance remove blog-dev --purge   # a last backup, then delete tree and database'))
    .option('--purge', 'also delete its code tree and drop its database, after a last backup')
    .addOption(new Option('--allow-protected', 'with --yes: allow a protected instance without a typed confirmation'))
    .action(
      act(async (app, g, name: string, o: InstanceRemoveOpts) => {
        const i = app.inv.requireInstance(name);
        const held = app.inv.relations.get(name).held;
        if (held) throw new UsageError(`${name} is held: ${held}`, `release it first: opsdeck instance set ${name} --release-hold`);
        if (o.purge) {
          const plan = purgePlan(app, name);
          await confirmChange(app, g, name, `DELETE ${i.host}:${i.path} and its database, and remove ${name}? A last backup is taken first.`, o.allowProtected);
          return runPlan(app, g, plan, (r) => `instance ${r.removed} deleted and removed; its last backup is ${r.finalBackup}`);
        }
        if (!g.dryRun) await confirm(`remove instance ${i.name} from the inventory?`, { yes: g.yes });
        return runChange(
          app,
          g,
          'instance remove',
          { instance: name, host: i.host, path: i.path },
          () => {
            app.inv.removeInstance(name);
            app.inv.relations.forget(name);
            forgetMirror(app.home, name);
            return { json: { removed: name }, text: `instance ${name} removed from the inventory (nothing on ${i.host} was touched)` };
          },
          { instance: name },
        );
      }),
    );

  inst
    .command('set <name>')
    .description('change an instance: URL, branch, hooks, health check, local files, metrics')
    .addHelpText(
      'after',
      examples(
        'opsdeck instance set shop-prod --health-url https://shop.example/health --health-text OK',
        'opsdeck instance set shop-prod --metric orders=sql:"SELECT count(*) FROM orders"',
        'OPSDECK_DB_PASSWORD=... opsdeck instance set shop-prod --db-password',
        'opsdeck instance set shop-uat --staging-of shop-prod --redact redact.sql   # then: opsdeck refresh shop-uat',
      ),
    )
    .option('--url <url>', 'its public URL')
    .option('--branch <branch>', 'the git branch update follows')
    .option('--hook <kind=command>', `an app hook (${HOOK_KINDS.join(', ')}); an empty command removes it; repeatable`, collect, [])
    .option('--health-url <url>', 'URL the health check asks')
    .option('--health-status <n>', 'HTTP status it must answer (default 200)')
    .option('--health-text <text>', 'text the page must contain')
    .option('--local <path>', 'a file or directory (relative) that belongs to this instance alone; repeatable', collect, [])
    .option('--no-local', 'forget every local path')
    .option('--releases <n>', 'release mode: updates build a new release beside the live one and switch a link to it; keep the newest N (0 or off: back to in place at the next update)')
    .option('--shared <dir>', 'release mode: a directory (relative) that lives across releases, like uploads; repeatable', collect, [])
    .option('--no-shared', 'forget every shared directory')
    .option('--watch-exclude <pattern>', `what watch leaves out: a name anywhere, or a path with a slash; repeatable (default ${DEFAULT_EXCLUDES.join(' ')})`, collect, [])
    .option('--db-password', 'store the database password again: from OPSDECK_DB_PASSWORD, --db-password-file or the prompt')
    .option('--db-password-file <file>', 'with --db-password: read it from this file')
    .option(
      '--metric <name=kind:source>',
      'an app metric the health panels chart: NAME=sql:QUERY (run read-only) or NAME=cmd:COMMAND (run in the instance directory, must print one number); NAME= removes it; repeatable',
      collect,
      [],
    )
    .option('--staging-of <instance>', 'it is the staging instance of this one (refresh copies its data; promote makes it production)')
    .option('--dev-of <instance>', 'it is a development copy of this one (refresh copies its data)')
    .option('--standalone', 'forget its staging or dev relation')
    .option('--redact <file>', 'store redaction rules refresh applies (table.column = expression, or SQL statements ending with ;)')
    .option('--no-redact', 'forget its stored redaction rules')
    .option('--release-hold', 'release the hold a promote put on it (the old production): it may be copied onto and removed again')
    .action(
      act(async (app, g, name: string, o: InstanceSetOpts) => {
        const i = app.inv.requireInstance(name);
        const rel = relationPatch(app.inv, name, o);
        const patch: InstancePatch = {};
        if (o.url !== undefined) patch.url = checkUrl(o.url);
        if (o.branch !== undefined) patch.branch = checkRef(o.branch);
        if (o.hook.length) patch.hooks = parseHooks(o.hook, i.hooks);
        const health = parseHealth(o, i.health, o.url ?? i.url);
        if (health) patch.health = health;
        if (o.local === false) patch.localPaths = [];
        else if (o.local.length) patch.localPaths = [...new Set([...i.localPaths, ...o.local.map(checkLocalPath)])];
        if (o.watchExclude.length) patch.watchExcludes = o.watchExclude.map(checkWatchExclude);
        if (o.releases !== undefined) patch.releases = checkReleases(o.releases);
        if (o.shared === false) patch.sharedPaths = [];
        else if (o.shared.length) patch.sharedPaths = [...new Set([...(i.sharedPaths ?? []), ...o.shared.map(checkLocalPath)])];
        if (o.metric.length) {
          patch.metrics = parseMetrics(o.metric, i.metrics);
          if (patch.metrics.some((m) => m.kind === 'sql') && !i.dbUrl) throw new UsageError(`${name} has no database for an sql: metric`, 'use a cmd: metric, or give the instance a database');
          // By the rules of the instance's own engine, as its probe will check it.
          for (const m of patch.metrics) {
            const problem = m.kind === 'sql' && i.dbUrl ? sqlMetricProblem(i.dbUrl, m.source) : null;
            if (problem) throw new UsageError(`metric ${m.name} is refused: ${problem}`, 'an sql: metric only reads, in one statement; use a cmd: metric for anything else');
          }
        }
        let pw: string | undefined;
        if (o.dbPassword || o.dbPasswordFile) {
          if (!i.dbUrl) throw new UsageError(`${name} has no database`, 'give it one when adding the instance (--db)');
          pw = await readDbPassword(i.dbUrl, o.dbPasswordFile);
          if (!pw) throw new UsageError('no database password given', 'put it in OPSDECK_DB_PASSWORD, give --db-password-file FILE, or run at a terminal to be asked');
        }
        const changed = Object.keys(patch);
        if (!changed.length && pw === undefined && !rel) throw new UsageError('nothing to change', 'give at least one option; see opsdeck instance set --help');
        const password = pw;
        // The password is recorded as a fact, never its value.
        const params = { instance: name, ...patch, ...(password !== undefined && { dbLogin: 'password set' }), ...rel?.params };
        return runChange(
          app,
          g,
          'instance set',
          params,
          () => {
            if (rel) app.inv.relations.set(name, rel.set);
            if (password !== undefined) app.inv.setDbPassword(name, password);
            if (!changed.length) {
              const said = [...(password !== undefined ? ['database password stored (encrypted)'] : []), ...(rel ? [rel.said] : [])];
              return { json: { ...app.inv.requireInstance(name), relation: app.inv.relations.get(name) }, text: `instance ${name}: ${said.join('; ')}` };
            }
            const after = app.inv.updateInstance(name, patch);
            return { json: after, text: `instance ${name} updated: ${[...changed, ...(rel ? [rel.said] : [])].join(', ')}` };
          },
          { instance: name },
        );
      }),
    );
}

/** instance show's lines on relations: whose copy it is, its redaction rules, a hold, the copies of it. */
function relationLines(inv: Inventory, name: string): string {
  const r = inv.relations.get(name);
  const lines: string[] = [];
  if (r.kind === 'mirror') lines.push(`mirror of ${r.of}, ${duration(r.lagSeconds ?? 0)} behind${r.syncedBackup ? ` (holds backup ${r.syncedBackup}, synced ${age(r.syncedAt)})` : ' (never synced)'}`);
  else if (r.kind) lines.push(`${r.kind} of ${r.of}`);
  const copies = inv.relations.relatedTo(name);
  if (copies.length) lines.push(`copies    ${copies.map((c) => `${c.instance} (${c.kind})`).join(', ')}`);
  const out = lines.map((l) => (l.startsWith('copies') ? `  ${l}\n` : `  relation  ${l}\n`));
  if (r.redact) out.push(`  redact    ${r.redact.statements.length} rule(s) from ${r.redact.source}\n`);
  if (r.held) out.push(`  HELD      ${r.held} (release: opsdeck instance set ${name} --release-hold)\n`);
  return out.join('');
}

/** What instance set changes of an instance's relations, checked before anything is written. */
function relationPatch(inv: Inventory, name: string, o: InstanceSetOpts): { set: Partial<Relation>; params: Record<string, unknown>; said: string } | undefined {
  const given = [o.stagingOf && '--staging-of', o.devOf && '--dev-of', o.standalone && '--standalone'].filter(Boolean);
  if (given.length > 1) throw new UsageError(`${given.join(' and ')} exclude each other`, 'give one of them');
  const set: Partial<Relation> = {};
  const params: Record<string, unknown> = {};
  const said: string[] = [];
  const of = o.stagingOf ?? o.devOf;
  if (of !== undefined) {
    inv.requireInstance(of);
    if (of === name) throw new UsageError(`${name} cannot be a copy of itself`, 'name the instance it copies');
    const kind = o.stagingOf ? 'staging' : 'dev';
    if (inv.relations.get(name).kind === 'mirror') throw new UsageError(`${name} is a mirror`, `stop that first: opsdeck mirror remove ${name}`);
    Object.assign(set, { kind, of, lagSeconds: null, syncedBackup: null, syncedAt: null });
    params[`${kind}Of`] = of;
    said.push(`${kind} of ${of}`);
  }
  if (o.standalone) {
    Object.assign(set, { kind: null, of: null });
    params.standalone = true;
    said.push('no longer a copy of another');
  }
  if (typeof o.redact === 'string') {
    const r = readRedaction(o.redact);
    // The check clone and refresh make before each run, by the instance's engine: refused rules are never stored.
    checkRedactionScope(r, inv.requireInstance(name), inv.listInstances());
    set.redact = { source: r.source, statements: r.statements };
    params.redact = r.source;
    params.redactDigest = redactionDigest(r);
    said.push(`${r.statements.length} redaction rule(s) from ${r.source} stored`);
  } else if (o.redact === false) {
    set.redact = null;
    params.redact = null;
    said.push('redaction rules forgotten');
  }
  if (o.releaseHold) {
    if (!inv.relations.get(name).held) throw new UsageError(`${name} is not held`, 'nothing to release');
    set.held = null;
    params.release = true;
    said.push('released');
  }
  return said.length ? { set, params, said: said.join('; ') } : undefined;
}
