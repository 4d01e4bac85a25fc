/**
 * The SQL of the lists the console's first frame reads (UiModel.reload: Inventory.listEnvs,
 * latestBackupTimes, listInstances, listHosts). One place: the inventory runs them, and the console
 * has a team inventory read them ahead while its modules load (screens/tui.tsx).
 */
export const LIST_SQL = {
  envs: 'SELECT * FROM envs ORDER BY name',
  newestBackups: "SELECT instance, MAX(created_at) AS t FROM backups WHERE kind = 'manual' GROUP BY instance",
  instances: 'SELECT * FROM instances ORDER BY env, name',
  hosts: 'SELECT * FROM hosts ORDER BY name',
} as const;
