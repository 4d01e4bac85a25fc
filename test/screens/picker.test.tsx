import { render } from 'ink-testing-library';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openApp, type App as OpsApp } from '../../src/app/app.js';
import { App } from '../../screens/App.js';
import { UiModel } from '../../screens/model.js';
import { tick, until } from './frames.js';
import { addInstance, cli, homeWithHosts, must } from '../helpers.js';

// Colours on, before Ink loads: a dimmed row is only told apart from the others by its escape code.
vi.hoisted(() => {
  process.env.FORCE_COLOR = '1';
});

const DIM = '\x1b[2m';
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

describe("the drill's scratch picker", () => {
  let app: OpsApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('lists protected instances dimmed with the reason, after those it may use, and Enter does not pick them', async () => {
    const home = await homeWithHosts(['lab1', 'lab2']);
    await addInstance(home, 'lab1', 'pk-prod', 'prod');
    await addInstance(home, 'lab2', 'pk-live', 'prod');
    await addInstance(home, 'lab2', 'pk-scratch', 'dev');
    await must(cli(home, ['backup', 'pk-prod']));
    app = openApp(home);
    const ui = render(<App model={new UiModel(app)} home="instances" />);
    const frame = () => ui.lastFrame() ?? '';
    await until(() => plain(frame()), 'pk-prod');
    ui.stdin.write('/');
    await tick();
    ui.stdin.write('pk-prod');
    await until(() => plain(frame()), 'filter "pk-prod"');
    ui.stdin.write('\r');
    await tick();
    ui.stdin.write('D');
    await until(() => plain(frame()), 'Step 1 of 3: pick a backup');
    ui.stdin.write('\r');
    const f = await until(() => plain(frame()), 'Step 2 of 3');
    expect(f).toContain('Protected instances are listed dimmed: a drill never restores onto one.');

    // The one it may restore onto first (and selected), the protected one after it, with why.
    const rows = f.split('\n').filter((l) => /^pk-(live|scratch) /.test(l));
    expect(rows.map((l) => l.split(' ')[0])).toEqual(['pk-scratch', 'pk-live']);
    expect(rows[1]).toMatch(/^pk-live\s+prod PROTECTED\s+lab2\s+yes\s+refused: protected$/);
    const raw = frame().split('\n');
    expect(raw.find((l) => plain(l).startsWith('pk-live '))).toContain(DIM);
    expect(raw.find((l) => plain(l).startsWith('pk-scratch '))).not.toContain(DIM);

    // Enter on the protected row: nothing is picked, the wizard stays on step 2.
    ui.stdin.write('j');
    await tick();
    ui.stdin.write('\r');
    await tick(300);
    expect(plain(frame())).toContain('Step 2 of 3');
    expect(plain(frame())).not.toContain('The steps:');
    // Enter on the scratch instance: step 3, the steps.
    ui.stdin.write('k');
    await tick();
    ui.stdin.write('\r');
    await until(() => plain(frame()), 'The steps:');
    ui.unmount();
  });
});
