/**
 * The SQL of the lists the console's first frame reads (UiModel.reload: Inventory.listEnvs,
 * latestBackupTimes, listInstances, listHosts; the store's last full check). One place: the inventory
 * runs them, and the console has a team inventory read them ahead while its modules load (screens/tui.tsx).
 */
export const LIST_SQL = {
  envs: 'SELECT * FROM envs ORDER BY name',
  newestBackups: "SELECT instance, MAX(created_at) AS t FROM backups WHERE kind = 'manual' GROUP BY instance",
  instances: 'SELECT * FROM instances ORDER BY env, name',
  hosts: 'SELECT * FROM hosts ORDER BY name',
  /** The store's newest full check cycle (inventory/store-records.ts lastFullCycle; the dashboard's first frame shows it): its one parameter, the store. */
  storeFullCycle: 'SELECT full_cycle_at FROM store_checks WHERE repository = ? AND full_cycle_at IS NOT NULL ORDER BY id DESC LIMIT 1',
} as const;

/** An instance the dashboard's databases panel lists: one with a database, or with app metrics (screens/listing.ts, dashboardData). */
const HAS_DATABASE = "((db_url IS NOT NULL AND db_url <> '') OR (metrics IS NOT NULL AND metrics NOT IN ('[]', '{}')))";

/**
 * What the console's first frame shows, without reading every instance: the first `rows` instances
 * in the list's order, the first `rows` of those with a database, the counts, every host an instance
 * is on, the newest backup of the instances read. The whole lists are read right after that frame
 * (UiModel.readFirstPage, then reload). `rows` is a whole number (the terminal's height): no
 * parameters, so that a team inventory can read these ahead by their text.
 */
export function firstPageSql(rows: number) {
  const n = Math.max(1, Math.floor(rows));
  const instances = `${LIST_SQL.instances} LIMIT ${n}`;
  const databases = `SELECT * FROM instances WHERE ${HAS_DATABASE} ORDER BY env, name LIMIT ${n}`;
  return {
    envs: LIST_SQL.envs,
    counts: `SELECT (SELECT count(*) FROM instances) AS instances, (SELECT count(*) FROM instances WHERE ${HAS_DATABASE}) AS databases, (SELECT count(*) FROM hosts) AS hosts`,
    instanceHosts: 'SELECT DISTINCT host FROM instances',
    instances,
    databases,
    newestBackups: `SELECT instance, MAX(created_at) AS t FROM backups WHERE kind = 'manual' AND (instance IN (SELECT name FROM (${instances}) p) OR instance IN (SELECT name FROM (${databases}) d)) GROUP BY instance`,
  };
}

/** What the first frame reads without parameters, in UiModel.readFirstPage's order: a team console reads these ahead (screens/tui.tsx). */
export function firstPageReads(rows: number): string[] {
  const q = firstPageSql(rows);
  return [q.envs, q.counts, q.instanceHosts, q.instances, q.databases, q.newestBackups];
}
