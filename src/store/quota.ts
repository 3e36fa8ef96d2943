import { keys, type Key } from './keys';
import { updateIf } from './items';

/**
 * Adds `count` proactive recipients to the tally of `now`'s UTC hour if they fit under `limit`;
 * false (and nothing counted) when they do not. The tally expires two hours after `now` (an hour or more after its hour ends).
 */
export async function takeProactiveQuota(now: Date, count: number, limit: number): Promise<boolean> {
  return updateIf({
    Key: keys.proactiveQuota(now.toISOString().slice(0, 13)),
    UpdateExpression: 'ADD recipients :n SET expiresAt = :ttl',
    ConditionExpression: 'attribute_not_exists(recipients) OR recipients <= :room',
    ExpressionAttributeValues: { ':n': count, ':room': limit - count, ':ttl': Math.floor(now.getTime() / 1000) + 2 * 3600 },
  });
}

/** Gives back `count` recipients taken from `at`'s hour (a cancelled scheduled campaign's). */
export async function giveProactiveQuotaBack(at: Date, count: number): Promise<void> {
  await updateIf({
    Key: keys.proactiveQuota(at.toISOString().slice(0, 13)),
    UpdateExpression: 'ADD recipients :minus',
    ConditionExpression: 'recipients >= :n',
    ExpressionAttributeValues: { ':minus': -count, ':n': count },
  });
}

/** Adds one to `key`'s `counter` if it holds fewer than `limit`; false (nothing counted) when full. The item expires at `expiresAt` (epoch s). */
function takeOne(key: Key, counter: 'tickets' | 'messages', limit: number, expiresAt: number): Promise<boolean> {
  return updateIf({
    Key: key,
    UpdateExpression: 'ADD #count :one SET expiresAt = :ttl',
    ConditionExpression: 'attribute_not_exists(#count) OR #count < :limit',
    ExpressionAttributeNames: { '#count': counter },
    ExpressionAttributeValues: { ':one': 1, ':limit': limit, ':ttl': expiresAt },
  });
}

/**
 * Counts one upload ticket on `key` (an uploader's hour) if fewer than `limit` are counted there;
 * false (nothing counted) when the hour is full. The tally expires at `expiresAt` (epoch s).
 */
export function takeUploadTicket(key: Key, limit: number, expiresAt: number): Promise<boolean> {
  return takeOne(key, 'tickets', limit, expiresAt);
}

/**
 * Counts one message in the window starting at `windowStart` (epoch ms) of `key` (a web visitor,
 * or a network address) if the window has room; false (nothing counted) when it is full. The
 * tally expires with its window.
 */
export function takeSend(key: Key, windowStart: number, windowMs: number, limit: number): Promise<boolean> {
  return takeOne(key, 'messages', limit, Math.ceil((windowStart + windowMs) / 1000) + 60);
}

/** Takes back one message counted by takeSend (a send refused after it was counted). */
export async function giveSendBack(key: Key): Promise<void> {
  await updateIf({
    Key: key,
    UpdateExpression: 'ADD messages :minusOne',
    ConditionExpression: 'messages > :zero',
    ExpressionAttributeValues: { ':minusOne': -1, ':zero': 0 },
  });
}
