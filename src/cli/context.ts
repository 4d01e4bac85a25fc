import { Inventory } from '../../inventory/index.js';
import { resolveHome } from '../../inventory/home.js';
import type { Deps } from '../actions/deps.js';
import { Engine } from '../engine/engine.js';
import { SshPool } from '../remote/ssh.js';
import { Store } from '../store/restic.js';
import { loadSettings } from './settings.js';

export interface GlobalOpts {
  home?: string;
  yes?: boolean;
  json?: boolean;
  dryRun?: boolean;
}

export interface App extends Deps {
  home: string;
  engine: Engine;
  close(): Promise<void>;
}

/** Opens the inventory, the SSH pool, the store and the engine for one process. */
export function openApp(home?: string): App {
  const dir = resolveHome(home);
  const inv = new Inventory(dir);
  const settings = loadSettings(dir);
  const ssh = new SshPool(inv, { connectTimeoutMs: settings.connectTimeoutMs });
  const store = new Store(dir, settings.storeRepository || process.env.OPSDECK_STORE);
  const engine = new Engine(inv);
  return {
    home: dir,
    inv,
    ssh,
    store,
    engine,
    close: async () => {
      await ssh.closeAll();
      inv.close();
    },
  };
}
