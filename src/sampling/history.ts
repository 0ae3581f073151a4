/**
 * The tokens the penalties look at, kept as the aggregates they need so each step costs O(distinct ids),
 * not O(sequence length).
 */
export class TokenHistory {
  private readonly context = new Set<number>();
  private readonly counts = new Map<number, number>();
  private readonly tokens: number[] = [];

  constructor(prompt: Iterable<number> = []) {
    for (const id of prompt) this.context.add(id);
  }

  /** Records one generated token. */
  push(id: number): void {
    this.context.add(id);
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
    this.tokens.push(id);
  }

  /** Distinct ids in prompt + generated tokens: what repetition_penalty looks at. */
  get contextIds(): ReadonlySet<number> {
    return this.context;
  }

  /** How often each id was generated (the prompt not counted): what frequency/presence penalties look at. */
  get generatedCounts(): ReadonlyMap<number, number> {
    return this.counts;
  }

  get generated(): readonly number[] {
    return this.tokens;
  }
}
