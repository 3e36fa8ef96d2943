/** How a reply's files go to a provider: as their kind, as a document, or refused for their size. */
import { describe, expect, it } from 'vitest';
import { sendingKinds } from '../../src/domain/media';
import { whatsappAdapter } from '../../src/channels/whatsapp';
import { telegramAdapter } from '../../src/channels/telegram';

const file = (type: string, mimeType: string, size: number, name?: string) => ({ type, url: 'conversa-media://media/agent/a/1', mimeType, size, ...(name ? { name } : {}) });
const MB = 1_000_000;

describe('sendingKinds', () => {
  it('keeps a file its kind when the provider takes it as that kind', () => {
    expect(sendingKinds([file('image', 'image/jpeg', 4 * MB), file('audio', 'audio/ogg; codecs=opus', MB)], whatsappAdapter.mediaLimits)).toEqual({ kinds: ['image', 'audio'] });
  });

  it('sends as a document what is too large for its kind, or of a type the kind does not take', () => {
    expect(sendingKinds([file('image', 'image/jpeg', 6 * MB), file('video', 'video/quicktime', MB)], whatsappAdapter.mediaLimits)).toEqual({ kinds: ['file', 'file'] });
  });

  it('says why a file too large even as a document cannot go', () => {
    const { kinds, tooLarge } = sendingKinds([file('video', 'video/mp4', 24 * MB, 'demo.mp4')], telegramAdapter.mediaLimits);
    expect(kinds).toEqual(['video']);
    expect(tooLarge).toBe('"demo.mp4" is 24 MB: this channel takes files up to 20 MB');
  });

  it('counts the files of one message together where the provider does', () => {
    expect(sendingKinds([file('image', 'image/png', 3 * MB), file('image', 'image/png', 3 * MB)], { image: 5 * MB, file: 5 * MB, perMessage: 5 * MB }).tooLarge).toBe(
      'the files are 6 MB together: this channel takes up to 5 MB in one message',
    );
  });

  it('limits nothing without limits (the web widget, links)', () => {
    expect(sendingKinds([file('image', 'image/jpeg', 25 * MB)])).toEqual({ kinds: ['image'] });
  });
});
