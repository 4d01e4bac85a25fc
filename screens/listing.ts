import type { FirstPage, InstanceRow } from './model.js';

export type Panel = 'hosts' | 'instances' | 'databases';
export const PANELS: Panel[] = ['hosts', 'instances', 'databases'];

/** Whether a row passes the environment filter (e) and the text filter (/, already in lower case). */
export function matches(i: InstanceRow, env: string, filter: string): boolean {
  return (!env || i.env === env) && (!filter || i.search.includes(filter));
}

export interface DashboardData {
  hosts: string[];
  instances: InstanceRow[];
  /** The instances that have a database or app metrics. */
  databases: InstanceRow[];
  hostSet: ReadonlySet<string>;
  /** How many instances and databases there are, when `instances` and `databases` are only their first rows (the first frame). */
  counts?: { instances: number; databases: number };
}

/** What the dashboard lists under the filters: hosts of the instances shown, then instances, then databases. */
export function dashboardData(instances: InstanceRow[]): DashboardData {
  // One pass over what may be 10,000 rows: this runs on every key typed into the filter.
  const hostSet = new Set<string>();
  const databases: InstanceRow[] = [];
  for (const i of instances) {
    hostSet.add(i.host);
    if (i.dbUrl || i.metrics.length) databases.push(i);
  }
  return { hosts: [...hostSet].sort(), instances, databases, hostSet };
}

/** The dashboard's lists while only the first page is read (UiModel.readFirstPage): its first rows, the whole counts. */
export function firstPageData(instances: InstanceRow[], page: FirstPage): DashboardData {
  return { hosts: page.hosts, instances, databases: page.databaseRows, hostSet: new Set(page.hosts), counts: { instances: page.instances, databases: page.databases } };
}
