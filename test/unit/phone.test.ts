/** Phone numbers as people type them, to the E.164 form handles are stored and looked up by. */
import { describe, expect, it } from 'vitest';
import { normalizePhone } from '../../src/domain/contacts';
import { keys, sameHandle } from '../../src/store/keys';
import { phoneKey, smsNumber, withNinthDigit } from '../../src/domain/phone-numbers';

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

  it('leaves out the trunk 0 written in brackets after a country code, as dialled from abroad, except where numbers keep it', () => {
    expect(normalizePhone('+44 (0)20 7946 0958')).toBe('+442079460958');
    expect(normalizePhone('+44(0) 7700 900123')).toBe('+447700900123');
    expect(normalizePhone('0049 (0) 30 901820')).toBe('+4930901820');
    expect(normalizePhone('+39 (0)6 1234 5678')).toBe('+390612345678');
    // Not in brackets, or not after a country code: as before.
    expect(normalizePhone('+44 020 7946 0958')).toBe('+4402079460958');
    expect(normalizePhone('(0)20 7946 0958')).toBe('+02079460958');
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

describe('phoneKey: one key for the forms of one mobile number', () => {
  it('gives a Brazilian mobile its ninth digit, as WhatsApp ids of older accounts lack it', () => {
    expect(phoneKey('553188887777')).toBe('5531988887777');
    expect(phoneKey('5531988887777')).toBe('5531988887777');
    expect(phoneKey('+553188887777')).toBe('+5531988887777');
    expect(phoneKey('+5511987654321')).toBe('+5511987654321');
  });

  it('leaves Brazilian landlines (2 to 5 after the area code), area codes with a 0 and other lengths as they are', () => {
    expect(phoneKey('553133334444')).toBe('553133334444');
    expect(phoneKey('+551033334444')).toBe('+551033334444');
    expect(phoneKey('5531888877')).toBe('5531888877');
  });

  it('drops the 1 of a Mexican and the 9 of an Argentine mobile after the country code', () => {
    expect(phoneKey('5215512345678')).toBe('525512345678');
    expect(phoneKey('+525512345678')).toBe('+525512345678');
    expect(phoneKey('+5491123456789')).toBe('+541123456789');
    expect(phoneKey('541123456789')).toBe('541123456789');
  });

  it('dials a Brazilian mobile with its ninth digit (an SMS to the older form reaches nobody), and nothing else differently', () => {
    expect(withNinthDigit('+553188887777')).toBe('+5531988887777');
    for (const phone of ['+5531988887777', '+553133334444', '+5215512345678', '+15553978867']) expect(withNinthDigit(phone)).toBe(phone);
  });

  it('addresses an SMS to a Mexican mobile without the 1 of its WhatsApp id, a Brazilian one with its ninth digit, an Argentine one with its 9', () => {
    expect(smsNumber('+5215512345678')).toBe('+525512345678');
    expect(smsNumber('5215512345678')).toBe('525512345678');
    expect(smsNumber('+553188887777')).toBe('+5531988887777');
    for (const phone of ['+525512345678', '+5491123456789', '+541123456789', '+52155123456', '+15553978867']) expect(smsNumber(phone)).toBe(phone);
    // Either form is still one customer.
    expect(phoneKey(smsNumber('+5215512345678'))).toBe(phoneKey('+5215512345678'));
  });

  it('changes no other country', () => {
    for (const phone of ['15553978867', '+442079460958', '+4930901820', '+5212345', '+919876543210']) expect(phoneKey(phone)).toBe(phone);
  });

  it('keys the phone channels by it, and no other', () => {
    expect(keys.handle('whatsapp', '553188887777')).toEqual(keys.handle('whatsapp', '5531988887777'));
    expect(keys.handle('sms', '+5215512345678')).toEqual(keys.handle('sms', '+525512345678'));
    expect(keys.handle('phone', '+5491123456789')).toEqual(keys.handle('phone', '+541123456789'));
    expect(keys.handle('telegram', '553188887777')).not.toEqual(keys.handle('telegram', '5531988887777'));
    // A sender that is no number (an SMS from an alphanumeric id) is keyed in any case, as before.
    expect(keys.handle('sms', 'ACME')).toEqual(keys.handle('sms', 'acme'));
  });

  it('takes a number in either form for the same handle of a contact, and a web visitor id only as it is', () => {
    expect(sameHandle({ channel: 'phone', handle: '+553188887777' }, { channel: 'phone', handle: '+5531988887777' })).toBe(true);
    expect(sameHandle({ channel: 'whatsapp', handle: '553188887777' }, { channel: 'sms', handle: '553188887777' })).toBe(false);
    expect(sameHandle({ channel: 'email', handle: 'ada@example.com' }, { channel: 'email', handle: 'Ada@Example.com' })).toBe(true);
    expect(sameHandle({ channel: 'web', handle: '01ABC' }, { channel: 'web', handle: '01abc' })).toBe(false);
  });
});
