/** Waiting on what a page in Chromium shows, for the dashboard's tests. */
import type { Locator } from 'playwright-core';
import { eventually } from 'super-spine/testing';

/** How long a page gets to show what the mesh did. */
export const UI_TIMEOUT_MS = 20_000;

/** Waits until the element exists and its text is `expected` (the page updates it live). */
export async function expectText(locator: Locator, expected: string | RegExp): Promise<void> {
  await eventually(
    async () => {
      const text = await locator.textContent({ timeout: UI_TIMEOUT_MS });
      if (typeof expected === 'string') expect(text).toBe(expected);
      else expect(text).toMatch(expected);
    },
    { timeoutMs: UI_TIMEOUT_MS, intervalMs: 50 },
  );
}
