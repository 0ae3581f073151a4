/**
 * Layout of the quantized weight dtypes. A tensor is quantized as if flattened (row-major, flat index
 * i = n·K + k): block b holds flat elements 32b .. 32b+31, so a block may span two rows when K is not a
 * multiple of 32, and only the tensor's last block is padded (with zeros). That keeps the shader's
 * `load_w(i)` a function of i alone. Each block is a few u32 words of packed integers and then one word
 * whose low half is the f16 scale, which may be negative (so -8 / -128 can hold a positive extreme):
 * - q8: 8 words of 32 int8 (byte j&3 of word j>>2 is element j), then the scale: 9 words, 36 bytes.
 * - q4: 4 words of 32 nibbles q+8 for q in [-8, 7] (nibble j&7 of word j>>3, low nibble first), then
 *   the scale: 5 words, 20 bytes.
 */
export const QUANT_BLOCK = 32;

export const QUANT_BLOCK_WORDS = { q8: 9, q4: 5 } as const;

export type QuantDType = keyof typeof QUANT_BLOCK_WORDS;

export function isQuantDType(dtype: string): dtype is QuantDType {
  return dtype === 'q8' || dtype === 'q4';
}

/** u32 words holding `numel` elements in `dtype` (whole blocks). */
export function quantizedWords(dtype: QuantDType, numel: number): number {
  return Math.ceil(numel / QUANT_BLOCK) * QUANT_BLOCK_WORDS[dtype];
}
