// Drives the page in a real browser (Debian's chromium through playwright-core).
import { GENRES } from '@filmgenre/core';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareModels, startServer, type TestModels, type TestServer } from './testing/harness.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let models: TestModels;
let server: TestServer;
let context: BrowserContext;
let profile: string;
/** Screenshots stay here after the run, for a person to look at. */
const shots = mkdtempSync(join(tmpdir(), 'serving-page-'));

beforeAll(async () => {
  models = await prepareModels();
  server = await startServer(models.dir);
  profile = mkdtempSync(join(tmpdir(), 'serving-chromium-'));
  // A persistent context is how playwright takes a fresh --user-data-dir.
  context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1000, height: 1100 } });
});

afterAll(async () => {
  await context?.close();
  await server?.stop();
  models?.cleanup();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

describe.skipIf(!existsSync(CHROMIUM))('the page', () => {
  it('takes a poster and an overview and shows both models as bars', async () => {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text()); });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('request', (r) => { if (!r.url().startsWith(server.url) && !r.url().startsWith('blob:')) problems.push(`external request ${r.url()}`); });

    await page.goto(`${server.url}/`);
    const film = models.heldOut[0]!;
    await page.setInputFiles('#poster', film.posterPath);
    await expect.poll(() => page.locator('#preview').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBeGreaterThan(0);
    await page.fill('#overview', film.overview);
    await page.click('#submit');
    await page.waitForSelector('[data-model="lstm"] .bar');
    expect(await page.locator('#preview').isVisible()).toBe(true);

    const shown = ['cnn', 'lstm', 'fusion'];
    expect(await page.locator('[data-model]').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset['model']))).toEqual(shown);
    for (const key of shown) {
      const section = page.locator(`[data-model="${key}"]`);
      expect(await section.locator('.bar').count()).toBe(GENRES.length);
      const widths = await section.locator('.fill').evaluateAll((els) => els.map((e) => parseFloat((e as HTMLElement).style.width)));
      expect(widths.every((w) => w >= 0 && w <= 100)).toBe(true);
      // Sorted by probability, so the bars shrink down the list.
      for (let i = 1; i < widths.length; i++) expect(widths[i - 1]!).toBeGreaterThanOrEqual(widths[i]!);
      const passing = await section.locator('.bar.pass').count();
      const predictedText = await section.locator('.predicted').textContent();
      expect(passing === 0 ? /none above threshold/.test(predictedText!) : predictedText!.split(',').length === passing).toBe(true);
    }
    expect(await page.locator('#status').textContent()).toMatch(/Answered in \d+ ms/);
    const shot = join(shots, 'page.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
    expect(problems).toEqual([]); // no CSP violation, script error or external request
    await page.close();
  });

  it('shows whatever models answered, by key and variant: the default models\' shape {cnn, sentence, fusion}', async () => {
    const sentence = await prepareModels('sentence');
    const other = await startServer(sentence.dir);
    try {
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
      await page.goto(`${other.url}/`);
      const film = sentence.heldOut[2]!;
      await page.setInputFiles('#poster', film.posterPath);
      await page.fill('#overview', film.overview);
      await page.click('#submit');
      await page.waitForSelector('[data-model="fusion"] .bar');
      const sections = page.locator('[data-model]');
      expect(await sections.evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset['model']))).toEqual(['cnn', 'sentence', 'fusion']);
      expect(await page.locator('[data-model] h2').allTextContents()).toEqual(['cnn · pretrained', 'sentence · use-lite', 'fusion · stacked']);
      expect(await page.locator('[data-model="fusion"] .meta').textContent()).toMatch(/^fusion of cnn \+ sentence · /);
      expect(await page.locator('[data-model="cnn"] .meta').textContent()).toMatch(/^poster · /);
      for (const key of ['cnn', 'sentence', 'fusion']) expect(await page.locator(`[data-model="${key}"] .bar`).count()).toBe(GENRES.length);
      // An overview alone: only the overview model answers, and only it is shown.
      await page.setInputFiles('#poster', []);
      await page.click('#submit');
      await expect.poll(async () => page.locator('[data-model]').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset['model']))).toEqual(['sentence']);
      const shot = join(shots, 'page-sentence.png');
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`screenshot: ${shot}`);
      expect(problems).toEqual([]);
      await page.close();
    } finally {
      await other.stop();
      sentence.cleanup();
    }
  });

  it('shows the API error message for bad input', async () => {
    const page = await context.newPage();
    await page.goto(`${server.url}/`);
    await page.fill('#overview', '   ');
    await page.click('#submit');
    await expect.poll(() => page.locator('#error').textContent()).toMatch(/NO_INPUT/);
    await page.setInputFiles('#poster', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image') });
    await page.click('#submit');
    await expect.poll(() => page.locator('#error').textContent()).toMatch(/POSTER_NOT_AN_IMAGE/);
    await page.close();
  });
});
