import { config } from 'zod/mini';
import { en } from 'zod/locales';

/*
 * zod/mini, the tree-shakable build of zod: import it as `import * as z from '…/schema.js'` (a
 * namespace import, so the bundle keeps only what is used; `import { z }` would pull in all of
 * zod). zod/mini loads no locale, and every issue would read "Invalid input"; users read these
 * messages in config and state-file errors, so they come from zod's English locale, as with zod.
 */
config(en());

export * from 'zod/mini';
