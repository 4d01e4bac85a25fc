/** Waiting on what ink-testing-library draws, as a person watching the screen would. */
export const tick = (ms = 30) => new Promise((r) => setTimeout(r, ms));

export async function until(frame: () => string | undefined, text: string | RegExp, ms = 60_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const f = frame() ?? '';
    if (typeof text === 'string' ? f.includes(text) : text.test(f)) return f;
    if (Date.now() > end) throw new Error(`screen never showed ${text}; last frame:\n${f}`);
    await tick(20);
  }
}
