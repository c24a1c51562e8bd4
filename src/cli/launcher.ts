import { fileURLToPath } from 'node:url';
import { runBundle } from './codecache.js';

// dist/unifi-backup.js: runs the tool's bundle beside it (dist/unifi-backup.cjs, from bin.ts)
// through V8's code cache. It loads nothing but node's own modules and the verb guess.
runBundle(fileURLToPath(new URL('./unifi-backup.cjs', import.meta.url)));
