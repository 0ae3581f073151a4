/**
 * Chat templates rendered with bounded work. A template is code from the model repository: `range(1e9)`
 * would build a billion-element array (a fatal, uncatchable V8 out-of-memory in Node), nested loops can run
 * for hours, and output can grow to gigabytes. @huggingface/jinja has no limits of its own, so its
 * Interpreter is subclassed to count every evaluated node and every item of every list it produces against a
 * step budget, and to refuse strings and lists past a size cap as soon as they are produced.
 */
import { Environment, Interpreter, type Template } from '@huggingface/jinja';

export interface RenderLimits {
  /** Evaluated nodes plus ITEM_STEPS per list item produced (a loop over n items costs at least 8n). */
  maxSteps: number;
  /** The longest string any expression may produce, the output included. */
  maxChars: number;
}

/** Generous for real templates: a 1000-message conversation through Qwen3's template takes about 10% of it. */
export const DEFAULT_RENDER_LIMITS: RenderLimits = { maxSteps: 1_000_000, maxChars: 16 * 2 ** 20 };

/** Steps one list item costs: a loop iteration (its scope and `loop` object) is ~10x the work of one node. */
const ITEM_STEPS = 8;

/** A template exceeded its RenderLimits; the render stopped before doing the work. Wrapped in ChatTemplateError. */
class RenderBudgetError extends Error {
  override readonly name = 'RenderBudgetError';
}

type Node = Parameters<Interpreter['evaluate']>[0];
type Value = ReturnType<Interpreter['evaluate']>;

class BoundedInterpreter extends Interpreter {
  private steps = 0;

  constructor(
    env: Environment,
    private readonly limits: RenderLimits,
  ) {
    super(env);
  }

  charge(steps: number): void {
    this.steps += steps;
    if (this.steps > this.limits.maxSteps) {
      throw new RenderBudgetError(`the template did more than ${this.limits.maxSteps.toLocaleString('en-US')} steps (a loop too long?)`);
    }
  }

  override evaluate(statement: Node, environment: Environment): Value {
    this.charge(1);
    const value = super.evaluate(statement, environment);
    const raw: unknown = value.value;
    if (typeof raw === 'string' && raw.length > this.limits.maxChars) {
      throw new RenderBudgetError(`the template produced more than ${this.limits.maxChars.toLocaleString('en-US')} characters`);
    }
    // Lists are charged as they are made or looked up, so a loop with an empty body still pays per item.
    if (Array.isArray(raw)) this.charge(raw.length * ITEM_STEPS);
    else if (raw instanceof Map) this.charge(raw.size * ITEM_STEPS);
    return value;
  }
}

/** The template's output for `items`; throws RenderBudgetError past the limits, or the template's own errors. */
export function renderBounded(template: Template, items: Record<string, unknown>, limits: RenderLimits = DEFAULT_RENDER_LIMITS): string {
  const env = new Environment();
  const interpreter = new BoundedInterpreter(env, limits);
  // The globals Template.render sets up, with range() checked before it allocates.
  const globals: Record<string, unknown> = {
    true: true,
    false: false,
    none: null,
    True: true,
    False: false,
    None: null,
    raise_exception: (message: unknown) => {
      throw new Error(String(message));
    },
    range: (start: number, stop?: number, step = 1) => {
      const [from, to] = stop === undefined ? [0, start] : [start, stop];
      if (step === 0) throw new Error('range() step must not be zero');
      const count = Math.max(0, Math.ceil((to - from) / step));
      interpreter.charge(count * ITEM_STEPS);
      return Array.from({ length: count }, (_, i) => from + i * step);
    },
    strftime_now: strftimeNow,
  };
  for (const [key, value] of Object.entries({ ...globals, ...items })) env.set(key, value);
  const result: unknown = interpreter.run(template.parsed).value;
  if (typeof result !== 'string') throw new Error('the template did not produce text');
  return result;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** The subset of strftime @huggingface/jinja supports (%Y %m %d %b %B %H %M %%), in English. */
function strftimeNow(format: unknown): string {
  const date = new Date();
  const pad2 = (n: number) => String(n).padStart(2, '0');
  return String(format).replace(/%[YmdbBHM%]/g, (token) => {
    switch (token) {
      case '%Y':
        return String(date.getFullYear());
      case '%m':
        return pad2(date.getMonth() + 1);
      case '%d':
        return pad2(date.getDate());
      case '%b':
        return MONTHS[date.getMonth()].slice(0, 3);
      case '%B':
        return MONTHS[date.getMonth()];
      case '%H':
        return pad2(date.getHours());
      case '%M':
        return pad2(date.getMinutes());
      default:
        return '%';
    }
  });
}
