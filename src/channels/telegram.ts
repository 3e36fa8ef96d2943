/**
 * Telegram Bot API. Webhooks are Update objects authenticated by the secret_token given to
 * setWebhook (X-Telegram-Bot-Api-Secret-Token). Send: POST {base}/bot{token}/{method}.
 * Telegram reports no delivery or read receipts to bots, so this adapter emits no statuses.
 */
import type { Attachment, InboundEvent, InboundMessageEvent, InboundMovedEvent, ReplyTo } from '../domain/types';
import {
  callProviderParts,
  credential,
  formatLocation,
  geoUri,
  isRecord,
  leniently,
  sentAtFromEpoch,
  jsonCall,
  list,
  missingCredential,
  parseJsonBody,
  records,
  replyContext,
  safeEqual,
  unsupportedText,
  type ProviderCall,
  type ProviderDialect,
  splitText,
  downloadMedia,
  getProviderJson,
  type MediaFailure,
  mediaAccess,
  refuseLarge,
  transferTimeoutMs,
  halfwayTo,
  MB,
  sharedContact,
  telDigits,
} from './common';
import { BadWebhookError, type ChannelAdapter, type HttpReply, type MediaResult, type OutboundSend, type SendContext, type SendResult } from './types';

interface TgFile {
  file_id?: string;
  file_size?: number;
  mime_type?: string;
  file_name?: string;
  title?: string;
  emoji?: string;
}

interface TgUser {
  id?: number;
  is_bot?: boolean;
  first_name?: string;
  last_name?: string;
  username?: string;
}

interface TgMessage {
  message_id?: number;
  from?: TgUser;
  chat?: { id?: number | string; type?: string; title?: string; first_name?: string; last_name?: string };
  /** Who wrote when it is a chat, not a user: an anonymous group admin, or a linked channel. */
  sender_chat?: { title?: string };
  /** An anonymous admin's custom title, or a channel post's author. */
  author_signature?: string;
  /** A post of the group's linked channel, copied into the group by Telegram. */
  is_automatic_forward?: boolean;
  date?: number;
  edit_date?: number;
  text?: string;
  caption?: string;
  photo?: TgFile[];
  voice?: TgFile;
  audio?: TgFile;
  video?: TgFile;
  video_note?: TgFile;
  animation?: TgFile;
  document?: TgFile;
  sticker?: TgFile;
  location?: { latitude?: number; longitude?: number };
  venue?: { title?: string; address?: string; location?: { latitude?: number; longitude?: number } };
  contact?: { phone_number?: string; first_name?: string; last_name?: string; vcard?: string };
  poll?: { question?: string; options?: { text?: string }[] };
  dice?: { emoji?: string; value?: number };
  story?: { chat?: TgMessage['chat'] & { username?: string }; id?: number };
  game?: { title?: string; description?: string };
  [key: string]: unknown;
}

interface TgUpdate {
  update_id?: number;
  message?: TgMessage;
  edited_message?: TgMessage;
  callback_query?: { id?: string; from?: TgUser; message?: TgMessage; data?: string };
  message_reaction?: TgReactionUpdate;
}

/** ReactionType: `emoji`, `custom_emoji` (a Premium user's own sticker-like emoji) or `paid` (a star). */
interface TgReaction {
  type?: string;
  emoji?: string;
  custom_emoji_id?: string;
}

/** MessageReactionUpdated: a user's (or, anonymous, a chat's) reactions on one message, before and after. */
interface TgReactionUpdate {
  chat?: TgMessage['chat'];
  message_id?: number;
  user?: TgUser;
  actor_chat?: { id?: number | string; title?: string };
  date?: number;
  old_reaction?: TgReaction[];
  new_reaction?: TgReaction[];
}

/** An inline keyboard button, as the message a callback query comes from carries it. */
interface TgInlineButton {
  text?: string;
  callback_data?: string;
}

/** Fields every message may carry that say nothing about its content. */
const METADATA_KEYS = new Set([
  'message_id', 'message_thread_id', 'from', 'sender_chat', 'sender_boost_count', 'sender_business_bot', 'date',
  'business_connection_id', 'chat', 'forward_origin', 'is_topic_message', 'is_automatic_forward', 'reply_to_message',
  'external_reply', 'quote', 'reply_to_story', 'via_bot', 'edit_date', 'has_protected_content', 'is_from_offline',
  'media_group_id', 'author_signature', 'entities', 'caption_entities', 'link_preview_options', 'reply_markup',
  'show_caption_above_media', 'has_media_spoiler', 'effect_id', 'forward_from', 'forward_from_chat', 'forward_date',
  'forward_signature', 'forward_sender_name', 'forward_from_message_id',
]);

/**
 * Service messages: chat events (members, titles, pins, topics, migrations, payments, shares, video
 * chats…) with no customer content. They are not messages, and storing them would reopen conversations.
 */
const SERVICE_KEYS = new Set([
  'new_chat_members', 'left_chat_member', 'new_chat_title', 'new_chat_photo', 'delete_chat_photo', 'group_chat_created',
  'supergroup_chat_created', 'channel_chat_created', 'message_auto_delete_timer_changed', 'migrate_to_chat_id',
  'migrate_from_chat_id', 'pinned_message', 'successful_payment', 'refunded_payment', 'users_shared', 'chat_shared',
  'gift', 'unique_gift', 'connected_website', 'write_access_allowed', 'passport_data', 'proximity_alert_triggered',
  'boost_added', 'chat_background_set', 'checklist_tasks_done', 'checklist_tasks_added', 'direct_message_price_changed',
  'paid_message_price_changed', 'forum_topic_created', 'forum_topic_edited', 'forum_topic_closed', 'forum_topic_reopened',
  'general_forum_topic_hidden', 'general_forum_topic_unhidden', 'giveaway_created', 'giveaway_winners', 'giveaway_completed',
  'video_chat_scheduled', 'video_chat_started', 'video_chat_ended', 'video_chat_participants_invited', 'web_app_data',
  'suggested_post_approved', 'suggested_post_approval_failed', 'suggested_post_declined', 'suggested_post_paid',
  'suggested_post_refunded',
]);

function fileAttachment(type: Attachment['type'], file: TgFile | undefined): Attachment[] {
  if (!file?.file_id) return [];
  // Bot file URLs embed the bot token, so only the file_id is kept; it is resolved with getFile when needed.
  const attachment: Attachment = { type, url: `telegram-file://${file.file_id}` };
  if (file.mime_type) attachment.mimeType = file.mime_type;
  if (file.file_name) attachment.name = file.file_name;
  if (file.file_size !== undefined) attachment.size = file.file_size;
  return [attachment];
}

/** A message entity; a text_link's URL is in it alone (the text holds only the words it is under). */
interface TgEntity {
  type?: string;
  offset?: number;
  length?: number;
  url?: string;
}

/**
 * The text with each link under words (text_link) written after them, `words (url)`, so the agent
 * sees where it goes: a forwarded post's "Read more", a customer's linked words. Offsets are UTF-16
 * units, as JavaScript strings count; links are written from the last one, so earlier offsets hold.
 */
function withLinks(text: string, entities: unknown): string {
  const links = records(list(entities as TgEntity[]))
    .flatMap((entity) => {
      const { type, offset, length, url } = entity;
      if (type !== 'text_link' || typeof url !== 'string' || !url || !Number.isInteger(offset) || !Number.isInteger(length)) return [];
      const end = offset! + length!;
      return offset! >= 0 && length! > 0 && end <= text.length && text.slice(offset, end).trim() !== url ? [{ end, url }] : [];
    })
    .sort((a, b) => b.end - a.end);
  return links.reduce((written, { end, url }) => `${written.slice(0, end)} (${url})${written.slice(end)}`, text);
}

function content(message: TgMessage): { text: string; attachments: Attachment[] } {
  const caption = typeof message.caption === 'string' ? withLinks(message.caption, message.caption_entities) : '';
  if (message.text !== undefined) return { text: typeof message.text === 'string' ? withLinks(message.text, message.entities) : message.text, attachments: [] };
  const photos = list(message.photo);
  // Telegram lists every resolution, smallest first.
  if (photos.length > 0) return { text: caption, attachments: fileAttachment('image', photos[photos.length - 1]) };
  if (message.voice) return { text: caption, attachments: fileAttachment('audio', message.voice) };
  if (message.audio) return { text: caption, attachments: fileAttachment('audio', message.audio) };
  if (message.video) return { text: caption, attachments: fileAttachment('video', message.video) };
  if (message.video_note) return { text: caption, attachments: fileAttachment('video', message.video_note) };
  // An animation also carries a `document` copy of itself; checked first so it is counted once.
  if (message.animation) return { text: caption, attachments: fileAttachment('video', message.animation) };
  if (message.document) return { text: caption, attachments: fileAttachment('file', message.document) };
  if (message.sticker) return { text: message.sticker.emoji ?? '', attachments: fileAttachment('sticker', message.sticker) };
  const venue = message.venue;
  const location = venue?.location ?? message.location;
  if (location) {
    return {
      text: formatLocation(location.latitude, location.longitude, venue?.title, venue?.address),
      attachments: [{ type: 'location', url: geoUri(location.latitude, location.longitude) }],
    };
  }
  if (message.contact) {
    const { first_name, last_name } = message.contact;
    const phone_number = typeof message.contact.phone_number === 'string' ? message.contact.phone_number : undefined;
    const name = [first_name, last_name].filter(Boolean).join(' ');
    const card = vcardDetails(message.contact.vcard);
    // The contact's own number comes in the vCard too, written its own way: kept once.
    const phones = [...(phone_number ? [phone_number] : []), ...card.phones].filter((phone, i, all) => all.findIndex((other) => telDigits(other) === telDigits(phone)) === i);
    return sharedContact(name, phones, card.emails);
  }
  // A poll the customer sent (its question and choices), a die they threw (its emoji and score).
  if (isRecord(message.poll) && typeof message.poll.question === 'string') {
    const options = records(message.poll.options).flatMap((option) => (typeof option.text === 'string' ? [option.text] : []));
    return { text: [`📊 ${message.poll.question}`, ...options.map((option) => `○ ${option}`)].join('\n'), attachments: [] };
  }
  if (isRecord(message.dice) && typeof message.dice.value === 'number') return { text: `${message.dice.emoji ?? '🎲'} ${message.dice.value}`, attachments: [] };
  // A story shared from a chat (its own link when the chat is public), a game shared through an inline bot.
  if (isRecord(message.story)) return { text: storyText(message.story), attachments: [] };
  if (isRecord(message.game) && typeof message.game.title === 'string') {
    const description = typeof message.game.description === 'string' ? message.game.description : '';
    return { text: [`🎮 ${message.game.title}`, description].filter(Boolean).join('\n'), attachments: [] };
  }
  const type = Object.keys(message).find((key) => !METADATA_KEYS.has(key)) ?? 'unknown';
  return { text: caption || unsupportedText(type), attachments: [] };
}

/**
 * The numbers and emails of a contact's vCard (a contact shared from an address book carries one):
 * the other numbers and the emails are there alone. Folded lines are unfolded first (RFC 6350).
 */
function vcardDetails(vcard: unknown): { phones: string[]; emails: string[] } {
  const phones: string[] = [];
  const emails: string[] = [];
  if (typeof vcard !== 'string') return { phones, emails };
  for (const line of vcard.replace(/\r?\n[ \t]/g, '').split(/\r?\n/)) {
    const match = /^(?:[\w-]+\.)?(TEL|EMAIL)(?:;[^:]*)?:(.+)$/i.exec(line.trim());
    const value = match?.[2]?.replace(/^tel:/i, '').trim();
    if (!match || !value) continue;
    (match[1]!.toUpperCase() === 'TEL' ? phones : emails).push(value);
  }
  return { phones: phones.filter((phone) => /\d/.test(phone)), emails };
}

function storyText(story: NonNullable<TgMessage['story']>): string {
  const chat = isRecord(story.chat) ? story.chat : undefined;
  const username = typeof chat?.username === 'string' && chat.username ? chat.username : undefined;
  const from = chat?.title || [chat?.first_name, chat?.last_name].filter(Boolean).join(' ') || (username ? `@${username}` : undefined);
  const link = username && typeof story.id === 'number' ? `https://t.me/${username}/s/${story.id}` : undefined;
  return [from ? `Shared a story from ${from}` : 'Shared a story', link].filter(Boolean).join('\n');
}

function profileOf(user: TgUser | undefined, message: TgMessage | undefined): InboundMessageEvent['profile'] {
  const chat = message?.chat;
  // A group is the customer (its chat id is the handle replies go to): named by its title, not by
  // whichever member wrote last; a forum topic by the group's title and the topic's name, when known.
  const title = isGroup(chat) && chat?.title ? [chat.title, topicName(message)].filter(Boolean).join(' › ') : undefined;
  const name = title ?? ([user?.first_name ?? chat?.first_name, user?.last_name ?? chat?.last_name].filter(Boolean).join(' ') || chat?.title);
  return name ? { name } : undefined;
}

/** Separates a forum topic's id from its chat's in a handle: `<chat id>/<topic id>`. */
const TOPIC_SEPARATOR = '/';

/** The forum topic a message was written in; not the reply thread of a supergroup without topics. */
function topicOf(message: TgMessage | undefined): number | undefined {
  const topic = message?.is_topic_message === true ? message.message_thread_id : undefined;
  return typeof topic === 'number' && Number.isSafeInteger(topic) && topic > 0 ? topic : undefined;
}

/**
 * A forum topic is a conversation of its own (as Chatwoot has it): its handle is the chat's id and
 * the topic's, so a reply goes back into the topic, not the General one.
 */
function handleOf(chatId: number | string, message: TgMessage | undefined): string {
  const topic = topicOf(message);
  return topic === undefined ? String(chatId) : `${chatId}${TOPIC_SEPARATOR}${topic}`;
}

/** Where a handle's replies go: the chat, and the forum topic when it names one. */
function destination(handle: string): { chat_id: string; message_thread_id?: number } {
  const at = handle.lastIndexOf(TOPIC_SEPARATOR);
  const topic = handle.slice(at + 1);
  return at > 0 && /^\d+$/.test(topic) ? { chat_id: handle.slice(0, at), message_thread_id: Number(topic) } : { chat_id: handle };
}

/**
 * A message in a topic answers the topic's first message, the one that created it (unless it
 * answers another): the topic's name is there.
 */
function topicName(message: TgMessage | undefined): string | undefined {
  if (topicOf(message) === undefined) return undefined;
  const created = isRecord(message?.reply_to_message) ? message.reply_to_message.forum_topic_created : undefined;
  return isRecord(created) && typeof created.name === 'string' && created.name ? created.name : undefined;
}

const isGroup = (chat: TgMessage['chat']) => chat?.type === 'group' || chat?.type === 'supergroup';

/**
 * Whether a message was sent on behalf of a chat: an anonymous admin of the group, or a member
 * writing as their channel. Its `from` is then a placeholder user (GroupAnonymousBot, Channel_Bot)
 * marked as a bot, kept only for older clients: the writer is a person all the same.
 */
const onBehalfOfChat = (message: Pick<TgMessage, 'sender_chat'> | undefined): boolean => isRecord(message?.sender_chat);

/** In a group, each member's words carry their name, since the conversation is the whole group's. */
function signed(text: string, message: Pick<TgMessage, 'chat' | 'from' | 'sender_chat' | 'author_signature'> | undefined, from = message?.from): string {
  if (!isGroup(message?.chat)) return text;
  const signature = typeof message?.author_signature === 'string' ? message.author_signature : undefined;
  const asChat = onBehalfOfChat(message) ? signature || message?.sender_chat?.title : undefined;
  const author = asChat || [from?.first_name, from?.last_name].filter(Boolean).join(' ') || (from?.username ? `@${from.username}` : undefined) || message?.sender_chat?.title;
  // A photo without a caption still says whose it is, without a dangling space.
  return author ? (text ? `${author}: ${text}` : `${author}:`) : text;
}

/**
 * A forwarded message is someone else's words: said on a line of its own, with whom they came
 * from (a user, one who hides their account, a group or a channel) when Telegram names them.
 */
function forwardNote(message: TgMessage): string | undefined {
  const origin = message.forward_origin;
  if (!isRecord(origin)) return undefined;
  const user = isRecord(origin.sender_user) ? (origin.sender_user as TgUser) : undefined;
  const chat = isRecord(origin.sender_chat) ? origin.sender_chat : isRecord(origin.chat) ? origin.chat : undefined;
  const from = user
    ? [user.first_name, user.last_name].filter(Boolean).join(' ') || (user.username ? `@${user.username}` : undefined)
    : (origin.sender_user_name ?? chat?.title);
  return typeof from === 'string' && from ? `[forwarded from ${from}]` : '[forwarded]';
}

/** A chat id as Telegram sends it in a migration's fields. */
const chatIdOf = (value: unknown): string | undefined => (typeof value === 'number' && Number.isSafeInteger(value) && value !== 0 ? String(value) : undefined);

/**
 * A group upgraded to a supergroup, which has a new chat id: Telegram says so in both chats, with
 * `migrate_to_chat_id` in the old one and `migrate_from_chat_id` in the new one. Either (or both,
 * in any order) moves the group's conversation to the new id.
 */
function fromMigration(message: TgMessage): InboundMovedEvent | undefined {
  const chat = chatIdOf(message.chat?.id);
  const to = chatIdOf(message.migrate_to_chat_id);
  const from = chatIdOf(message.migrate_from_chat_id);
  const moved = to ? { from: chat, handle: to } : from ? { from, handle: chat } : undefined;
  if (!moved?.from || !moved.handle || moved.from === moved.handle) return undefined;
  return { kind: 'moved', channel: 'telegram', handle: moved.handle, from: moved.from };
}

/**
 * The message a customer's message answers in its chat, by the id our messages take there (`<chat
 * id>:<message id>`, ours and the customer's alike), with the words quoted: the part the customer
 * picked (`quote`), else the message's text or caption. In a forum every message answers its
 * topic's first one (which created it): that is no reply. One in another chat (`external_reply`)
 * is no message of this conversation's.
 */
function replyOf(message: TgMessage, chatId: string): { replyTo?: ReplyTo } {
  const replied = message.reply_to_message;
  if (!isRecord(replied) || typeof replied.message_id !== 'number') return {};
  if ('forum_topic_created' in replied || (topicOf(message) !== undefined && replied.message_id === message.message_thread_id)) return {};
  const quote = isRecord(message.quote) && typeof message.quote.text === 'string' && message.quote.text ? message.quote.text : undefined;
  const words = quote ?? [replied.text, replied.caption].find((value) => typeof value === 'string' && value);
  return replyContext(`${chatId}:${replied.message_id}`, words);
}

function fromMessage(message: TgMessage | undefined, edited: boolean): InboundMessageEvent | InboundMovedEvent | undefined {
  if (!isRecord(message) || message.chat?.id === undefined || message.message_id === undefined) return undefined;
  // A service message, but not one to drop: whoever upgraded the group (another bot too).
  if (!edited && ('migrate_to_chat_id' in message || 'migrate_from_chat_id' in message)) return fromMigration(message);
  // Other bots in a group are not customers; a message sent on behalf of a chat names a placeholder bot as `from`.
  if (message.from?.is_bot && !onBehalfOfChat(message)) return undefined;
  // A post of the group's linked channel copied into it: the channel's admins writing, as channel posts are.
  if (message.is_automatic_forward === true) return undefined;
  if (Object.keys(message).some((key) => SERVICE_KEYS.has(key))) return undefined;
  // A live location moves by editing its message, every few seconds: one message, not hundreds.
  if (edited && (message.location || message.venue)) return undefined;
  const chatId = String(message.chat.id);
  const { text: words, attachments } = content(message);
  const text = [words, forwardNote(message)].filter(Boolean).join('\n');
  const event: InboundMessageEvent = {
    kind: 'message',
    channel: 'telegram',
    handle: handleOf(chatId, message),
    // An edit keeps the message_id; its own id keeps it from being deduplicated away as a redelivery.
    providerMessageId: edited
      ? `${chatId}:${message.message_id}:edited:${message.edit_date ?? message.date ?? 0}`
      : `${chatId}:${message.message_id}`,
    text: signed(edited ? `(edited) ${text}` : text, message),
    attachments,
    ...replyOf(message, chatId),
    ...sentAtFromEpoch(edited ? (message.edit_date ?? message.date) : message.date, 's'),
  };
  const profile = profileOf(message.from, message);
  if (profile) event.profile = profile;
  return event;
}

function fromCallbackQuery(query: NonNullable<TgUpdate['callback_query']>): InboundMessageEvent | undefined {
  const chatId = query.message?.chat?.id ?? query.from?.id;
  if (chatId === undefined || !query.id || query.from?.is_bot) return undefined;
  // A tap on an inline button is the customer's answer, like a Messenger postback: it reads as the
  // button's label (what the customer saw), found by its data on the message it was under.
  const event: InboundMessageEvent = {
    kind: 'message',
    channel: 'telegram',
    handle: handleOf(chatId, query.message),
    providerMessageId: `callback:${query.id}`,
    text: signed(buttonLabel(query.message, query.data) ?? query.data ?? '[button]', query.message, query.from),
    attachments: [],
    sentAt: new Date().toISOString(),
  };
  const profile = profileOf(query.from, query.message);
  if (profile) event.profile = profile;
  return event;
}

function buttonLabel(message: TgMessage | undefined, data: string | undefined): string | undefined {
  if (data === undefined || !isRecord(message) || !isRecord(message.reply_markup)) return undefined;
  const rows = list(message.reply_markup.inline_keyboard as TgInlineButton[][] | undefined);
  const button = rows.flatMap((row) => list(row)).find((b) => isRecord(b) && b.callback_data === data);
  return typeof button?.text === 'string' && button.text ? button.text : undefined;
}

/**
 * What tells one reaction from another: the emoji, the custom emoji's id, the paid star; a type
 * Telegram adds later by its name, so that it is still seen (no emoji contains a colon).
 */
function reactionKey(reaction: TgReaction): string | undefined {
  const { type, emoji, custom_emoji_id: id } = reaction;
  if (type === 'emoji') return typeof emoji === 'string' && emoji ? emoji : undefined;
  if (type === 'custom_emoji') return typeof id === 'string' && id ? `custom_emoji:${id}` : undefined;
  if (type === 'paid') return 'paid';
  return typeof type === 'string' && type ? `${type}:` : undefined;
}

/**
 * The update says which reactions the user has now and had before: the ones added are what they
 * did ("reacted 👍"), worded as the other channels word theirs; none added and some taken away is a
 * removal. A custom emoji is an id without a picture we could show: it is named for what it is.
 */
function reactionText(old: string[], now: string[]): string | undefined {
  const added = now.filter((key) => !old.includes(key));
  if (added.length === 0) return old.some((key) => !now.includes(key)) ? 'removed a reaction from a message' : undefined;
  const shown = added.flatMap((key) => (key === 'paid' ? ['⭐'] : key.includes(':') ? [] : [key]));
  const custom = added.some((key) => key.startsWith('custom_emoji:')) ? 'a custom emoji' : '';
  if (shown.length === 0) return custom ? `reacted with ${custom} to a message` : 'reacted to a message';
  return `reacted ${[shown.join(' '), custom].filter(Boolean).join(' and ')} to a message`;
}

/**
 * A customer's reaction to a message of their chat, stored as a message naming that message in
 * `replyTo`, as WhatsApp's and Meta's are. Telegram gives a reaction no id: the chat, the message,
 * who reacted, when, what they have now and the update's id tell a redelivery (the same update
 * again) from another reaction; the update id alone tells apart a reaction taken back and given
 * again within the second. It names no forum topic, so one in a forum lands in the group's own
 * conversation.
 */
function fromReaction(reaction: TgReactionUpdate, updateId: unknown): InboundMessageEvent | undefined {
  const chat = reaction.chat;
  if (chat?.id === undefined || typeof reaction.message_id !== 'number' || chat.type === 'channel' || reaction.user?.is_bot) return undefined;
  const keys = (items: TgReaction[] | undefined) => records(items).flatMap((item) => reactionKey(item) ?? []);
  const now = keys(reaction.new_reaction);
  const text = reactionText(keys(reaction.old_reaction), now);
  if (!text) return undefined;
  const chatId = String(chat.id);
  const actor = reaction.user?.id ?? reaction.actor_chat?.id ?? 'anonymous';
  // An anonymous admin reacts as the group (actor_chat), signed with its name as their messages are.
  const as = { chat, ...(isRecord(reaction.actor_chat) ? { sender_chat: reaction.actor_chat } : {}) };
  const event: InboundMessageEvent = {
    kind: 'message',
    channel: 'telegram',
    handle: chatId,
    providerMessageId: `${chatId}:${reaction.message_id}:reaction:${actor}:${reaction.date ?? 0}:${now.join(',')}${typeof updateId === 'number' ? `:${updateId}` : ''}`,
    text: signed(text, as, reaction.user),
    attachments: [],
    ...replyContext(`${chatId}:${reaction.message_id}`),
    ...sentAtFromEpoch(reaction.date, 's'),
  };
  const profile = profileOf(reaction.user, as);
  if (profile) event.profile = profile;
  return event;
}

/**
 * The webhook's answer. A callback query must be answered, or the customer's app shows the
 * button loading for a while: the answer carries that Bot API call (Telegram runs a method named in
 * a webhook's answer), so it costs no request of our own.
 */
function ackTelegram(request?: { rawBody: string }): HttpReply {
  const ok: HttpReply = { status: 200, contentType: 'text/plain', body: 'OK' };
  if (!request?.rawBody.includes('"callback_query"')) return ok;
  let id: unknown;
  try {
    const update = JSON.parse(request.rawBody) as unknown;
    id = isRecord(update) && isRecord(update.callback_query) ? update.callback_query.id : undefined;
  } catch {
    return ok;
  }
  if (typeof id !== 'string' || !id) return ok;
  return { status: 200, contentType: 'application/json', body: JSON.stringify({ method: 'answerCallbackQuery', callback_query_id: id }) };
}

function normalizeTelegram(rawBody: string): InboundEvent[] {
  const update = parseJsonBody(rawBody);
  if (!isRecord(update)) throw new BadWebhookError('Expected a Telegram Update object');
  const u = update as TgUpdate;
  const candidates = [
    ...leniently('Telegram message', () => [fromMessage(u.message, false)]),
    ...leniently('Telegram edited message', () => [fromMessage(u.edited_message, true)]),
    ...leniently('Telegram callback query', () => [u.callback_query ? fromCallbackQuery(u.callback_query) : undefined]),
    ...leniently('Telegram reaction', () => [isRecord(u.message_reaction) ? fromReaction(u.message_reaction, u.update_id) : undefined]),
  ];
  // Member changes, polls answers, inline queries, a message's anonymous reaction counts
  // (message_reaction_count, which name no one): not conversation content. Channel posts are the
  // channel's own admins writing, and a reply keyed on the channel would go to every subscriber.
  // Business-account updates (business_message…) also carry the owner's own outgoing messages, and a
  // reply needs a business_connection_id that the handle does not keep: they are ignored too.
  return candidates.filter((event): event is InboundMessageEvent | InboundMovedEvent => event !== undefined);
}

/** Telegram's limit for media captions; longer text goes as its own message. */
const CAPTION_LIMIT = 1024;
const TEXT_LIMIT = 4096;

const METHODS: Record<string, { method: string; field: string }> = {
  image: { method: 'sendPhoto', field: 'photo' },
  video: { method: 'sendVideo', field: 'video' },
  audio: { method: 'sendAudio', field: 'audio' },
  sticker: { method: 'sendSticker', field: 'sticker' },
  file: { method: 'sendDocument', field: 'document' },
};

/**
 * sendDocument by URL "will currently only work for GIF, PDF and ZIP files" (Bot API): any other
 * document (a .docx, a photo too large for sendPhoto) is uploaded instead.
 */
const LINKABLE_DOCUMENT_TYPE = /^(image\/gif|application\/pdf|application\/(x-)?zip|application\/x-zip-compressed)$/i;
const LINKABLE_DOCUMENT_NAME = /\.(gif|pdf|zip)$/i;

/** What we send as a document (mediaLimits.file); Telegram takes uploads up to 50 MB. */
const DOCUMENT_MAX_BYTES = 20 * MB;

/** By its type when it has one (our files are served with theirs); else by its name's extension. */
function linkable(attachment: Attachment): boolean {
  if (attachment.mimeType) return LINKABLE_DOCUMENT_TYPE.test(attachment.mimeType.split(';')[0]!.trim());
  return LINKABLE_DOCUMENT_NAME.test(attachment.name ?? lastSegment(attachment.url) ?? '');
}

function lastSegment(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '') || undefined;
  } catch {
    return undefined;
  }
}

/**
 * sendDocument as multipart/form-data with the file itself: fetched when the part is sent, within
 * the document limit. Both transfers are given time for the file's size (transferTimeoutMs), the
 * download up to halfway to the send's deadline, the upload up to it. The upload carries its name,
 * which Telegram shows.
 */
function uploadCall(url: string, fields: Record<string, unknown>, attachment: Attachment, context: SendContext): ProviderCall {
  return {
    url,
    // fetch writes the multipart content-type itself, with its boundary.
    headers: {},
    body: async () => {
      // Our stored files know their size; one that does not may be as large as a document may be.
      const expected = typeof attachment.size === 'number' && attachment.size > 0 ? Math.min(attachment.size, DOCUMENT_MAX_BYTES) : DOCUMENT_MAX_BYTES;
      // The download leaves the upload as much time: both move the same bytes.
      const fetchContext = { ...context, maxMediaBytes: DOCUMENT_MAX_BYTES, timeoutMs: transferTimeoutMs(expected, halfwayTo(context.deadlineMs)) };
      const file = await downloadMedia(attachment.url, {}, fetchContext, attachment.mimeType);
      // The file's store not answering is worth a retry (the URL is signed again); a file gone or too large stays so.
      if (!file.ok) return { ok: false, retryable: file.status === 502, error: `Could not fetch the file to upload: ${file.error}` };
      const form = new FormData();
      for (const [key, value] of Object.entries(fields)) form.append(key, String(value));
      const type = attachment.mimeType ?? file.contentType;
      form.append('document', new Blob([file.bytes], { type }), attachment.name ?? lastSegment(attachment.url) ?? 'document');
      return { form, bytes: file.bytes.length };
    },
  };
}

function telegramCalls(message: OutboundSend, base: string, context: SendContext): { calls: ProviderCall[]; primary: number } {
  const to = destination(message.to);
  const call = (method: string, body: Record<string, unknown>) => jsonCall(`${base}/${method}`, { ...to, ...body });
  const calls: ProviderCall[] = [];
  let text = message.text;
  let primary = -1;
  for (const attachment of message.attachments) {
    if (attachment.type === 'location' || attachment.type === 'contact') {
      text = [text, attachment.url].filter(Boolean).join('\n');
      continue;
    }
    const { method, field } = METHODS[attachment.type] ?? { method: 'sendDocument', field: 'document' };
    const extra: Record<string, unknown> = {};
    if (primary === -1 && text && method !== 'sendSticker' && text.length <= CAPTION_LIMIT) {
      extra.caption = text;
      primary = calls.length;
    }
    // Only a web URL can be fetched here; anything else goes as it is, for Telegram to refuse.
    const upload = method === 'sendDocument' && !linkable(attachment) && /^https?:\/\//i.test(attachment.url);
    calls.push(upload ? uploadCall(`${base}/${method}`, { ...to, ...extra }, attachment, context) : call(method, { [field]: attachment.url, ...extra }));
  }
  if (primary === -1 && text) {
    calls.unshift(...splitText(text, TEXT_LIMIT).map((part) => call('sendMessage', { text: part })));
    primary = 0;
  }
  return { calls, primary: Math.max(primary, 0) };
}

/** The new id of a group upgraded to a supergroup, from Telegram's refusal of a send to its old one. */
function migratedTo(body: unknown): string | undefined {
  const id = isRecord(body) && isRecord(body.parameters) ? body.parameters.migrate_to_chat_id : undefined;
  return typeof id === 'number' && Number.isSafeInteger(id) ? String(id) : undefined;
}

/** Sends every part to `message.to`; a refusal says whether the chat moved (migratedTo). */
async function sendTo(message: OutboundSend, base: string, context: SendContext): Promise<{ result: SendResult; movedTo?: string }> {
  const { calls, primary } = telegramCalls(message, base, context);
  // message_id is only unique per chat (not per topic): the id is prefixed with the chat's, like inbound ids.
  const chatId = destination(message.to).chat_id;
  let movedTo: string | undefined;
  const dialect: ProviderDialect = {
    messageId(body) {
      if (!isRecord(body) || body.ok !== true || !isRecord(body.result)) return undefined;
      const id = body.result.message_id;
      return typeof id === 'number' ? `${chatId}:${id}` : undefined;
    },
    errorMessage(body) {
      // Read with the refusal that ends the send (the parts stop at the first one).
      movedTo = migratedTo(body);
      return isRecord(body) && typeof body.description === 'string' ? body.description : undefined;
    },
    errorStatus: (body) => {
      const code = isRecord(body) ? body.error_code : undefined;
      return typeof code === 'number' && Number.isInteger(code) && code >= 400 && code <= 599 ? code : undefined;
    },
    // Flood control: {"error_code":429,"parameters":{"retry_after":45}}.
    retryAfter: (body) => {
      const seconds = isRecord(body) && isRecord(body.parameters) ? body.parameters.retry_after : undefined;
      return typeof seconds === 'number' && seconds > 0 ? seconds : undefined;
    },
  };
  // Telegram has no idempotency key either; the queue's single delivery is what prevents resends.
  const result = await callProviderParts(calls, primary, context, dialect);
  return result.ok || movedTo === undefined ? { result } : { result, movedTo };
}

const FILE_SCHEME = 'telegram-file://';

/** Bots may download files up to 20 MB; getFile refuses a larger one ("file is too big"), which Telegram still has. */
const explainGetFile = (body: unknown): MediaFailure | undefined =>
  isRecord(body) && typeof body.description === 'string' && /file is too big/i.test(body.description)
    ? { ok: false, status: 413, error: 'Telegram lets bots download files up to 20 MB, and this one is larger (open it in the Telegram app)' }
    : undefined;

/** getFile gives the file's path; the download URL holds the bot token, so it never leaves here. */
async function fetchTelegramFile(reference: string, context: SendContext): Promise<MediaResult | undefined> {
  const access = mediaAccess(reference, FILE_SCHEME, 'botToken', context);
  if (!access || 'ok' in access) return access;
  const bot = `bot${access.secret}`;
  const meta = await getProviderJson(`${context.baseUrl}/${bot}/getFile?file_id=${encodeURIComponent(access.id)}`, {}, context, explainGetFile);
  if (!meta.ok) return meta;
  const file = isRecord(meta.body) && isRecord(meta.body.result) ? meta.body.result : {};
  const large = refuseLarge(file.file_size, context);
  if (large) return large;
  if (typeof file.file_path !== 'string' || !file.file_path) return { ok: false, status: 404, error: 'Telegram has no file for this id' };
  return downloadMedia(`${context.baseUrl}/file/${bot}/${file.file_path}`, {}, context);
}

export const telegramAdapter: ChannelAdapter = {
  channel: 'telegram',
  credentialDefaults: {
    botToken: { env: 'TELEGRAM_BOT_TOKEN', dev: '100000001:dev-telegram-bot-token' },
    secretToken: { env: 'TELEGRAM_SECRET_TOKEN', dev: 'dev-telegram-secret-token' },
  },
  defaultBaseUrl: 'https://api.telegram.org',
  verify: (request, credentials) =>
    safeEqual(request.headers['x-telegram-bot-api-secret-token'], credential(credentials, 'secretToken')),
  normalize: (request) => normalizeTelegram(request.rawBody),
  ack: ackTelegram,
  // Bots may write to a chat at any time once the user has started it.
  window: () => ({ allowed: true }),
  fetchMedia: fetchTelegramFile,
  // What the Bot API fetches from a URL: photos up to 5 MB, other files up to 20 MB.
  mediaLimits: { image: 5 * MB, file: 20 * MB },
  // Bots hear of no delivery or read.
  reportsStatuses: false,
  async send(message: OutboundSend, context: SendContext): Promise<SendResult> {
    const token = credential(context.credentials, 'botToken');
    if (!token) return missingCredential('botToken');
    const base = `${context.baseUrl}/bot${token}`;
    // The parts taken so far, should the rest go elsewhere.
    let progress = context.resume;
    const tracked: SendContext = {
      ...context,
      onPartSent: async (sent) => {
        progress = sent;
        await context.onPartSent?.(sent);
      },
    };
    const { result, movedTo } = await sendTo(message, base, tracked);
    // A group upgraded to a supergroup has a new chat id, which Telegram names when it refuses a send
    // to the old one: the reply goes there instead (once; the parts already taken are not sent again).
    if (movedTo === undefined || movedTo === destination(message.to).chat_id) return result;
    return (await sendTo({ ...message, to: movedTo }, base, { ...tracked, ...(progress ? { resume: progress } : {}) })).result;
  },
};
