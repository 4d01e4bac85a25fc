import { Inventory } from '../../inventory/index.js';
import { resolveHome } from '../../inventory/home.js';
import type { Deps } from '../deps/deps.js';
import { Engine } from '../engine/engine.js';
import { SshPool } from '../remote/ssh.js';
import { openStore } from '../store/open.js';
import { LOCK_WAIT_INTERACTIVE_MS } from '../store/restic.js';
import { parseDuration } from '../actions/store.js';
import { loadSettings, type Settings } from './settings.js';
import { backupPlan } from '../actions/backup.js';
import { restorePlan } from '../actions/restore.js';
import { exportPlan, verifyPlan } from '../actions/verify.js';
import { maintenancePlan, updatePlan } from '../actions/update.js';
import { clonePlan } from '../actions/clone.js';
import { gitRemoteTags } from '../actions/app.js';
import { comparePlan } from '../actions/compare.js';
import { drillPlan } from '../actions/drill.js';
import { watchPlan } from '../actions/watch.js';
import { refreshPlan } from '../actions/refresh.js';
import { promotePlan } from '../actions/promote.js';
import { mirrorSyncPlan } from '../actions/mirror.js';
import { rollbackPlan } from '../actions/rollback.js';

export interface GlobalOpts {
  home?: string;
  yes?: boolean;
  json?: boolean;
  dryRun?: boolean;
  /** A team inventory (postgres://ROLE@HOST:PORT/DB) and its password file; read by useInventoryFlags before openApp. */
  inventory?: string;
  inventoryPasswordFile?: string;
  verbose?: boolean;
  /** Why (a change request on a protected environment of a team inventory). */
  why?: string;
}

export interface App extends Deps {
  home: string;
  engine: Engine;
  settings: Settings;
  close(): Promise<void>;
}

/** Opens the inventory, the SSH pool, the store and the engine for one process. */
export function openApp(home?: string): App {
  const dir = resolveHome(home);
  const inv = new Inventory(dir);
  const settings = loadSettings(dir);
  const ssh = new SshPool(inv, { connectTimeoutMs: settings.connectTimeoutMs });
  // Someone at the console waits for another restic's lock a minute at most; unattended runs longer (makeAct).
  const lockWaitMs = Math.min(parseDuration(settings.storeLockWait), LOCK_WAIT_INTERACTIVE_MS);
  const store = openStore(dir, inv, { repository: settings.storeRepository || process.env.OPSDECK_STORE, copies: settings.storeCopies, lockWaitMs, copyRetention: settings.storeCopyRetention });
  const engine = new Engine(inv);
  return {
    home: dir,
    inv,
    ssh,
    store,
    engine,
    settings,
    healthWaitMs: parseDuration(settings.healthWait),
    close: async () => {
      await store.settle();
      await ssh.closeAll();
      inv.close();
    },
  };
}

/** Every operation's plan builder, for the CLI and the screens alike. */
export const operations = {
  backup: backupPlan,
  restore: restorePlan,
  verify: verifyPlan,
  export: exportPlan,
  update: updatePlan,
  maintenance: maintenancePlan,
  clone: clonePlan,
  tags: gitRemoteTags,
  compare: comparePlan,
  drill: drillPlan,
  watch: watchPlan,
  refresh: refreshPlan,
  promote: promotePlan,
  mirrorSync: mirrorSyncPlan,
  rollback: rollbackPlan,
};
