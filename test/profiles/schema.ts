import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2019 } from 'ajv/dist/2019.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const addFormats = require('ajv-formats') as (ajv: Ajv2019) => Ajv2019;

/** The copy kept with the tests, so validation never depends on anything outside the repository. */
export const fixtureSchemaPath = fileURLToPath(
  new URL('../fixtures/resticprofile-config-1.schema.json', import.meta.url),
);
/** The project's reference copy of the schema (shared/reference), kept with the tests as well. */
export const sharedSchemaPath = fileURLToPath(
  new URL('../fixtures/resticprofile-config-1.reference.schema.json', import.meta.url),
);

const validators = new Map<string, ValidateFunction>();

/** Compiling the 400 kB schema takes a second or two: once per distinct content. */
function validator(path: string): ValidateFunction {
  const text = readFileSync(path, 'utf8');
  let validate = validators.get(text);
  if (validate === undefined) {
    const ajv = addFormats(new Ajv2019({ allErrors: true, strict: false, code: { optimize: false } }));
    validate = ajv.compile(JSON.parse(text) as object);
    validators.set(text, validate);
  }
  return validate;
}

/** For a `beforeAll` hook: compiles the schema(s) ahead, under a timeout fit for it. */
export function compileSchemas(): void {
  validator(fixtureSchemaPath);
  validator(sharedSchemaPath);
}
export const compileTimeoutMs = 60_000;

/** The schema's complaints as `path: message` lines; empty when the configuration is valid. */
export function schemaProblems(config: unknown, path = fixtureSchemaPath): string[] {
  const validate = validator(path);
  if (validate(config)) return [];
  return (validate.errors ?? []).map(
    (error: ErrorObject) => `${error.instancePath || '/'}: ${error.message ?? ''}`,
  );
}
