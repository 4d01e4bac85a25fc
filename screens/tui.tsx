import { inventoryPassword, inventoryUrlOf } from '../inventory/connect.js';
import { resolveHome } from '../inventory/home.js';
import { firstPageReads, LIST_SQL } from '../inventory/list-sql.js';
import { inventoryAhead, inventoryLoggedIn, loginAhead, startInventoryAhead } from '../inventory/pg-first.js';
import { inventoryLogin } from '../src/app/inventory-login.js';
import { errorMessage } from '../src/core/errors.js';
import { lineDiffStdout } from './frame-writer.js';

/** Rows the first frame reads of each list: a screenful (no panel is taller than the terminal). */
const firstRows = () => process.stdout.rows || 30;

/**
 * What draws the console (Ink, React, the screens) and what it opens, loaded after a team
 * inventory's connection has started: pg loads, logs in and reads the first frame meanwhile.
 */
async function loadConsole() {
  const [{ render }, { openApp }, { App }, { UiModel }, { Sampler }] = await Promise.all([
    import('ink'),
    import('../src/app/app.js'),
    import('./App.js'),
    import('./model.js'),
    import('../src/health/sampler.js'),
  ]);
  return { render, openApp, App, UiModel, Sampler };
}

/** Opens the full-screen console on the alternate screen buffer; returns the exit code. */
export async function openTui(o: { home?: string }): Promise<number> {
  let app;
  let ui;
  try {
    let url: string | undefined;
    try {
      url = inventoryUrlOf(resolveHome(o.home));
    } catch {
      // A settings file that cannot be read: opening the inventory below says so.
    }
    if (url) startInventoryAhead(url);
    if (url && process.env.OPSDECK_INVENTORY_PASSWORD !== undefined) {
      // A team inventory whose password is at hand logs in before the console's modules load: each
      // step of the log-in needs this thread, which loading them (one long step) would not give for
      // its whole length; the first frame's reads then run on the server while they load.
      loginAhead(inventoryPassword(), firstPageReads(firstRows()));
      await inventoryLoggedIn();
    }
    const loading = loadConsole();
    // Awaited below; until then a failure must not count as unhandled (the prompt may take a while).
    loading.catch(() => undefined);
    // A team inventory's password is asked here, on the terminal, before Ink takes it.
    await inventoryLogin(o.home);
    if (url) loginAhead(inventoryPassword(), firstPageReads(firstRows()));
    // The prompt pauses stdin (so a CLI command can exit); Ink's reader gets nothing from a paused stream.
    if (process.stdin.isPaused()) process.stdin.resume();
    ui = await loading;
    // A team inventory: logged in and its first frame read on this thread meanwhile (no worker thread
    // before the first frame); the store's last full check needs the opened store's name.
    await inventoryAhead();
    app = ui.openApp(o.home);
    await app.inv.pg?.readAhead(LIST_SQL.storeFullCycle, [app.store.repository]);
  } catch (err) {
    process.stderr.write(`opsdeck: ${errorMessage(err)}\n`);
    return 2;
  }
  const { render, App, UiModel, Sampler } = ui;
  // Probes run here, outside React; the dashboard subscribes to what they find.
  const sampler = new Sampler(app, { intervalMs: app.settings.refreshMs, timeoutMs: 10_000 });
  // The first frame shows a screenful: it is drawn from that much, and the rest is read right after it.
  const model = new UiModel(app, { sampler, firstPage: firstRows() });
  sampler.start();
  process.stdout.write('\x1b[?1049h\x1b[H');
  const restore = () => process.stdout.write('\x1b[?1049l');
  process.once('exit', restore);
  try {
    // ctrl-c is ours: during a run it cancels (and rolls back) instead of killing the process.
    // maxFps 0: each commit is drawn at once. Ink's throttle (maxFps 60) is a debounce: a key that
    // came within 17 ms of the last frame (typing, or G right after g) waited out those 17 ms for its
    // own frame. What can come in bursts (a run's events) is held to one redraw a frame by App.
    // Only the lines a frame changed are written (lineDiffStdout): ~10 KB a key on 160x50 before.
    const ink = render(<App model={model} />, { stdout: lineDiffStdout(process.stdout), exitOnCtrlC: false, patchConsole: true, maxFps: 0 });
    // Ink drew the first frame during render(); the whole inventory now, before any key is read
    // (keys wait for this turn of the event loop): every key sees every row. Then the sampler's scope.
    // A team inventory's worker thread (its connection from now on) starts at reload's first read.
    model.reload();
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
