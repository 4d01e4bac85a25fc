import { afterAll, describe, expect, it } from 'vitest';
import { freezeHost, startHost, stopHost, thawHost } from '../../fixtures/lab.js';
import { openApp } from '../../src/app/app.js';
import { Sampler } from '../../src/health/sampler.js';
import { addInstance, cli, homeWithHosts, lab, must, until } from '../helpers.js';

describe('live health sampler', () => {
  afterAll(async () => {
    thawHost('lab3');
    await startHost(lab().hosts[2]);
  });

  it('keeps probing the other hosts while one is down or hangs, marks it red with the reason, and sees it recover', async () => {
    const home = await homeWithHosts(['lab1', 'lab3']);
    await addInstance(home, 'lab1', 's-one', 'dev');
    await addInstance(home, 'lab3', 's-three', 'dev');
    await must(cli(home, ['backup', '--all']));
    const app = openApp(home);
    const sampler = new Sampler(app, { intervalMs: 400, timeoutMs: 2500 });
    const snap = () => sampler.getSnapshot();
    const host = (n: string) => snap().hosts.get(n);
    const inst = (n: string) => snap().instances.get(n);
    try {
      sampler.setScope(app.inv.listInstances());
      sampler.start();

      // Real values from every probe, over one SSH connection per host however many rounds run.
      await until(
        'every probe answered twice',
        () => ['lab1', 'lab3'].every((h) => (host(h)?.history.load?.length ?? 0) >= 2) && ['s-one', 's-three'].every((i) => (inst(i)?.history.http?.length ?? 0) >= 2),
      );
      for (const h of ['lab1', 'lab3']) {
        const s = host(h)!.sample!;
        expect(s).toMatchObject({ ok: true, load: [expect.any(Number), expect.any(Number), expect.any(Number)] });
        expect(s.memTotal).toBeGreaterThan(s.memUsed!);
        expect(s.disks![0].size).toBeGreaterThan(0);
      }
      for (const i of ['s-one', 's-three']) {
        const s = inst(i)!.sample!;
        expect(s).toMatchObject({ ok: true, reasons: [], http: { status: 200 }, maintenance: false });
        expect(s.db).toMatchObject({ ok: true, connections: expect.any(Number) });
        expect(s.db!.sizeBytes).toBeGreaterThan(1_000_000);
        expect(s.backupAgeSeconds).toBeLessThan(600);
      }
      expect(app.ssh.opened).toBe(2);

      // lab3 goes down: red with the reason, while lab1 keeps being sampled.
      await stopHost('lab3');
      const lab1Before = host('lab1')!.at!;
      await until('lab3 shown down', () => host('lab3')?.sample?.ok === false);
      // Stopped between probes, or while one ran (its probe takes a quarter second of the 400 ms).
      expect(host('lab3')!.sample!.reason).toMatch(/cannot connect to host lab3|connection to host lab3 was lost while a command ran/);
      await until('s-three shown down', () => inst('s-three')?.sample?.reasons[0]?.startsWith('host lab3 down') ?? false);
      await until('lab1 sampled again', () => host('lab1')!.at! > lab1Before);
      expect(host('lab1')!.sample!.ok).toBe(true);

      await startHost(lab().hosts[2]);
      await until('lab3 back up', () => host('lab3')?.sample?.ok === true);
      await until('s-three back to ok', () => inst('s-three')?.sample?.ok === true);

      // lab3 hangs (sshd frozen): its row goes stale, then red when the probe's time runs out; lab1 goes on.
      await until('lab3 probed since it came back', () => host('lab3')?.since === undefined);
      freezeHost('lab3');
      const lab3AtFreeze = host('lab3')!.at!;
      await until('lab3 marked stale while its probe hangs', () => sampler.isStale(host('lab3')));
      await until('lab3 shown down after its time limit', () => host('lab3')?.sample?.ok === false && host('lab3')!.at! > lab3AtFreeze);
      expect(host('lab3')!.sample!.reason).toMatch(/no answer within/);
      const lab1Now = host('lab1')!.at!;
      await until('lab1 still sampled while lab3 hangs', () => host('lab1')!.at! > lab1Now && host('lab1')!.sample!.ok);
      thawHost('lab3');
      await until('lab3 recovers after the hang', () => host('lab3')?.sample?.ok === true);
    } finally {
      sampler.stop();
      thawHost('lab3');
      await app.close();
    }
  });
});
