import type { DrillReport } from '../actions/drill.js';

/** Recovery point: how old the restored data was, in hours (one decimal). */
export function rpoWords(rpoSeconds: number): string {
  return `${(rpoSeconds / 3600).toFixed(1)} h`;
}

/** Recovery time in seconds; `none` (default '-') when the drill restored nothing. */
export function rtoWords(rtoSeconds: number, none = '-'): string {
  return rtoSeconds >= 0 ? `${rtoSeconds} s` : none;
}

export const DRILL_HEADERS = ['DRILL', 'SOURCE', 'TARGET', 'RESULT', 'RTO', 'RPO', 'REPORT'];

export const drillResultWord = (d: Pick<DrillReport, 'ok'>) => (d.ok ? 'passed' : 'FAILED');

export function drillCells(d: DrillReport): string[] {
  return [d.id, d.source, d.target, drillResultWord(d), rtoWords(d.rtoSeconds), rpoWords(d.rpoSeconds), d.file];
}

/** A drill that passed, in the words the CLI prints. */
export function drillPassedWords(r: DrillReport): string {
  return `drill passed: ${r.source} restored onto ${r.target} in ${rtoWords(r.rtoSeconds)} (RTO); the data was ${rpoWords(r.rpoSeconds)} old (RPO)\nreport: ${r.file}`;
}
