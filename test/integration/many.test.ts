import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost, stopHost } from '../../fixtures/lab.js';
import { addInstance, cli, homeWithHosts, lab, must } from '../helpers.js';

describe('many instances at once', () => {
  let home: string;
  beforeAll(async () => {
    home = await homeWithHosts(['lab1', 'lab2', 'lab3']);
    await addInstance(home, 'lab1', 'm-prod-1', 'prod');
    await addInstance(home, 'lab2', 'm-prod-2', 'prod');
    await addInstance(home, 'lab1', 'm-prod-3', 'prod');
    await addInstance(home, 'lab3', 'm-prod-down', 'prod');
    await addInstance(home, 'lab2', 'm-dev', 'dev');
  });
  afterAll(async () => {
    await startHost(lab().hosts[2]);
  });

  it('backup --env prod --parallel 4 with one host down: the others succeed, the summary names the failure, exit 1', async () => {
    await stopHost('lab3');
    const r = await cli(home, ['backup', '--env', 'prod', '--parallel', '4', '--yes', '--json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/backup: 3 ok, 1 failed \(m-prod-down\)/);
    expect(r.stderr).toMatch(/m-prod-down: .*cannot connect to host lab3/);
    const out = JSON.parse(r.stdout);
    expect(out.results.map((x: any) => [x.instance, x.ok])).toEqual([
      ['m-prod-1', true],
      ['m-prod-2', true],
      ['m-prod-3', true],
      ['m-prod-down', false],
    ]);
    const backups = JSON.parse((await must(cli(home, ['backups', '--json']))).stdout)
      .map((b: any) => b.instance)
      .sort();
    expect(backups).toEqual(['m-prod-1', 'm-prod-2', 'm-prod-3']);
  });

  it('--all takes every instance; nothing named is a usage error', async () => {
    await startHost(lab().hosts[2]);
    const r = await cli(home, ['backup', '--all', '--parallel', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/backup: 5 ok, 0 failed/);
    expect((await cli(home, ['backup'])).code).toBe(2);
    expect((await cli(home, ['backup', '--env', 'nope'])).code).toBe(2);
  });

  it('update --env runs the update plan on each, asking nothing, and cron prints the jobs', async () => {
    await must(cli(home, ['instance', 'set', 'm-dev', '--branch', 'main']));
    expect((await cli(home, ['update', '--env', 'dev'])).code).toBe(2); // several at once needs --yes
    const r = await cli(home, ['update', '--env', 'dev', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/update: 1 ok, 0 failed/);
    const cron = (await must(cli(home, ['cron']))).stdout;
    // The home reaches the jobs through the OPSDECK_HOME line cron sets for them.
    expect(cron).toMatch(new RegExp(`^OPSDECK_HOME=${home}$`, 'm'));
    expect(cron).toMatch(/^15 2 \* \* \* {2}\S*opsdeck backup --all --parallel 2 --yes$/m);
    expect(cron).toMatch(/backups prune --yes$/m);
    expect(cron).toMatch(/watch --all --yes$/m);
  });
});
