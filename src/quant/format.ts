/**
 * Layout of the quantized weight dtypes, as the CPU quantizer (./quantize.ts) writes it and the shaders
 * (weights_q8.wgsl, weights_q4.wgsl) read it. A GPU quantizer must produce exactly these words.
 *
 * A tensor is quantized as if flattened (row-major, flat index i = n·K + k): block b holds flat elements
 * 32b .. 32b+31, so a block may span two rows when K is not a multiple of 32, and only the tensor's last
 * block is padded (with zeros). Each block has one f16 scale, which may be negative (so -8 / -128 can hold
 * a positive extreme); element i decodes to q_i · scale of block i >> 5. The tensor's u32 words hold two
 * regions, so that a kernel reads whole 16-byte vectors of integers and one scale per block:
 *
 * 1. Integers, nBlocks · 4 words (q4) or nBlocks · 8 words (q8), stored unsigned with an offset:
 *    - q4: word i >> 3 holds elements 8w .. 8w+7 as q + 8 (q in [-8, 7]); element 8w + j sits in byte j & 3,
 *      in its low nibble for j < 4 and its high nibble for j ≥ 4. So (word & 0x0f0f0f0f) holds elements
 *      0..3 of the word in its bytes and ((word >> 4) & 0x0f0f0f0f) elements 4..7.
 *    - q8: word i >> 2 holds elements 4w .. 4w+3 as q + 128 (q in [-128, 127]), element 4w + j in byte j.
 * 2. Scales, from word nBlocks · 4 (q4) or nBlocks · 8 (q8): two f16 per word, block 2s in the low half of
 *    word s and block 2s+1 in the high half, zero-padded to a multiple of 4 words, so that the whole tensor is
 *    a whole number of 16-byte vectors.
 *
 * nBlocks = ceil(numel / 32). Example: a [3, 40] q4 tensor has 120 elements, 4 blocks (the last holds 24
 * elements and 8 zero nibbles = 8), 16 words of integers, then 4 words of scales (2 used): 20 words.
 */
export const QUANT_BLOCK = 32;

/**
 * Where a slice of a tensor may start to be quantized on its own (`quantizeSlice`): two blocks, so that no
 * scale word is shared with the slice before it.
 */
export const QUANT_SLICE_ALIGN = 2 * QUANT_BLOCK;

/** u32 words of integers per block of 32 elements. */
export const QUANT_INT_WORDS = { q8: 8, q4: 4 } as const;

/** What is added to each integer q before it is stored unsigned. */
export const QUANT_OFFSET = { q8: 128, q4: 8 } as const;

export type QuantDType = keyof typeof QUANT_INT_WORDS;

export function isQuantDType(dtype: string): dtype is QuantDType {
  return dtype === 'q8' || dtype === 'q4';
}

export function quantBlocks(numel: number): number {
  return Math.ceil(numel / QUANT_BLOCK);
}

/** The word where the scales start (after the integers) in a tensor of `numel` elements. */
export function quantScaleOffset(dtype: QuantDType, numel: number): number {
  return quantBlocks(numel) * QUANT_INT_WORDS[dtype];
}

/** u32 words holding `numel` elements in `dtype`: the integers, then the scales padded to 4 words. */
export function quantizedWords(dtype: QuantDType, numel: number): number {
  return quantScaleOffset(dtype, numel) + Math.ceil(quantBlocks(numel) / 8) * 4;
}
