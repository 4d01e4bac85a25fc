import { createHash } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { Inventory } from '../../inventory/index.js';
import { addInstance, asLabUser, cli, homeWithHosts, lab, must } from '../helpers.js';

describe('watch', () => {
  it('reports exactly what was added, changed, chmodded and deleted; --accept; opsdeck updates re-baseline', async () => {
    const home = await homeWithHosts(['lab1']);
    const i = await addInstance(home, 'lab1', 'watch-dev', 'dev');
    await must(cli(home, ['instance', 'set', 'watch-dev', '--branch', 'main', '--hook', 'migrate=bin/migrate']));
    const weird = 'lib/we ird;$(x).php';
    asLabUser('sh', ['-c', 'cd "$1" && mkdir -p cache lib && echo a > lib/a.php && echo b > lib/b.php && echo c > "$2" && echo tmp > cache/x', 'sh', i.path, weird]);

    const first = await cli(home, ['watch', 'watch-dev', '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ baselined: true });
    expect((await cli(home, ['watch', 'watch-dev'])).code).toBe(0);

    // An intruder: a new file, a changed one, a chmod, a deletion; and noise in an excluded cache.
    asLabUser('sh', ['-c', 'cd "$1" && echo "<?php evil();" > lib/shell.php && echo tampered >> lib/a.php && chmod 777 lib/b.php && rm "$2" && echo noise > cache/y', 'sh', i.path, weird]);
    const r = await cli(home, ['watch', 'watch-dev', '--json']);
    expect(r.code).toBe(1);
    const rep = JSON.parse(r.stdout);
    expect(rep.added).toEqual(['lib/shell.php']);
    expect(rep.removed).toEqual([weird]);
    expect(rep.changed).toEqual([
      { path: 'lib/a.php', what: ['content'] },
      { path: 'lib/b.php', what: ['mode 644 -> 777'] },
    ]);
    const text = (await cli(home, ['watch', 'watch-dev'])).stdout;
    expect(text).toMatch(/1 added, 2 changed, 1 removed/);
    expect(text).toContain('+ lib/shell.php');
    // The health panels and health show what the last check found.
    const h = JSON.parse((await cli(home, ['health', 'watch-dev', '--json'])).stdout).instances[0];
    expect(h.watch).toMatchObject({ changes: 4, checkedAt: expect.any(String) });
    expect(h.reasons).toContain('watch: 4 files differ from the baseline');

    await must(cli(home, ['watch', 'watch-dev', '--accept']));
    expect((await cli(home, ['watch', 'watch-dev'])).code).toBe(0);
    expect(JSON.parse((await cli(home, ['health', 'watch-dev', '--json'])).stdout).instances[0].watch.changes).toBe(0);

    // opsdeck's own change is not an intrusion.
    await must(cli(home, ['update', 'watch-dev', '--yes']));
    const after = await cli(home, ['watch', 'watch-dev', '--json']);
    expect(after.code, after.stdout).toBe(0);
    expect(JSON.parse(after.stdout)).toMatchObject({ added: [], removed: [], changed: [] });
  });

  it('a baseline an older opsdeck recorded (its entries as JSON) is compared exactly, and keeps its date once stored anew', async () => {
    const home = await homeWithHosts(['lab1']);
    const path = join(lab().hosts[0].root, 'watch-legacy');
    asLabUser('sh', ['-c', 'rm -rf "$1" && mkdir -p "$1/lib" && echo a > "$1/lib/a.php" && echo b > "$1/lib/b.php"', 'sh', path]);
    await must(cli(home, ['instance', 'add', 'watch-legacy', '--host', 'lab1', '--path', path, '--env', 'dev']));
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const entry = (p: string, sum = '') => {
      const st = lstatSync(join(path, p));
      return [p, { type: st.isDirectory() ? 'd' : 'f', mode: (st.mode & 0o7777).toString(8), size: st.isDirectory() ? 0 : st.size, sum }];
    };
    // As the older opsdeck stored it, when lib/b.php held another text.
    const inv = new Inventory(home);
    inv.setWatchBaseline('watch-legacy', gzipSync(JSON.stringify([entry('lib'), entry('lib/a.php', sha('a\n')), entry('lib/b.php', sha('old\n'))])), '2026-01-01T00:00:00.000Z');
    inv.close();
    const r = await cli(home, ['watch', 'watch-legacy', '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ baselineAt: '2026-01-01T00:00:00.000Z', added: [], removed: [], changed: [{ path: 'lib/b.php', what: ['content'] }] });

    // Put back: no changes since that same date, from the old form and then from the new one.
    asLabUser('sh', ['-c', 'echo old > "$1/lib/b.php"', 'sh', path]);
    for (let run = 0; run < 2; run++) {
      const ok = await cli(home, ['watch', 'watch-legacy']);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toContain('watch watch-legacy: no changes since 2026-01-01T00:00:00.000Z (2 files)');
    }
    // And a change after that is found against it.
    const mode = (lstatSync(join(path, 'lib/a.php')).mode & 0o7777).toString(8);
    asLabUser('sh', ['-c', 'chmod 600 "$1/lib/a.php"', 'sh', path]);
    const again = JSON.parse((await cli(home, ['watch', 'watch-legacy', '--json'])).stdout);
    expect(again).toMatchObject({ baselineAt: '2026-01-01T00:00:00.000Z', changed: [{ path: 'lib/a.php', what: [`mode ${mode} -> 600`] }] });
  });
});
