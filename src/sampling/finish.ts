/** Why generation ended, in OpenAI's terms: an end token or stop string, max_tokens, or the caller's signal. */
export type FinishReason = 'stop' | 'length' | 'abort';

/**
 * Whether generation ends after `token`, the `generatedCount`-th generated token (counting it):
 * 'stop' for an EOS token (checked first: an EOS as the last allowed token still means the model
 * finished), 'length' once max_tokens tokens exist, otherwise null. Stop strings are StopMatcher's job.
 */
export function finishReason(
  token: number,
  generatedCount: number,
  limits: { eosTokenIds: readonly number[]; maxTokens: number | null },
): Exclude<FinishReason, 'abort'> | null {
  if (limits.eosTokenIds.includes(token)) return 'stop';
  if (limits.maxTokens !== null && generatedCount >= limits.maxTokens) return 'length';
  return null;
}
