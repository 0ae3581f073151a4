/** Reading untrusted JSON (configs, request bodies, stored records) without trusting its shape. */

export type JsonObject = Record<string, unknown>;

/** A plain object (not null, not an array). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Own properties only: an inherited or prototype-polluted key reads as absent. */
export function ownField(obj: JsonObject, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}
