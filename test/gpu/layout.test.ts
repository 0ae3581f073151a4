/**
 * Every kernel's TypeScript declarations agree with its WGSL: the `@group(0) @binding(i)` declarations are
 * `spec.bindings` (name and access), and no shader declares its own `struct Params` (it is generated from
 * `spec.uniforms`). A mismatch would otherwise show up as garbage on the GPU, not an error. Also checks on
 * the GPU that packed uniforms arrive as the generated struct reads them.
 */
import { describe, expect, it } from 'vitest';
import { KernelDispatch, runDispatches } from '../../src/gpu/dispatch';
import type { BindingKind, KernelSpec } from '../../src/gpu/pipelines';
import { createTensor, readBuffer } from '../../src/gpu/tensor';
import { defineUniforms, paramsStruct } from '../../src/gpu/uniforms';
import { matmulKernel } from '../../src/kernels/matmul/matmul';
import { testGpu } from '../gpu';

type AnySpec = KernelSpec<unknown, string>;

interface Layout {
  /** Whether the WGSL declares `struct Params` itself (it must not: the struct is generated). */
  declaresParams: boolean;
  bindings: string[];
}

/** What the TypeScript side declares, in the same notation as `shaderLayout`. */
function specLayout(spec: AnySpec): Layout {
  return {
    declaresParams: false,
    bindings: spec.bindings.map((b, i) => `@group(0) @binding(${i}) ${b.name} ${b.kind}`),
  };
}

const ACCESS: Record<string, BindingKind> = {
  uniform: 'uniform',
  storage: 'read',
  'storage, read': 'read',
  'storage, read_write': 'storage',
};

/** What the WGSL declares. Declarations the patterns cannot read (e.g. split over lines) are listed as such. */
function shaderLayout(code: string): Layout {
  const src = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const declaresParams = /\bstruct\s+Params\b/.test(src);

  const bindings: { binding: number; text: string }[] = [];
  const declared = /@group\((\d+)\)\s*@binding\((\d+)\)\s*var<([^>]*)>\s*(\w+)\s*:/g;
  for (const [, group, binding, access, name] of src.matchAll(declared)) {
    const kind = ACCESS[access.replace(/\s+/g, ' ').trim()] ?? `unknown access <${access}>`;
    bindings.push({ binding: Number(binding), text: `@group(${group}) @binding(${binding}) ${name} ${kind}` });
  }
  const unread = (src.match(/@binding\(/g)?.length ?? 0) - bindings.length;
  const list = bindings.sort((a, b) => a.binding - b.binding).map((b) => b.text);
  if (unread) list.push(`${unread} @binding declaration(s) not written as \`@group(g) @binding(i) var<...> name:\``);
  return { declaresParams, bindings: list };
}

function isKernelSpec(v: unknown): v is AnySpec {
  return typeof v === 'object' && v !== null && 'shader' in v && 'bindings' in v && 'uniforms' in v;
}

const modules = import.meta.glob<Record<string, unknown>>(['../../src/kernels/*/*.ts', '!**/*.test.ts'], { eager: true });
const specs = Object.entries(modules).flatMap(([file, exports]) =>
  Object.entries(exports)
    .filter((entry): entry is [string, AnySpec] => isKernelSpec(entry[1]))
    .map(([name, spec]) => ({ label: `${file.replace('../../src/', '')} ${name} (${spec.shader.file})`, spec })),
);

describe('kernel specs match their WGSL', () => {
  it('finds the kernel specs', () => {
    expect(specs.map((s) => s.spec.name)).toContain('matmul');
  });

  for (const { label, spec } of specs) {
    it(label, () => {
      expect(shaderLayout(spec.shader.code)).toEqual(specLayout(spec));
    });
  }

  it('the check catches each kind of mismatch', () => {
    const good = matmulKernel.shader.code;
    expect(shaderLayout(good)).toEqual(specLayout(matmulKernel as AnySpec));
    const broken = [
      `struct Params {\n  M: u32,\n}\n${good}`, // a struct of its own beside the generated one
      good.replace('var<storage, read_write> y', 'var<storage, read> y'), // wrong access
      good.replace('var<storage, read> bias', 'var<storage, read> b'), // renamed
      good.replace('@binding(3)', '@binding(5)'), // renumbered
      good.replace('@group(0) @binding(4)', '@group(1) @binding(4)'), // other group
      good.replace('@group(0) @binding(1)', '@binding(1) @group(0)'), // a form the patterns do not read
    ];
    broken.forEach((code, i) => {
      expect(code, `mutation ${i}`).not.toBe(good);
      expect(shaderLayout(code), `mutation ${i}`).not.toEqual(specLayout(matmulKernel as AnySpec));
    });
  });
});

describe('uniform packing', () => {
  const layout = defineUniforms({ a: 'u32', b: 'i32', c: 'f32', d: 'u32', e: 'i32' });
  const echoSpec: KernelSpec<null, 'a' | 'b' | 'c' | 'd' | 'e'> = {
    name: 'uniform echo',
    shader: {
      file: 'uniform_echo.wgsl',
      code: `
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1)
fn main() {
  out[0] = params.a;
  out[1] = bitcast<u32>(params.b);
  out[2] = bitcast<u32>(params.c);
  out[3] = params.d;
  out[4] = bitcast<u32>(params.e);
}
`,
    },
    bindings: [
      { name: 'params', kind: 'uniform' },
      { name: 'out', kind: 'storage' },
    ],
    uniforms: layout,
    constants: () => ({}),
  };

  it('generates the WGSL struct from the declaration, in order and with the same types', () => {
    expect(paramsStruct(layout)).toBe('struct Params {\n  a: u32,\n  b: i32,\n  c: f32,\n  d: u32,\n  e: i32,\n}\n');
  });

  it('lays fields out 4 bytes apart and rounds the size up to 16', () => {
    expect(layout.fields.map((f) => f.offset)).toEqual([0, 4, 8, 12, 16]);
    expect(layout.size).toBe(32);
    expect(defineUniforms({ x: 'f32' }).size).toBe(16);
    expect(shaderLayout(echoSpec.shader.code)).toEqual(specLayout(echoSpec as AnySpec));
  });

  it('round-trips mixed u32/i32/f32 fields through the GPU, including updates with set()', async () => {
    const gpu = await testGpu();
    const out = await createTensor(gpu, 'echo out', 'u32', [5]);
    const first = { a: 0xffffffff, b: -0x80000000, c: -1.5e-20, d: 7, e: 0x7fffffff };
    const echo = await KernelDispatch.create(gpu, echoSpec, null, first, { out: out.buffer }, () => 1);

    const readBack = async () => {
      runDispatches(gpu, [echo]);
      const bytes = await readBuffer(gpu, out.buffer);
      return { u32: new Uint32Array(bytes), i32: new Int32Array(bytes), f32: new Float32Array(bytes) };
    };
    let got = await readBack();
    expect([got.u32[0], got.i32[1], got.f32[2], got.u32[3], got.i32[4]]).toEqual([
      0xffffffff,
      -0x80000000,
      Math.fround(-1.5e-20),
      7,
      0x7fffffff,
    ]);
    expect(got.u32).toEqual(new Uint32Array(layout.pack(first, new ArrayBuffer(layout.size)), 0, 5));

    echo.set({ b: -1, c: 3.25 });
    got = await readBack();
    expect([got.u32[0], got.i32[1], got.f32[2], got.u32[3], got.i32[4]]).toEqual([0xffffffff, -1, 3.25, 7, 0x7fffffff]);
    out.buffer.destroy();
  });

  it('rejects values the field type cannot hold', () => {
    const ok = { a: 1, b: -1, c: 0.5, d: 0, e: 0 };
    const buffer = new ArrayBuffer(layout.size);
    expect(() => layout.pack(ok, buffer)).not.toThrow();
    for (const bad of [{ a: -1 }, { a: 2 ** 32 }, { a: 1.5 }, { d: Infinity }, { b: 2 ** 31 }, { e: -(2 ** 31) - 1 }, { b: 0.5 }, { c: Infinity }, { c: 1e39 }]) {
      expect(() => layout.pack({ ...ok, ...bad }, buffer), JSON.stringify(bad)).toThrow(RangeError);
    }
    for (const bad of [{ c: NaN }, { a: NaN }, { b: NaN }, { c: undefined }, { a: '3' }]) {
      expect(() => layout.pack({ ...ok, ...bad } as unknown as typeof ok, buffer), String(Object.values(bad))).toThrow(TypeError);
    }
  });
});
