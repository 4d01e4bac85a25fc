import type { DrillReport } from '../../inventory/index.js';

export { rpoWords, rtoWords } from '../core/format.js';
import { rpoWords, rtoWords } from '../core/format.js';

export const DRILL_HEADERS = ['DRILL', 'SOURCE', 'TARGET', 'RESULT', 'RTO', 'RPO', 'REPORT'];

export const drillResultWord = (d: Pick<DrillReport, 'ok'>) => (d.ok ? 'passed' : 'FAILED');

export function drillCells(d: DrillReport): string[] {
  return [d.id, d.source, d.target, drillResultWord(d), rtoWords(d.rtoSeconds), rpoWords(d.rpoSeconds), d.file];
}

/** A drill that passed, in the words the CLI prints. */
export function drillPassedWords(r: DrillReport): string {
  return `drill passed: ${r.source} restored onto ${r.target} in ${rtoWords(r.rtoSeconds)} (RTO); the data was ${rpoWords(r.rpoSeconds)} old (RPO)\nreport: ${r.file}`;
}
