/** How a reply's files go to a provider: as their kind, as a document, or refused for their size. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { forProvider, sendingKinds } from '../../src/domain/media';
import { whatsappAdapter } from '../../src/channels/whatsapp';
import { telegramAdapter } from '../../src/channels/telegram';
import { instagramAdapter } from '../../src/channels/instagram';
import { scriptedFetch, sendContext } from '../channels/support';

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

  it('on Instagram, sends PDFs as documents and refuses a document or format it takes in no way, saying why', () => {
    const { mediaLimits, mediaTypes } = instagramAdapter;
    const kinds = (...files: ReturnType<typeof file>[]) => sendingKinds(files, mediaLimits, mediaTypes);
    expect(kinds(file('file', 'application/pdf', MB), file('image', 'image/png', MB), file('video', 'video/quicktime', MB), file('audio', 'audio/x-m4a', MB))).toEqual({
      kinds: ['file', 'image', 'video', 'audio'],
    });
    const docx = kinds(file('file', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', MB, 'contract.docx'));
    expect(docx.unsupported).toMatch(/^"contract\.docx" is application\/vnd\.openxml.*: this channel takes .*PDF documents$/);
    expect(kinds(file('image', 'image/webp', MB)).unsupported).toMatch(/^a file is image\/webp: /);
    // A PNG too large for an image cannot go as a document either: its size is the reason.
    expect(kinds(file('image', 'image/png', 9 * MB, 'scan.png'))).toEqual({ kinds: ['file'], tooLarge: '"scan.png" is 9 MB: this channel takes files of its kind (image) up to 8 MB' });
  });

  it('on WhatsApp, takes the document types Meta lists (PDF, Word, Excel, PowerPoint, text) and refuses a .zip or .odt when sent, saying why', () => {
    const { mediaLimits, mediaTypes } = whatsappAdapter;
    const kinds = (...files: ReturnType<typeof file>[]) => sendingKinds(files, mediaLimits, mediaTypes);
    const documents = ['application/pdf', 'application/msword', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'application/vnd.ms-excel', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'application/vnd.ms-powerpoint', 'application/vnd.openxmlformats-officedocument.presentationml.presentation', 'text/plain; charset=utf-8'];
    expect(kinds(...documents.map((type) => file('file', type, MB)))).toEqual({ kinds: documents.map(() => 'file') });
    expect(kinds(file('video', 'video/3gpp', MB), file('audio', 'audio/amr', MB))).toEqual({ kinds: ['video', 'audio'] });
    expect(kinds(file('file', 'application/zip', MB, 'photos.zip')).unsupported).toMatch(/^"photos\.zip" is application\/zip: this channel takes .*PDF, Word, Excel, PowerPoint and plain-text documents$/);
    expect(kinds(file('file', 'application/vnd.oasis.opendocument.text', MB, 'letter.odt')).unsupported).toMatch(/^"letter\.odt" is application\/vnd\.oasis/);
    // A format WhatsApp takes as no kind at all (a WebP is a sticker only, a WAV nothing) is no document either.
    expect(kinds(file('image', 'image/webp', MB)).unsupported).toMatch(/^a file is image\/webp: /);
    expect(kinds(file('audio', 'audio/wav', MB)).unsupported).toMatch(/^a file is audio\/wav: /);
    // A photo too large for an image still goes as a document, as before.
    expect(kinds(file('image', 'image/jpeg', 6 * MB))).toEqual({ kinds: ['file'] });
  });

  it('limits nothing without limits (the web widget, links)', () => {
    expect(sendingKinds([file('image', 'image/jpeg', 25 * MB)])).toEqual({ kinds: ['image'] });
  });
});

describe('forProvider', () => {
  const UPLOAD = '01JD5Q8Z7V4R0M3X6N2B9C1K8T';
  const kept = (type: string, mimeType: string, size: number, name?: string) => ({ ...file(type, mimeType, size, name), url: `conversa-media://media/agent/agent-1/${UPLOAD}` });
  /** The name the presigned URL answers with (Telegram and Meta name a file they fetch by it). */
  const disposition = (url: string) => new URL(url).searchParams.get('response-content-disposition');

  beforeEach(() => {
    // Presigning is local arithmetic: any credentials and bucket do.
    vi.stubEnv('MEDIA_BUCKET', 'conversa-unit-media');
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDUNIT');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'unit-secret');
  });

  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('names a photo it sends as a document when the agent gave it no name, and WhatsApp gets that filename', async () => {
    // Prepare: a 6 MB JPEG without a name (WhatsApp takes images up to 5 MB)
    const { fetch, calls } = scriptedFetch({ status: 200, body: { messages: [{ id: 'wamid.SENT1' }] } });

    // Act
    const [sent] = await forProvider([kept('image', 'image/jpeg', 6 * MB)], whatsappAdapter.mediaLimits);
    await whatsappAdapter.send({ to: '16505551234', text: '', attachments: [sent!], idempotencyKey: 'm', reference: 'c/m' }, sendContext('whatsapp', fetch));

    // Assess
    expect(sent).toMatchObject({ type: 'file', name: `${UPLOAD}.jpg` });
    expect(disposition(sent!.url)).toBe(`inline; filename*=UTF-8''${UPLOAD}.jpg`);
    expect(calls[0]?.json()).toMatchObject({ type: 'document', document: { link: sent!.url, filename: `${UPLOAD}.jpg` } });
  });

  it("keeps the agent's name, names a document by its type's extension, and names nothing it sends as its own kind", async () => {
    const [named, pdf, untyped, photo] = await forProvider(
      [kept('image', 'image/jpeg', 6 * MB, 'site.jpg'), kept('file', 'application/pdf', MB), kept('file', 'application/octet-stream', MB), kept('image', 'image/png', MB)],
      whatsappAdapter.mediaLimits,
    );

    expect(named).toMatchObject({ type: 'file', name: 'site.jpg' });
    expect(pdf).toMatchObject({ type: 'file', name: `${UPLOAD}.pdf` });
    expect(untyped).toMatchObject({ type: 'file', name: UPLOAD });
    expect(photo).toMatchObject({ type: 'image' });
    expect(photo).not.toHaveProperty('name');
  });

  it('names a document by the extension its type is known by, not a long or misleading subtype', async () => {
    const types: [string, string][] = [
      ['audio/x-wav', 'wav'],
      ['audio/wave', 'wav'],
      ['audio/wav', 'wav'],
      ['audio/x-m4a', 'm4a'],
      ['video/x-msvideo', 'avi'],
      ['video/x-matroska', 'mkv'],
      ['video/3gpp', '3gp'],
      ['text/calendar', 'ics'],
      ['application/x-zip-compressed', 'zip'],
      ['application/zip', 'zip'],
      ['application/gzip', 'gz'],
      ['application/vnd.rar', 'rar'],
      ['application/x-rar-compressed', 'rar'],
      ['application/x-7z-compressed', '7z'],
      ['application/epub+zip', 'epub'],
      ['application/vnd.oasis.opendocument.text', 'odt'],
      ['application/vnd.oasis.opendocument.spreadsheet', 'ods'],
      ['application/vnd.oasis.opendocument.presentation', 'odp'],
      ['Application/PDF; charset=binary', 'pdf'],
    ];

    const sent = await forProvider(
      types.map(([type]) => kept('file', type, MB)),
      whatsappAdapter.mediaLimits,
    );

    expect(sent.map((a) => a.name)).toEqual(types.map(([, extension]) => `${UPLOAD}.${extension}`));
  });

  it("gives the agent's name its type's extension when it has none and the file goes as a document", async () => {
    // Prepare: a 6 MB JPEG the agent named "receipt" (WhatsApp takes images up to 5 MB)
    const { fetch, calls } = scriptedFetch({ status: 200, body: { messages: [{ id: 'wamid.SENT2' }] } });

    // Act
    const sent = await forProvider(
      [
        kept('image', 'image/jpeg', 6 * MB, 'receipt'),
        kept('file', 'application/pdf', MB, 'Invoice v1.2'),
        kept('file', 'application/pdf', MB, 'contract.PDF'),
        kept('file', 'application/x-7z-compressed', MB, 'backup.7z'),
        kept('file', 'application/octet-stream', MB, 'notes'),
        kept('image', 'image/png', MB, 'diagram'),
      ],
      whatsappAdapter.mediaLimits,
    );
    await whatsappAdapter.send({ to: '16505551234', text: '', attachments: [sent[0]!], idempotencyKey: 'm', reference: 'c/m' }, sendContext('whatsapp', fetch));

    // Assess: an extension added where there was none; a name with one, or a type without one, as it was; a photo's name untouched
    expect(sent.map((a) => a.name)).toEqual(['receipt.jpg', 'Invoice v1.2.pdf', 'contract.PDF', 'backup.7z', 'notes', 'diagram']);
    expect(sent[5]).toMatchObject({ type: 'image' });
    expect(disposition(sent[0]!.url)).toBe(`inline; filename*=UTF-8''receipt.jpg`);
    expect(calls[0]?.json()).toMatchObject({ type: 'document', document: { filename: 'receipt.jpg' } });
  });

  it('leaves a link that is not one of our files as it is', async () => {
    const link = { type: 'file', url: 'https://example.com/brochure', mimeType: 'application/pdf' };

    expect(await forProvider([link], whatsappAdapter.mediaLimits)).toEqual([link]);
  });
});
