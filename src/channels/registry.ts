/** The one list of provider channels. A new channel is one adapter module and one line here. */
import type { ProviderChannel } from '../domain/types';
import { instagramAdapter } from './instagram';
import { messengerAdapter } from './messenger';
import { smsAdapter } from './sms';
import { telegramAdapter } from './telegram';
import type { ChannelAdapter } from './types';
import { whatsappAdapter } from './whatsapp';

export const adapters: Readonly<Record<ProviderChannel, ChannelAdapter>> = {
  whatsapp: whatsappAdapter,
  messenger: messengerAdapter,
  instagram: instagramAdapter,
  telegram: telegramAdapter,
  sms: smsAdapter,
};

export function getAdapter(channel: ProviderChannel): ChannelAdapter {
  return adapters[channel];
}
