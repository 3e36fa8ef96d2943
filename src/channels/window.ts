/**
 * The customer-service window as agents see it on a conversation. The adapter's own `window()`
 * decides (so the view can never disagree with what a send would do); `serviceWindow` only
 * supplies when the current state ends.
 */
import type { Channel, ConversationWindow } from '../domain/types';
import { isProviderChannel } from '../domain/types';
import { getAdapter } from './registry';

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
