import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asLabUser, hostAddArgs } from '../../fixtures/lab.js';
import { appSql, cli, dbStateOf, lab, must, newHome, pgAdmin, TEAM_ADMIN, teamDatabase, treeState, type CliResult } from '../helpers.js';
import { makeLabInstance } from '../../fixtures/lab.js';
import { teamRoleNames } from '../../inventory/pg-team-roles.js';

// Issue 11 item 7: a shared store. The restic repository lives on a remote backend (sftp through the
// lab's sshd, its host key checked against the inventory's pinned one), its password in the team
// inventory sealed with an environment's key: a backup from one jump box restores from another, and
// a role without a right on that environment cannot open the store.

const l = lab();
const tag = randomBytes(4).toString('hex');
const ops = {
  alice: { role: `st_alice_${tag}`, password: `alice-pw-${tag}` },
  bob: { role: `st_bob_${tag}`, password: `bob-pw-${tag}` },
  carol: { role: `st_carol_${tag}`, password: `carol-pw-${tag}` },
};
let team: { db: string; url: string };
const urlAs = (role: string) => team.url.replace(`//${TEAM_ADMIN.role}@`, `//${role}@`);
const lab1 = l.hosts.find((h) => h.name === 'lab1')!;
const storeDir = join(lab1.root, `shared-store-${tag}`);
const repository = `sftp:lab1:${storeDir}`;

/** A jump box: a home of its own on the team inventory, as `who`, with the shared store. */
function jumpBox(who: keyof typeof ops): string {
  const home = newHome('sqlite');
  // No store of its own: the home's template store and its password file go.
  rmSync(join(home, 'store'), { recursive: true, force: true });
  rmSync(join(home, 'store.pass'), { force: true });
  writeFileSync(join(home, 'settings.json'), JSON.stringify({ inventory: urlAs(ops[who].role), storeRepository: repository }));
  return home;
}
const as = (who: keyof typeof ops, home: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> => cli(home, args, { ...env, OPSDECK_INVENTORY_PASSWORD: ops[who].password });

beforeAll(() => {
  team = teamDatabase();
  for (const o of Object.values(ops)) pgAdmin(`CREATE ROLE ${o.role} LOGIN PASSWORD '${o.password}'; GRANT ${teamRoleNames(team.db).user} TO ${o.role};`);
  pgAdmin(`GRANT ${teamRoleNames(team.db).admin} TO ${ops.alice.role};`);
  asLabUser('mkdir', ['-p', storeDir]);
});
afterAll(() => {
  pgAdmin(`DROP DATABASE IF EXISTS ${team.db} WITH (FORCE);`);
  pgAdmin(`DROP ROLE IF EXISTS ${teamRoleNames(team.db).user}, ${teamRoleNames(team.db).admin};`);
  for (const o of Object.values(ops)) pgAdmin(`DROP ROLE IF EXISTS ${o.role};`);
  asLabUser('rm', ['-rf', storeDir]);
});

describe('a shared store', () => {
  let a: string;
  let backupId: string;
  let i: ReturnType<typeof makeLabInstance>;
  let tree: Record<string, string>;
  let db: string;

  beforeAll(async () => {
    a = jumpBox('alice');
    await must(as('alice', a, ['env', 'add', 'stage']));
    await must(as('alice', a, hostAddArgs(l, lab1)));
    await must(as('alice', a, ['team', 'grant', ops.bob.role, '--env', 'stage', '--as', 'operator']));
    await must(as('alice', a, ['store', 'secret', '--env', 'stage']));
    // Asked again without the password: refused, not a new random one that would lock everyone out.
    const again = await as('alice', a, ['store', 'secret', '--env', 'stage']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already kept in the team inventory[\s\S]*--password-file/);
    i = makeLabInstance(l, 'lab1', `shared-${tag}`);
    await must(as('alice', a, ['instance', 'add', i.name, '--host', 'lab1', '--path', i.path, '--env', 'stage', '--db', i.dbUrl, '--url', i.url], { OPSDECK_DB_PASSWORD: i.password }));
    appSql(i, "INSERT INTO notes (body) VALUES ('from jump box a');");
  });

  it('a backup from one jump box goes into the sftp store, its password from the team inventory, none in the home', async () => {
    backupId = JSON.parse((await must(as('alice', a, ['backup', i.name, '--json']))).stdout).id;
    tree = treeState(i.path);
    db = dbStateOf(i);
    expect(asLabUser('ls', [storeDir]).split('\n')).toEqual(expect.arrayContaining(['config', 'data', 'keys', 'snapshots']));
    // ssh checks the host against the one key pinned in the inventory.
    expect(readFileSync(join(a, `store_known_hosts.lab1`), 'utf8')).toMatch(new RegExp(`^\\[${lab1.address}\\]:${lab1.port} ssh-`));
    expect(existsSync(join(a, 'store.pass'))).toBe(false);
  });

  it('another jump box restores it, as an operator of the environment', async () => {
    const b = jumpBox('bob');
    appSql(i, "DELETE FROM notes; INSERT INTO notes (body) VALUES ('changed after the backup');");
    asLabUser('sh', ['-c', 'echo changed > "$1/README.changed"', 'sh', i.path]);
    const r = await as('bob', b, ['restore', i.name, '--backup', backupId, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(treeState(i.path)).toEqual(tree);
    expect(dbStateOf(i)).toEqual(db);
    expect(existsSync(join(b, 'store.pass'))).toBe(false);
    // Every opening of the store's password is recorded.
    const uses = pgAdmin(`SELECT count(*) FROM opsdeck.secret_uses WHERE db_role = '${ops.bob.role}' AND instance IS NULL AND env = 'stage';`, team.db);
    expect(Number(uses.trim())).toBeGreaterThan(0);
  });

  it('a role without a right on the environment cannot open the store', async () => {
    const c = jumpBox('carol');
    const refused = await as('carol', c, ['backups', 'check', '--read-data-subset', 'auto']);
    // Refused as any right the role lacks is: exit 2.
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain(`role ${ops.carol.role} has no right to open the secrets of environment stage`);
  });

  it('refuses a store host that presents another key than the pinned one', async () => {
    const a = jumpBox('alice');
    // lab2's key pinned for lab1: what a host in the middle would look like.
    const lab2 = l.hosts.find((h) => h.name === 'lab2')!;
    pgAdmin(`UPDATE opsdeck.hosts SET host_key = '${lab2.fingerprint}' WHERE name = 'lab1';`, team.db);
    try {
      // The store's check talks to the store alone.
      const b = await as('alice', a, ['backups', 'check', '--read-data-subset', 'auto']);
      expect(b.code).toBe(1);
      expect(b.stderr).toContain(`the store's host lab1 (${`[${lab1.address}]:${lab1.port}`}) did not offer its pinned key ${lab2.fingerprint}`);
    } finally {
      pgAdmin(`UPDATE opsdeck.hosts SET host_key = '${lab1.fingerprint}' WHERE name = 'lab1';`, team.db);
    }
  });
});
