/**
 * Uniform parameters, declared once in TypeScript: the WGSL `struct Params` of each kernel is generated
 * from the declaration (`paramsStruct`) and put before the shader, and values are packed to match it.
 * Every field is a 4-byte scalar, so field i sits at byte 4·i and the struct size rounds up to 16.
 */
export type UniformType = 'u32' | 'i32' | 'f32';

export interface UniformLayout<F extends string> {
  readonly fields: readonly { name: F; type: UniformType; offset: number }[];
  /** Bytes, a multiple of 16 as uniform buffers require. */
  readonly size: number;
  /** Packs `values` into `into` (reused across calls, so per-token updates allocate nothing). */
  pack(values: Readonly<Record<F, number>>, into: ArrayBuffer): ArrayBuffer;
}

/** The WGSL `struct Params` a kernel's shader reads as `params`, generated from its declaration. */
export function paramsStruct(layout: UniformLayout<string>): string {
  return `struct Params {\n${layout.fields.map((f) => `  ${f.name}: ${f.type},\n`).join('')}}\n`;
}

export function defineUniforms<F extends string>(fields: Readonly<Record<F, UniformType>>): UniformLayout<F> {
  const list = (Object.entries(fields) as [F, UniformType][]).map(([name, type], i) => ({
    name,
    type,
    offset: 4 * i,
  }));
  const size = Math.max(16, Math.ceil((4 * list.length) / 16) * 16);
  return {
    fields: list,
    size,
    pack(values, into) {
      const view = new DataView(into);
      for (const { name, type, offset } of list) {
        const v = values[name];
        if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`uniform ${name} is not a number: ${v}`);
        if (type === 'f32') {
          if (!Number.isFinite(Math.fround(v))) throw new RangeError(`uniform ${name}=${v} is not a finite f32`);
          view.setFloat32(offset, v, true);
        }
        else if (type === 'u32') view.setUint32(offset, checkInt(name, v, 0, 0xffffffff), true);
        else view.setInt32(offset, checkInt(name, v, -0x80000000, 0x7fffffff), true);
      }
      return into;
    },
  };
}

function checkInt(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`uniform ${name}=${v} is out of range`);
  return v;
}
