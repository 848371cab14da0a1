/**
 * Per-token log probabilities for OpenAI's `logprobs` (legacy completions format): for each generated token,
 * its log probability under the model's own distribution (log-softmax of the raw logits, before temperature
 * and top_p, as OpenAI and vLLM report them) and the `top` most likely tokens with theirs. Token strings are
 * decoded as the difference between the decoded text before and after the token, so they join to the text. A
 * token that ends inside a multi-byte character decodes to a replacement character that the next token turns
 * into the character: such trailing replacement characters are held back, so that token's text is '' and the
 * character goes to the token that completes it.
 */

/** The decoded text without the replacement characters a later token may still complete. */
const stable = (text: string): string => text.replace(/\uFFFD+$/, '');

/** One choice's record, aligned with its generated tokens (end-of-sequence excluded). */
export interface TokenLogprobs {
  tokens: string[];
  tokenLogprobs: number[];
  /** The `top` most likely tokens at each position, plus the chosen one when it is not among them. */
  topLogprobs: Record<string, number>[];
  /** Where each token's text starts in the choice's text (characters). */
  textOffset: number[];
}

/** log Σ exp(x), computed in float64 from the row's largest logit. */
function logSumExp(logits: Float32Array): number {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return max + Math.log(sum);
}

/** Indices of the `k` largest logits, largest first (ties: lower index first, as argmax). */
function topIndices(logits: Float32Array, k: number): number[] {
  const top: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (top.length === k && v <= logits[top[k - 1]!]!) continue;
    let at = top.length;
    while (at > 0 && v > logits[top[at - 1]!]!) at--;
    top.splice(at, 0, i);
    if (top.length > k) top.pop();
  }
  return top;
}

/** Records one row's tokens as it decodes; `decode` is the tokenizer's (ids → text). */
export class TokenLogprobRecorder {
  private readonly out: TokenLogprobs = { tokens: [], tokenLogprobs: [], topLogprobs: [], textOffset: [] };

  constructor(
    private readonly top: number,
    private readonly decode: (ids: readonly number[]) => string,
  ) {}

  /** `prefix`: the tokens before `token`, whose decoded text is `before`; `after` is the text with `token`. */
  add(logits: Float32Array, prefix: readonly number[], before: string, token: number, after: string): void {
    const lse = logSumExp(logits);
    const from = stable(before);
    const piece = (id: number, text: string) => {
      const t = stable(text);
      return t.startsWith(from) ? t.slice(from.length) : this.decode([id]);
    };
    const lp = logits[token]! - lse;
    const tops: Record<string, number> = {};
    for (const id of topIndices(logits, this.top)) {
      const s = id === token ? piece(id, after) : piece(id, this.decode([...prefix, id]));
      // Two ids can decode to the same text: keep the likelier.
      tops[s] = Math.max(tops[s] ?? -Infinity, logits[id]! - lse);
    }
    // The chosen token's entry is its own, even when another id decodes to the same text.
    const chosen = piece(token, after);
    tops[chosen] = lp;
    this.out.tokens.push(chosen);
    this.out.tokenLogprobs.push(lp);
    this.out.topLogprobs.push(tops);
    this.out.textOffset.push(from.length);
  }

  /**
   * The record for the choice's final `text`; `cut`: a stop sequence ended it early, so only the tokens that start
   * within it are kept. The last token's text is what remains of `text` (held-back characters, or a token the
   * stop sequence cut), so the tokens join to the text.
   */
  result(text: string, cut: boolean): TokenLogprobs {
    const n = cut ? this.out.textOffset.filter((o) => o < text.length).length : this.out.tokens.length;
    const tokens = this.out.tokens.slice(0, n);
    const topLogprobs = this.out.topLogprobs.slice(0, n);
    if (n > 0) {
      const last = text.slice(this.out.textOffset[n - 1]);
      if (last !== tokens[n - 1]) {
        const tops = { ...topLogprobs[n - 1] };
        delete tops[tokens[n - 1]!];
        tops[last] = this.out.tokenLogprobs[n - 1]!;
        tokens[n - 1] = last;
        topLogprobs[n - 1] = tops;
      }
    }
    return {
      tokens,
      tokenLogprobs: this.out.tokenLogprobs.slice(0, n),
      topLogprobs,
      textOffset: this.out.textOffset.slice(0, n),
    };
  }
}
