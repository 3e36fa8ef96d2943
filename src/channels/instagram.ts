/**
 * Instagram Messaging: webhook object "instagram", same entry[].messaging[] shape and Send API as
 * Messenger. The default base URL is the Instagram API with Instagram Login (graph.instagram.com),
 * which matches an Instagram user access token; with Facebook Login point INSTAGRAM_API_BASE_URL
 * at graph.facebook.com and use the Page token.
 */
import { MB, utf8Bytes } from './common';
import { createMetaMessagingAdapter } from './meta';

export const instagramAdapter = createMetaMessagingAdapter({
  channel: 'instagram',
  object: 'instagram',
  defaultBaseUrl: 'https://graph.instagram.com/v21.0',
  credentialDefaults: {
    appSecret: { env: 'INSTAGRAM_APP_SECRET', dev: 'dev-instagram-app-secret' },
    verifyToken: { env: 'INSTAGRAM_VERIFY_TOKEN', dev: 'dev-instagram-verify-token' },
    accessToken: { env: 'INSTAGRAM_ACCESS_TOKEN', dev: 'dev-instagram-access-token' },
  },
  optionalCredentials: { appId: { env: 'INSTAGRAM_APP_ID' }, accountId: { env: 'INSTAGRAM_ACCOUNT_ID' } },
  echoSender: 'Instagram inbox',
  sendsMetadata: false,
  // Images (stickers go as images) up to 8 MB; video, audio and files up to 25 MB.
  mediaLimits: { image: 8 * MB, sticker: 8 * MB, file: 25 * MB },
  // The formats Meta lists for Instagram messages; its only documents are PDFs, so a .docx (or an
  // image it takes in no format, a WebP) is refused when the agent sends it, not after.
  mediaTypes: {
    kinds: {
      image: /^image\/(jpeg|png|gif)$/i,
      video: /^video\/(mp4|ogg|webm|quicktime|x-msvideo|avi)$/i,
      audio: /^audio\/(aac|mp4|x-m4a|m4a|wav|x-wav|wave|vnd\.wave)$/i,
      file: /^application\/pdf$/i,
    },
    described: 'JPEG, PNG and GIF images, MP4, Ogg, WebM, MOV and AVI video, AAC, M4A, WAV and MP4 audio, and PDF documents',
  },
  // Instagram counts a text in UTF-8 bytes: at most 1000.
  textLimit: { max: 1000, measure: utf8Bytes },
});
