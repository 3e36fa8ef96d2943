/**
 * The customer-service window as agents see it on a conversation. The adapter's own `window()`
 * decides (so the view can never disagree with what a send would do); `serviceWindow` only
 * supplies when the current state ends.
 */
import type { Channel, ConversationWindow } from '../domain/types';
import { isProviderChannel } from '../domain/types';
import { getAdapter } from './registry';
import type { WindowDecision } from './types';

/**
 * When the customer last wrote, as the provider's window counts it: `windowFrom`, kept when a
 * message arrived late (the provider retried its webhook for hours), else its arrival.
 */
export function windowStart(c: { lastInboundAt?: string | undefined; windowFrom?: string | undefined }): string | undefined {
  return c.windowFrom ?? c.lastInboundAt;
}

export function conversationWindow(channel: Channel, lastInboundAt: string | undefined, now = new Date()): ConversationWindow {
  if (!isProviderChannel(channel)) return { state: 'open' };
  const adapter = getAdapter(channel);
  const decision = adapter.window(lastInboundAt, now, false);
  const last = lastInboundAt ? Date.parse(lastInboundAt) : NaN;
  const rule = adapter.serviceWindow;
  const closesAt = (ms: number | undefined) => (ms === undefined || Number.isNaN(last) ? {} : { closesAt: new Date(last + ms).toISOString() });
  if (!decision.allowed) return { state: decision.code === 'template_required' ? 'template_required' : 'closed' };
  if (decision.tag) return { state: 'tag_required', ...closesAt(rule?.taggedMs) };
  return { state: 'open', ...closesAt(rule?.openMs) };
}

/** A customer who texted STOP: Twilio refuses every send to them (error 21610) until they text START. */
const OPTED_OUT: WindowDecision = {
  allowed: false,
  code: 'opted_out',
  message: 'The customer opted out of texts (they sent STOP): the provider refuses every message to this number until they text START.',
};

/**
 * Whether a send on a provider channel may go now: refused while the customer is opted out, else
 * as the adapter's window decides. Every send's check (replies, campaigns, timers) goes through it.
 */
export function sendDecision(
  c: { channel: Channel; optedOut?: { at: string } | undefined; lastInboundAt?: string | undefined; windowFrom?: string | undefined },
  now: Date,
  hasTemplate: boolean,
): WindowDecision {
  if (c.optedOut) return OPTED_OUT;
  if (!isProviderChannel(c.channel)) return { allowed: true };
  return getAdapter(c.channel).window(windowStart(c), now, hasTemplate);
}
