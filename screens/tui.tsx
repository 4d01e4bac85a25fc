import { render } from 'ink';
import { inventoryLogin } from '../src/app/inventory-login.js';
import { openApp } from '../src/app/app.js';
import { errorMessage } from '../src/core/errors.js';
import { App } from './App.js';
import { UiModel } from './model.js';
import { Sampler } from '../src/health/sampler.js';

/** Opens the full-screen console on the alternate screen buffer; returns the exit code. */
export async function openTui(o: { home?: string }): Promise<number> {
  let app;
  try {
    // A team inventory's password is asked here, on the terminal, before Ink takes it.
    await inventoryLogin(o.home);
    // The prompt pauses stdin (so a CLI command can exit); Ink's reader gets nothing from a paused stream.
    if (process.stdin.isPaused()) process.stdin.resume();
    app = openApp(o.home);
  } catch (err) {
    process.stderr.write(`opsdeck: ${errorMessage(err)}\n`);
    return 2;
  }
  // Probes run here, outside React; the dashboard subscribes to what they find.
  const sampler = new Sampler(app, { intervalMs: app.settings.refreshMs, timeoutMs: 10_000 });
  const model = new UiModel(app, { sampler });
  sampler.start();
  process.stdout.write('\x1b[?1049h\x1b[H');
  const restore = () => process.stdout.write('\x1b[?1049l');
  process.once('exit', restore);
  try {
    // ctrl-c is ours: during a run it cancels (and rolls back) instead of killing the process.
    const ink = render(<App model={model} />, { exitOnCtrlC: false, patchConsole: true });
    await ink.waitUntilExit();
  } finally {
    // Paused again, as before the prompt resumed it: a reading stdin keeps the process alive.
    process.stdin.pause();
    sampler.stop();
    model.stopLive();
    restore();
    process.off('exit', restore);
    await app.close();
  }
  return 0;
}
