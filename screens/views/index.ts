import type { Kind, ScreenDef } from '../screen.js';
import { changes } from './changes.js';
import { compare } from './compare.js';
import { dashboard } from './dashboard.js';
import { drill } from './drill.js';
import { drills } from './drills.js';
import { help } from './help.js';
import { host } from './host.js';
import { instance } from './instance.js';
import { instances } from './instances.js';
import { log } from './log.js';
import { run } from './run.js';
import { runs } from './runs.js';

/**
 * Every screen of the console, by kind. A new screen is a file beside these (its route, keys and
 * render) and its line here; the type makes sure no kind is left out.
 */
export const SCREENS: { [K in Kind]: ScreenDef<K> } = { dashboard, instances, instance, host, run, compare, drill, drills, runs, log, help, changes };
