/**
 * A prepared kernel launch: pipeline, uniform buffer and bind group are made once (at load); per token only
 * `set()` (a `writeBuffer` of the changed parameters) and `encode()` run, and neither allocates GPU objects.
 */
import type { Gpu } from './device';
import { LimitsExceededError } from './errors';
import { createBindGroup, getPipeline, type BindingResource, type KernelSpec } from './pipelines';
import { createBuffer } from './tensor';

/**
 * Workgroups for the current parameters: a count (numbered linearly, folded into 2-D when over the
 * per-dimension limit) or an explicit [x, y, z] grid for kernels that index tiles in 2-D.
 */
export type GridFn<F extends string> = (params: Readonly<Record<F, number>>) => number | [number, number, number];

export class KernelDispatch<F extends string> {
  private readonly scratch: ArrayBuffer;
  private groups: [number, number, number] = [1, 1, 1];

  private constructor(
    private readonly gpu: Gpu,
    private readonly spec: KernelSpec<unknown, F>,
    private readonly pipeline: GPUComputePipeline,
    private readonly bindGroup: GPUBindGroup,
    private readonly uniformBuffer: GPUBuffer,
    private readonly params: Record<F, number>,
    private readonly grid: GridFn<F>,
  ) {
    this.scratch = new ArrayBuffer(spec.uniforms.size);
    this.set({});
  }

  static async create<Key, F extends string>(
    gpu: Gpu,
    spec: KernelSpec<Key, F>,
    key: Key,
    params: Record<F, number>,
    resources: Readonly<Record<string, BindingResource>>,
    grid: GridFn<F>,
  ): Promise<KernelDispatch<F>> {
    const kernel = await getPipeline(gpu, spec, key);
    const uniformBuffer = await createBuffer(
      gpu,
      `${spec.name} params`,
      spec.uniforms.size,
      GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    );
    const bindGroup = createBindGroup(gpu, kernel, { ...resources, params: uniformBuffer });
    return new KernelDispatch(
      gpu,
      spec as KernelSpec<unknown, F>,
      kernel.pipeline,
      bindGroup,
      uniformBuffer,
      { ...params },
      grid,
    );
  }

  get name(): string {
    return this.spec.name;
  }

  /** Updates some parameters (e.g. the position) and uploads the uniform block. */
  set(changes: Partial<Record<F, number>>): void {
    // Validate (grid function, packing) before storing, so a rejected change leaves the launch as it was.
    const next = { ...this.params, ...changes };
    const groups = toGroups(this.gpu, this.spec.name, this.grid(next));
    const packed = this.spec.uniforms.pack(next, this.scratch);
    Object.assign(this.params, changes);
    this.groups = groups;
    this.gpu.device.queue.writeBuffer(this.uniformBuffer, 0, packed);
  }

  encode(pass: GPUComputePassEncoder): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(...this.groups);
  }
}

function toGroups(gpu: Gpu, kernel: string, grid: number | [number, number, number]): [number, number, number] {
  if (typeof grid === 'number') return foldGrid(gpu, kernel, grid);
  const max = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  for (const g of grid) {
    if (g > max) throw new LimitsExceededError(`${kernel} workgroups per dimension`, g, max, 'maxComputeWorkgroupsPerDimension');
  }
  return grid;
}

/** A 16-byte buffer to bind where a kernel variant ignores an optional input (bindings are fixed). */
const placeholders = new WeakMap<GPUDevice, GPUBuffer>();
export function placeholderBuffer(gpu: Gpu): GPUBuffer {
  let buffer = placeholders.get(gpu.device);
  if (!buffer) {
    buffer = gpu.device.createBuffer({ label: 'unused binding', size: 16, usage: GPUBufferUsage.STORAGE });
    placeholders.set(gpu.device, buffer);
  }
  return buffer;
}

/**
 * Spreads `count` workgroups over x and y when x alone would exceed maxComputeWorkgroupsPerDimension
 * (65535 by default: a 151936-row vocabulary needs it). Kernels recover the linear index as
 * `wid.x + wid.y * nwg.x` and return when it is past the end.
 */
export function foldGrid(gpu: Gpu, kernel: string, count: number): [number, number, number] {
  const max = gpu.device.limits.maxComputeWorkgroupsPerDimension;
  if (count <= max) return [count, 1, 1];
  const y = Math.ceil(count / max);
  if (y > max) throw new LimitsExceededError(`${kernel} workgroup count`, count, max * max, 'maxComputeWorkgroupsPerDimension²');
  return [Math.ceil(count / y), y, 1];
}

/** Encodes the dispatches into one compute pass and submits them; for tests and one-off runs. */
export function runDispatches(gpu: Gpu, dispatches: readonly KernelDispatch<string>[]): void {
  if (gpu.lostError) throw gpu.lostError;
  const encoder = gpu.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  for (const d of dispatches) d.encode(pass);
  pass.end();
  gpu.device.queue.submit([encoder.finish()]);
}
