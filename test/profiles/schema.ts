import { existsSync, readFileSync } from 'node:fs';
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
/** The reference copy beside the repository (`<repo>/../shared/reference`), present in CI. */
export const sharedSchemaPath = fileURLToPath(
  new URL('../../../shared/reference/resticprofile-config-1.schema.json', import.meta.url),
);
export const sharedSchemaPresent = existsSync(sharedSchemaPath);

const validators = new Map<string, ValidateFunction>();

function validator(path: string): ValidateFunction {
  let validate = validators.get(path);
  if (validate === undefined) {
    const ajv = addFormats(new Ajv2019({ allErrors: true, strict: false }));
    validate = ajv.compile(JSON.parse(readFileSync(path, 'utf8')) as object);
    validators.set(path, validate);
  }
  return validate;
}

/** The schema's complaints as `path: message` lines; empty when the configuration is valid. */
export function schemaProblems(config: unknown, path = fixtureSchemaPath): string[] {
  const validate = validator(path);
  if (validate(config)) return [];
  return (validate.errors ?? []).map(
    (error: ErrorObject) => `${error.instancePath || '/'}: ${error.message ?? ''}`,
  );
}
