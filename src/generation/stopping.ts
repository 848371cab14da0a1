/** Stop sequences on decoded text, and how much text is safe to stream before the row ends. */

export class StopChecker {
  private readonly holdBack: number;
  constructor(private readonly stops: readonly string[]) {
    this.holdBack = stops.length ? Math.max(...stops.map((s) => s.length)) - 1 : 0;
  }

  /** Index where the earliest stop sequence starts in text, or -1. */
  find(text: string): number {
    let at = -1;
    for (const s of this.stops) {
      const i = text.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    return at;
  }

  /**
   * Length of the prefix of a running row's text that can no longer change: not a trailing
   * incomplete UTF-8 character (U+FFFD while bytes are pending), not a possible start of a stop sequence.
   */
  stableLength(text: string): number {
    let end = text.length;
    while (end > 0 && text.charCodeAt(end - 1) === 0xfffd) end--;
    return Math.max(0, end - this.holdBack);
  }
}
