import Conf from 'conf';

export interface Settings {
  /** Where backups go: a path or any restic backend URL (default: store/ in the home). */
  storeRepository: string;
  connectTimeoutMs: number;
  /** Health panel refresh interval. */
  refreshMs: number;
}

const defaults: Settings = { storeRepository: '', connectTimeoutMs: 15000, refreshMs: 3000 };

/** Settings that are not inventory live in a conf file (settings.json) in the opsdeck home. */
export function loadSettings(home: string): Settings {
  const conf = new Conf<Settings>({ cwd: home, configName: 'settings', defaults, projectName: 'opsdeck' });
  return { ...defaults, ...conf.store };
}
