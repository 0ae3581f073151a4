/**
 * A prepared kernel launch: pipeline, uniform slot and bind group are made once (at load); per token only
 * `set()` and `encode()` run, and neither allocates GPU objects. Every launch's parameters live in shared
 * uniform pages, so a token's many `set()` calls reach the GPU as one `writeBuffer` per page, made by the
 * first `encode()` after them.
 */
import type { Gpu } from './device';
import { LimitsExceededError } from './errors';
import { createBindGroup, getPipeline, type BindingResource, type KernelSpec } from './pipelines';

/**
 * Workgroups for the current parameters: a count (numbered linearly, folded into 2-D when over the
 * per-dimension limit) or an explicit [x, y, z] grid for kernels that index tiles in 2-D.
 */
export type GridFn<F extends string> = (params: Readonly<Record<F, number>>) => number | [number, number, number];

/** Bytes of one page of uniform slots; a page is one GPU buffer (64 KiB is every device's minimum binding). */
const PAGE_BYTES = 65536;

interface UniformSlot {
  page: UniformPage;
  offset: number;
}

class UniformPage {
  readonly buffer: GPUBuffer;
  readonly mirror = new ArrayBuffer(PAGE_BYTES);
  used = 0;
  private dirtyStart = Infinity;
  private dirtyEnd = 0;

  constructor(device: GPUDevice) {
    this.buffer = device.createBuffer({ label: 'uniform page', size: PAGE_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  }

  markDirty(offset: number, size: number): void {
    this.dirtyStart = Math.min(this.dirtyStart, offset);
    this.dirtyEnd = Math.max(this.dirtyEnd, offset + size);
  }

  flush(queue: GPUQueue): void {
    if (this.dirtyEnd === 0) return;
    queue.writeBuffer(this.buffer, this.dirtyStart, this.mirror, this.dirtyStart, this.dirtyEnd - this.dirtyStart);
    this.dirtyStart = Infinity;
    this.dirtyEnd = 0;
  }
}

/** Per device: the pages, and whether any slot changed since the last flush. */
class UniformPool {
  private readonly pages: UniformPage[] = [];
  private readonly free = new Map<number, UniformSlot[]>();
  dirty = false;

  constructor(private readonly device: GPUDevice) {}

  allocate(size: number): UniformSlot {
    const stride = Math.ceil(size / this.device.limits.minUniformBufferOffsetAlignment) * this.device.limits.minUniformBufferOffsetAlignment;
    const reused = this.free.get(stride)?.pop();
    if (reused) return reused;
    let page = this.pages.at(-1);
    if (!page || page.used + stride > PAGE_BYTES) this.pages.push((page = new UniformPage(this.device)));
    const slot = { page, offset: page.used };
    page.used += stride;
    return slot;
  }

  release(slot: UniformSlot, size: number): void {
    const stride = Math.ceil(size / this.device.limits.minUniformBufferOffsetAlignment) * this.device.limits.minUniformBufferOffsetAlignment;
    const list = this.free.get(stride) ?? [];
    list.push(slot);
    this.free.set(stride, list);
  }

  flush(): void {
    for (const page of this.pages) page.flush(this.device.queue);
    this.dirty = false;
  }
}

const pools = new WeakMap<GPUDevice, UniformPool>();
function uniformPool(device: GPUDevice): UniformPool {
  let pool = pools.get(device);
  if (!pool) pools.set(device, (pool = new UniformPool(device)));
  return pool;
}

export class KernelDispatch<F extends string> {
  private groups: [number, number, number] = [1, 1, 1];
  private readonly pool: UniformPool;

  private constructor(
    private readonly gpu: Gpu,
    private readonly spec: KernelSpec<unknown, F>,
    private readonly pipeline: GPUComputePipeline,
    private readonly bindGroup: GPUBindGroup,
    private readonly slot: UniformSlot,
    private readonly params: Record<F, number>,
    private readonly grid: GridFn<F>,
  ) {
    this.pool = uniformPool(gpu.device);
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
    // The grid function validates the parameters: refuse bad ones before compiling or allocating anything.
    toGroups(gpu, spec.name, grid(params));
    const kernel = await getPipeline(gpu, spec, key);
    const slot = uniformPool(gpu.device).allocate(spec.uniforms.size);
    const uniform = { buffer: slot.page.buffer, offset: slot.offset, size: spec.uniforms.size };
    const bindGroup = createBindGroup(gpu, kernel, { ...resources, params: uniform });
    return new KernelDispatch(gpu, spec as KernelSpec<unknown, F>, kernel.pipeline, bindGroup, slot, { ...params }, grid);
  }

  get name(): string {
    return this.spec.name;
  }

  /** Updates some parameters (e.g. the position); they reach the GPU at the next `encode()` of any launch. */
  set(changes: Partial<Record<F, number>>): void {
    // Validate (grid function, packing) before storing, so a rejected change leaves the launch as it was.
    const next = { ...this.params, ...changes };
    const groups = toGroups(this.gpu, this.spec.name, this.grid(next));
    const { page, offset } = this.slot;
    const size = this.spec.uniforms.size;
    this.spec.uniforms.pack(next, scratch(size));
    new Uint8Array(page.mirror, offset, size).set(new Uint8Array(scratch(size), 0, size));
    page.markDirty(offset, size);
    this.pool.dirty = true;
    Object.assign(this.params, changes);
    this.groups = groups;
  }

  /** Records the launch; first uploads every parameter set since the last upload (the writeBuffer is queued before this pass's submit). */
  encode(pass: GPUComputePassEncoder): void {
    if (this.pool.dirty) this.pool.flush();
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(...this.groups);
  }

  /** Returns the uniform slot for reuse by later launches; this launch must not be used afterwards. */
  dispose(): void {
    this.pool.release(this.slot, this.spec.uniforms.size);
  }
}

let scratchBuffer = new ArrayBuffer(256);
/** One packing buffer for every launch: packing is synchronous, so sharing it allocates nothing per call. */
function scratch(size: number): ArrayBuffer {
  if (scratchBuffer.byteLength < size) scratchBuffer = new ArrayBuffer(size);
  return scratchBuffer;
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
