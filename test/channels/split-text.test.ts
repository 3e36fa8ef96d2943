/** Long texts cut into the parts a provider accepts (src/channels/common.ts splitText). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitText, utf8Bytes } from '../../src/channels/common';

describe('splitText', () => {
  it('leaves a text within the limit whole (trimmed)', () => {
    expect(splitText('  Hello there.  ', 20)).toEqual(['Hello there.']);
    expect(splitText('   ', 20)).toEqual([]);
  });

  it('cuts after a paragraph, else a line, else a sentence, else a space', () => {
    expect(splitText('First paragraph here.\n\nSecond one follows on.', 30)).toEqual(['First paragraph here.', 'Second one follows on.']);
    expect(splitText('Line one is here\nline two is here', 24)).toEqual(['Line one is here', 'line two is here']);
    expect(splitText('A first sentence. Another goes on here.', 30)).toEqual(['A first sentence.', 'Another goes on here.']);
    // …but not so early that the part would be mostly empty
    expect(splitText('Hi. Then a long run of words', 20)).toEqual(['Hi. Then a long run', 'of words']);
    expect(splitText('alpha beta gamma delta', 12)).toEqual(['alpha beta', 'gamma delta']);
  });

  it('cuts a word longer than a part where it must, never inside a surrogate pair', () => {
    expect(splitText('x'.repeat(25), 10)).toEqual(['x'.repeat(10), 'x'.repeat(10), 'x'.repeat(5)]);
    const emoji = '😀'.repeat(6); // 12 UTF-16 units
    const parts = splitText(emoji, 5);
    expect(parts.join('')).toBe(emoji);
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(5);
    expect(parts.every((part) => !/[\uD800-\uDBFF]$/.test(part))).toBe(true);
  });

  it('cuts a run without spaces between characters as a reader sees them: an accent, a skin tone, a family, a flag stay whole', () => {
    const graphemes = (text: string) => [...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text)].map((s) => s.segment);
    const runs = [
      // Thai writes no spaces between words; its vowels and tone marks are combining characters
      { text: `ก${'สวัสดีครับ'.repeat(120)}`, max: 1000, measure: utf8Bytes },
      { text: `a${'e\u0301'.repeat(3000)}`, max: 4096, measure: (t: string) => t.length },
      { text: `a${'👍🏽'.repeat(1500)}`, max: 4096, measure: (t: string) => t.length },
      { text: `abc${'👨‍👩‍👧'.repeat(600)}`, max: 4096, measure: (t: string) => t.length },
      { text: `ab${'🇫🇷'.repeat(1500)}`, max: 1000, measure: utf8Bytes },
    ];
    for (const { text, max, measure } of runs) {
      const parts = splitText(text, max, measure);
      expect(parts.length).toBeGreaterThan(1);
      for (const part of parts) expect(measure(part)).toBeLessThanOrEqual(max);
      expect(parts.flatMap(graphemes)).toEqual(graphemes(text));
    }
  });

  it('measures in UTF-8 bytes when the provider does', () => {
    const parts = splitText('é'.repeat(10), 8, utf8Bytes);
    expect(parts).toEqual(['éééé', 'éééé', 'éé']);
  });

  it('keeps every word, in order, and every part within the limit', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 400 }), fc.integer({ min: 8, max: 60 }), fc.boolean(), (text, max, bytes) => {
        const measure = bytes ? utf8Bytes : (s: string) => s.length;
        const parts = splitText(text, max, measure);
        for (const part of parts) {
          expect(measure(part)).toBeLessThanOrEqual(max);
          expect(part).toBe(part.trim());
          expect(part).not.toBe('');
        }
        expect(parts.join('').replace(/\s+/g, '')).toBe(text.replace(/\s+/g, ''));
      }),
      { numRuns: 300 },
    );
  });
});
