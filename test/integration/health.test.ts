import { afterAll, describe, expect, it } from 'vitest';
import { startHost, stopHost } from '../../fixtures/lab.js';
import { addInstance, cli, homeWithHosts, lab, must } from '../helpers.js';

describe('health', () => {
  afterAll(async () => {
    await startHost(lab().hosts[2]);
  });

  it('reports real values for hosts and instances, and a stopped host as down with its reason, exit 1', async () => {
    const home = await homeWithHosts(['lab1', 'lab3']);
    await addInstance(home, 'lab1', 'h-one', 'dev');
    await addInstance(home, 'lab3', 'h-three', 'dev');
    await must(cli(home, ['backup', '--all']));

    const up = await cli(home, ['health', '--json']);
    expect(up.code, up.stdout).toBe(0);
    const r = JSON.parse(up.stdout);
    expect(r.hosts.map((h: any) => h.host).sort()).toEqual(['lab1', 'lab3']);
    for (const h of r.hosts) {
      expect(h.ok).toBe(true);
      expect(h.load).toHaveLength(3);
      expect(h.cpus).toBeGreaterThan(0);
      expect(h.memTotal).toBeGreaterThan(h.memUsed);
      expect(h.disks[0]).toMatchObject({ mount: expect.stringMatching(/^\//) });
      expect(h.disks[0].size).toBeGreaterThan(h.disks[0].used);
      expect(h.uptimeSeconds).toBeGreaterThan(0);
    }
    for (const i of r.instances) {
      expect(i).toMatchObject({ ok: true, maintenance: false, http: { status: 200, ok: true } });
      expect(i.backupAgeSeconds).toBeLessThan(600);
    }

    await stopHost('lab3');
    const down = await cli(home, ['health', '--json']);
    expect(down.code).toBe(1);
    const d = JSON.parse(down.stdout);
    expect(d.hosts.find((h: any) => h.host === 'lab3')).toMatchObject({ ok: false, reason: expect.stringMatching(/cannot connect to host lab3/) });
    expect(d.hosts.find((h: any) => h.host === 'lab1').ok).toBe(true);
    expect(d.instances.find((i: any) => i.instance === 'h-three')).toMatchObject({ ok: false, reasons: [expect.stringMatching(/^host lab3 down/)] });
    expect(d.instances.find((i: any) => i.instance === 'h-one').ok).toBe(true);
    const prom = await cli(home, ['health', '--prometheus']);
    expect(prom.code).toBe(1);
    expect(prom.stdout).toMatch(/^opsdeck_host_up\{host="lab3"\} 0$/m);
    expect(prom.stdout).toMatch(/^opsdeck_instance_up\{instance="h-one",env="dev"\} 1$/m);
    expect((await cli(home, ['health', 'nope'])).code).toBe(2);

    await startHost(lab().hosts[2]);
    expect((await cli(home, ['health', 'lab3'])).code).toBe(0);
  });
});
