/**
 * The two forms one mobile number takes in three countries, where WhatsApp's id and the number
 * people write differ (Meta warns that a wa_id and the phone number may not match).
 */

/** Brazilian mobiles of 8 digits after the area code: accounts older than the ninth digit keep them on WhatsApp. */
const BRAZIL_WITHOUT_NINTH = /^(\+?55[1-9]{2})([6-9]\d{7})$/;
/** Mexico's `1` and Argentina's `9` after the country code, in WhatsApp ids and international dialling of mobiles. */
const MOBILE_PREFIXED = /^(\+?52)1(\d{10})$|^(\+?54)9(\d{10})$/;

/**
 * A Brazilian mobile number with its ninth digit, as Brazil has dialled them since 2016 (an older
 * WhatsApp account's id lacks it, and an SMS to that form reaches nobody); any other number as given.
 */
export function withNinthDigit(phone: string): string {
  const brazil = BRAZIL_WITHOUT_NINTH.exec(phone);
  return brazil ? `${brazil[1]}9${brazil[2]}` : phone;
}

/** A Mexican mobile with the `1` WhatsApp ids still carry after the country code. */
const MEXICO_PREFIXED = /^(\+?52)1(\d{10})$/;

/**
 * The form an SMS is addressed to: a Brazilian mobile with its ninth digit, a Mexican one without
 * the `1` (Mexico stopped dialling it in 2019 and carriers need not route it; the WhatsApp id keeps
 * it). An Argentine mobile keeps its `9`, part of its international form; anything else as given.
 */
export function smsNumber(phone: string): string {
  const mexico = MEXICO_PREFIXED.exec(phone);
  return mexico ? `${mexico[1]}${mexico[2]}` : withNinthDigit(phone);
}

/**
 * One key for both forms (src/store/keys.ts): a Brazilian mobile with its 9; a Mexican or Argentine
 * mobile without the digit after the country code. Without it a customer answering on WhatsApp
 * what was sent to their number as typed, or writing by SMS and on WhatsApp, became two customers
 * (the issue Chatwoot's Brazilian users keep reporting). Landlines and other countries as given.
 */
export function phoneKey(phone: string): string {
  const prefixed = MOBILE_PREFIXED.exec(phone);
  return prefixed ? `${prefixed[1] ?? prefixed[3]}${prefixed[2] ?? prefixed[4]}` : withNinthDigit(phone);
}
