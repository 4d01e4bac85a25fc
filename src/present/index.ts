// Rows and words shared by the CLI and the console: one way to say a backup's age, an RPO, a health row.
export * from './backups.js';
export * from './commands.js';
export * from './drills.js';
export * from './health.js';
export * from './watch.js';
export * from './relations.js';
