import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { labSsh } from '../../fixtures/lab.js';
import { addInstance, cli, homeWithHosts, lab, must } from '../helpers.js';

/** Runs a logged line on the host it ran on, as a sysadmin would paste it into ssh: its stdout. */
function byHand(line: string, host: string): Buffer {
  const l = lab();
  const ssh = labSsh(l, join(mkdtempSync(join(tmpdir(), 'opsdeck-kh-')), 'known_hosts'));
  const h = l.hosts.find((x) => x.name === host)!;
  return execFileSync('sh', ['-c', `${ssh(h)} "$1"`, 'sh', line], { maxBuffer: 256 << 20 });
}

describe('the commands a run ran, visible and redoable by hand', () => {
  let home: string;
  let inst: Awaited<ReturnType<typeof addInstance>>;
  beforeAll(async () => {
    home = await homeWithHosts(['lab1']);
    inst = await addInstance(home, 'lab1', 'cl-dev', 'dev');
  });

  it('--verbose prints each command with where it ran and how it ended; the dump line run by hand gives the dump the backup stored', async () => {
    const r = await must(cli(home, ['backup', 'cl-dev', '--verbose', '--json']));
    const lines = r.stderr.split('\n');
    const dump = lines.find((l) => l.startsWith('lab1$ PGPASSWORD=*** pg_dump '));
    expect(dump, r.stderr).toBeDefined();
    expect(dump).toMatch(/# exit 0 · \d+\.\d s · [\d.]+ [KM]?B out$/);
    expect(
      lines.some((l) => /^store\$ RESTIC_REPOSITORY=\S+ (?:\w+=\S+ )*RESTIC_PASSWORD_FILE=\S+ .*restic backup .*# exit 0/.test(l)),
      r.stderr,
    ).toBe(true);
    // The password is nowhere in what was printed.
    expect(r.stderr).not.toContain(inst.password);

    const b = JSON.parse(r.stdout);
    const line = dump!.replace(/^lab1\$ /, '').replace(/\s+# exit .*$/, '');
    const out = byHand(line.replace('PGPASSWORD=***', `PGPASSWORD=${inst.password}`), 'lab1');
    // pg_dump (15.14 and later) opens and closes a dump with \restrict and a random key: all else is the same.
    const unkeyed = (s: string) => s.replace(/^\\(un)?restrict \S+$/gm, '\\$1restrict KEY');
    const stored = await must(cli(home, ['backups', 'export', b.id, join(home, 'export.tar')]));
    expect(stored.code).toBe(0);
    // The audit trail keeps the same lines: opsdeck runs ID --commands prints them for the past run.
    const runs = JSON.parse((await must(cli(home, ['runs', '--json', '--instance', 'cl-dev', '--limit', '1']))).stdout);
    const kept = await must(cli(home, ['runs', String(runs[0].id), '--commands']));
    expect(kept.stdout).toContain(dump!.replace(/\s+# exit .*$/, ''));
    expect(kept.stdout).not.toContain(inst.password);
    expect(unkeyed(out.toString())).toBe(unkeyed(execFileSync('tar', ['-xOf', join(home, 'export.tar'), 'db.sql']).toString()));
  });
});
