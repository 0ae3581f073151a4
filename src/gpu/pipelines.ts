/**
 * Compute pipelines, compiled once per (kernel, specialisation key) and cached per device. Each kernel
 * declares its bindings, so bind-group layouts are explicit rather than inferred from the shader.
 */
import { withErrorScopes, type Gpu } from './device';
import { GpuValidationError, LimitsExceededError, ShaderCompileError, ShapeError, type ShaderDiagnostic } from './errors';
import { paramsStruct, type UniformLayout } from './uniforms';

export type BindingKind = 'uniform' | 'read' | 'storage';

/** One named piece of WGSL; a kernel's module is its parts joined, so errors map back to the right file. */
export interface ShaderPart {
  file: string;
  code: string;
}

export interface KernelSpec<Key, F extends string> {
  name: string;
  /** The kernel's own WGSL file (`src/kernels/<op>/<file>`), which declares the bindings and reads `params`. */
  shader: ShaderPart;
  /** Binding i of group 0, in order, named as in the shader; binding 0 is always the `Params` uniform. */
  bindings: readonly { name: string; kind: BindingKind }[];
  /** The uniform fields; the shader's `struct Params` is generated from them. */
  uniforms: UniformLayout<F>;
  /** Parts that go before the shader for this key, e.g. the weight-format prelude. */
  preludes?(key: Key): ShaderPart[];
  /** `override` constants for this key. */
  constants(key: Key): Record<string, number>;
}

export interface CompiledKernel {
  name: string;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  bindings: readonly { name: string; kind: BindingKind }[];
}

const caches = new WeakMap<GPUDevice, Map<string, Promise<CompiledKernel>>>();

/** Canonical cache key: object keys sorted, so `{a,b}` and `{b,a}` hit the same pipeline. */
function cacheKey(name: string, key: unknown): string {
  return `${name}:${JSON.stringify(key, (_, v) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort()) : v,
  )}`;
}

export function getPipeline<Key, F extends string>(
  gpu: Gpu,
  spec: KernelSpec<Key, F>,
  key: Key,
): Promise<CompiledKernel> {
  let cache = caches.get(gpu.device);
  if (!cache) caches.set(gpu.device, (cache = new Map()));
  const id = cacheKey(spec.name, key);
  let compiled = cache.get(id);
  if (!compiled) {
    compiled = compile(gpu, spec, key);
    cache.set(id, compiled);
    // A failed compile must not stay cached: the next request tries again.
    compiled.catch(() => cache.delete(id));
  }
  return compiled;
}

async function compile<Key, F extends string>(gpu: Gpu, spec: KernelSpec<Key, F>, key: Key): Promise<CompiledKernel> {
  const { device } = gpu;
  const params = { file: `(struct Params of ${spec.name}, from its uniforms)`, code: paramsStruct(spec.uniforms) };
  const parts = hoistDirectives([params, ...(spec.preludes?.(key) ?? []), spec.shader]);
  const code = parts.map((p) => p.code).join('\n');
  const label = cacheKey(spec.name, key);
  return withErrorScopes(gpu, `compiling kernel ${spec.name}`, async () => {
    const module = device.createShaderModule({ label, code });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) throw new ShaderCompileError(spec.name, errors.map((m) => locate(parts, m)));

    const layout = device.createBindGroupLayout({
      label,
      entries: spec.bindings.map((b, binding) => ({
        binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: b.kind === 'uniform' ? 'uniform' : b.kind === 'read' ? 'read-only-storage' : 'storage' },
      })),
    });
    try {
      const pipeline = await device.createComputePipelineAsync({
        label,
        layout: device.createPipelineLayout({ label, bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: 'main', constants: spec.constants(key) },
      });
      return { name: spec.name, pipeline, layout, bindings: spec.bindings };
    } catch (e) {
      throw new GpuValidationError(`creating the pipeline for kernel ${spec.name}`, (e as Error).message);
    }
  });
}

const DIRECTIVE = /^\s*enable\s/;

/**
 * WGSL wants `enable` directives before any declaration, but preludes each bring their own (f16 weights,
 * subgroup reductions): move them into a first part, leaving empty lines so line numbers still map.
 */
function hoistDirectives(parts: ShaderPart[]): ShaderPart[] {
  const directives = new Set<string>();
  const body = parts.map((p) => ({
    file: p.file,
    code: p.code
      .split('\n')
      .map((line) => (DIRECTIVE.test(line) ? (directives.add(line.trim()), '') : line))
      .join('\n'),
  }));
  return directives.size ? [{ file: '(enable directives)', code: [...directives].join('\n') }, ...body] : body;
}

/** Maps a line of the joined module back to the part (file) it came from. */
function locate(parts: ShaderPart[], m: GPUCompilationMessage): ShaderDiagnostic {
  let line = m.lineNum;
  for (const part of parts) {
    const lines = part.code.split('\n').length;
    if (line <= lines) return { file: part.file, line, column: m.linePos, message: m.message };
    line -= lines;
  }
  return { file: parts.at(-1)?.file ?? '?', line: m.lineNum, column: m.linePos, message: m.message };
}

export type BindingResource = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

/** Builds a bind group by binding name, checking each binding against the device's size limits. */
export function createBindGroup(
  gpu: Gpu,
  kernel: CompiledKernel,
  resources: Readonly<Record<string, BindingResource>>,
): GPUBindGroup {
  const { limits } = gpu.device;
  const entries = kernel.bindings.map((b, binding) => {
    const r = resources[b.name];
    if (!r) throw new ShapeError(kernel.name, `no buffer given for binding "${b.name}"`);
    const resource = 'buffer' in r ? r : { buffer: r };
    const size = resource.size ?? resource.buffer.size - (resource.offset ?? 0);
    const max = b.kind === 'uniform' ? limits.maxUniformBufferBindingSize : limits.maxStorageBufferBindingSize;
    if (size > max) {
      const limitName = b.kind === 'uniform' ? 'maxUniformBufferBindingSize' : 'maxStorageBufferBindingSize';
      throw new LimitsExceededError(`${kernel.name} binding "${b.name}"`, size, max, limitName);
    }
    return { binding, resource };
  });
  return gpu.device.createBindGroup({ label: kernel.name, layout: kernel.layout, entries });
}
