import { startLab } from '../fixtures/lab.js';

// One lab for the whole run; it is idempotent, so a lab already up (npm run lab) is reused.
export default async function setup() {
  await startLab();
}
