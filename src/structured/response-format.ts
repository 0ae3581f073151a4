/**
 * `response_format` as OpenAI spells it, plus two grammar formats of ours, validated into a GrammarSpec that
 * the grammar engine compiles. Requests are untrusted JSON: only own fields are read, and every error names
 * the field at fault.
 */
import { InvalidRequestError } from '../chat/messages';
import { isJsonObject, ownField } from '../util/json';

export type ResponseFormat =
  | { type: 'text' }
  /** Any JSON object. */
  | { type: 'json_object' }
  /** JSON that validates against `schema` (always enforced, whatever `strict` says). */
  | { type: 'json_schema'; json_schema: { name: string; schema?: Record<string, unknown> | boolean; strict?: boolean | null; description?: string } }
  /** Text in the language of an xgrammar EBNF grammar (GBNF-like: `root ::= ...`, character classes, `* + ? {m,n}`). */
  | { type: 'grammar'; grammar: string }
  /** Text matching a regular expression (ECMAScript-like syntax, whole-output match). */
  | { type: 'regex'; regex: string };

/** What the grammar engine compiles: each kind has one text form, which is also its cache key. */
export type GrammarSpec =
  | { kind: 'json_schema'; schema: string }
  /** JSON of `schema` (one line, as json_schema) between two fixed texts: a forced tool call. */
  | { kind: 'tagged_json'; begin: string; schema: string; end: string }
  | { kind: 'ebnf'; grammar: string }
  | { kind: 'structural_tag'; tag: string };

/** A grammar the output must follow, and the request field it came from (for errors). */
export interface ConstrainedOutput {
  spec: GrammarSpec;
  param: string;
}

/** Longest schema or grammar text accepted: compiling is superlinear in it, and no real format is near this. */
export const MAX_GRAMMAR_CHARS = 200_000;

const PARAM = 'response_format';

function text(value: unknown, param: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidRequestError(`${param} must be a non-empty string`, param);
  if (value.length > MAX_GRAMMAR_CHARS) throw new InvalidRequestError(`${param} is longer than ${MAX_GRAMMAR_CHARS} characters`, param);
  return value;
}

/**
 * Integer ranges up to this many values are spelled as an enum (see enumerateIntegerRanges). xgrammar 0.1.27
 * merges enums lossily too: a partial first or last decade is widened (an enum of 819..868 admits 810..818,
 * one of 259..465 admits 250), negative ones included, but far less often than its range rule errs, and
 * ranges of whole non-negative decades come out exact. Larger ranges are left to the range rule.
 */
export const MAX_ENUMERATED_RANGE = 100;
/** Deepest nesting of subschemas walked; deeper schemas are refused rather than recursed into. */
const MAX_SCHEMA_DEPTH = 64;

const SUBSCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'];
const SUBSCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'];
const SUBSCHEMAS = ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames'];

/**
 * Rewrites every bounded integer range of at most MAX_ENUMERATED_RANGE values as an enum of its values.
 * xgrammar 0.1.27 turns ranges into digit patterns that are often wrong ({minimum: 103, maximum: 131} admits
 * 100..139), while a short enum of integer literals is exact. Returns a new object; the input is not changed.
 */
export function enumerateIntegerRanges(schema: unknown, param: string, depth = 0): unknown {
  if (depth > MAX_SCHEMA_DEPTH) throw new InvalidRequestError(`${param} nests deeper than ${MAX_SCHEMA_DEPTH} levels`, param);
  if (!isJsonObject(schema)) return schema;
  const out: Record<string, unknown> = { ...schema };
  const walk = (value: unknown) => enumerateIntegerRanges(value, param, depth + 1);
  for (const key of SUBSCHEMA_MAPS) {
    const map = ownField(schema, key);
    if (isJsonObject(map)) out[key] = Object.fromEntries(Object.keys(map).map((k) => [k, walk(ownField(map, k))]));
  }
  for (const key of SUBSCHEMA_LISTS) {
    const list = ownField(schema, key);
    if (Array.isArray(list)) out[key] = list.map(walk);
  }
  for (const key of SUBSCHEMAS) if (ownField(schema, key) !== undefined) out[key] = walk(ownField(schema, key));

  if (ownField(schema, 'type') !== 'integer') return out;
  const bound = (key: string): number | undefined => {
    const v = ownField(schema, key);
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  };
  const exclusiveMin = bound('exclusiveMinimum');
  const exclusiveMax = bound('exclusiveMaximum');
  const lows = [bound('minimum'), exclusiveMin === undefined ? undefined : Math.floor(exclusiveMin) + 1].filter((v) => v !== undefined);
  const highs = [bound('maximum'), exclusiveMax === undefined ? undefined : Math.ceil(exclusiveMax) - 1].filter((v) => v !== undefined);
  if (lows.length === 0 || highs.length === 0) return out;
  const lo = Math.ceil(Math.max(...lows));
  const hi = Math.floor(Math.min(...highs));
  if (hi - lo + 1 > MAX_ENUMERATED_RANGE || hi < lo) return out;
  const step = bound('multipleOf');
  const values: number[] = [];
  for (let v = lo; v <= hi; v++) if (step === undefined || Number.isInteger(v / step)) values.push(v);
  for (const key of ['type', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf']) delete out[key];
  out.enum = values;
  return out;
}

/** A JSON schema as compact JSON text, checked for size and with its integer ranges made exact; `true` (anything) becomes `{}`. */
export function schemaText(schema: unknown, param: string): string {
  if (schema === true) return '{}';
  if (!isJsonObject(schema)) throw new InvalidRequestError(`${param} must be a JSON schema object`, param);
  text(JSON.stringify(schema), param);
  return JSON.stringify(enumerateIntegerRanges(schema, param));
}

/** The grammar a response_format asks for; null for `text` or an absent format. */
export function parseResponseFormat(value: unknown): GrammarSpec | null {
  if (value === undefined || value === null) return null;
  if (!isJsonObject(value)) throw new InvalidRequestError('response_format must be an object with a type', PARAM);
  const type = ownField(value, 'type');
  switch (type) {
    case 'text':
      return null;
    case 'json_object':
      return { kind: 'json_schema', schema: '{"type":"object"}' };
    case 'json_schema': {
      const spec = ownField(value, 'json_schema');
      const param = `${PARAM}.json_schema`;
      if (!isJsonObject(spec)) throw new InvalidRequestError(`${param} must be an object with a name and a schema`, param);
      const name = ownField(spec, 'name');
      if (typeof name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
        throw new InvalidRequestError(`${param}.name must be 1 to 64 letters, digits, underscores or dashes`, `${param}.name`);
      }
      const schema = ownField(spec, 'schema');
      return { kind: 'json_schema', schema: schema === undefined ? '{}' : schemaText(schema, `${param}.schema`) };
    }
    case 'grammar':
      return { kind: 'ebnf', grammar: text(ownField(value, 'grammar'), `${PARAM}.grammar`) };
    case 'regex': {
      const pattern = text(ownField(value, 'regex'), `${PARAM}.regex`);
      return { kind: 'structural_tag', tag: JSON.stringify({ type: 'structural_tag', format: { type: 'regex', pattern } }) };
    }
    default:
      throw new InvalidRequestError(
        `response_format.type must be "text", "json_object", "json_schema", "grammar" or "regex", got ${JSON.stringify(type) ?? String(type)}`,
        `${PARAM}.type`,
      );
  }
}
