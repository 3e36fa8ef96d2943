/** Phone numbers as people type them, to the E.164 form handles are stored and looked up by. */
import { describe, expect, it } from 'vitest';
import { normalizePhone } from '../../src/domain/contacts';

describe('normalizePhone', () => {
  it('reads a leading international 00 as the +', () => {
    expect(normalizePhone('0015553978867')).toBe('+15553978867');
    expect(normalizePhone('0044 20 7946 0958')).toBe('+442079460958');
    expect(normalizePhone(' (00) 49-30-901820')).toBe('+4930901820');
  });

  it('changes nothing that does not start with 00, nor 00 followed by another 0', () => {
    expect(normalizePhone('+1 (555) 397-8867')).toBe('+15553978867');
    expect(normalizePhone('15553978867')).toBe('+15553978867');
    expect(normalizePhone('020 7946 0958')).toBe('+02079460958');
    expect(normalizePhone('+0015553978867')).toBe('+0015553978867');
    expect(normalizePhone('1 555 00 12 345')).toBe('+15550012345');
    expect(normalizePhone('000 555 1234')).toBe('+0005551234');
  });

  it('refuses what is too short or too long once the prefix is read', () => {
    expect(normalizePhone('00123456')).toBeUndefined();
    expect(normalizePhone('00 1234567')).toBe('+1234567');
    expect(normalizePhone('00 1234 5678 9012 345')).toBe('+123456789012345');
    expect(normalizePhone('00 1234 5678 9012 3456')).toBeUndefined();
    expect(normalizePhone('12')).toBeUndefined();
    expect(normalizePhone(undefined)).toBeUndefined();
  });
});
