import path from 'node:path';
import { runBundle } from './codecache.js';

// dist/unifi-backup.js: runs the tool's bundle beside it (dist/unifi-backup.cjs, from bin.ts)
// through V8's code cache. It loads nothing but node's own modules and the verb guess, and is
// CommonJS itself (dist/package.json): node starts an ES module entry about 5 ms later.
runBundle(path.join(__dirname, 'unifi-backup.cjs'));
