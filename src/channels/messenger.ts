/** Facebook Messenger: webhook object "page", Send API on the Page's access token. */
import { MB, utf16Length } from './common';
import { createMetaMessagingAdapter } from './meta';

export const messengerAdapter = createMetaMessagingAdapter({
  channel: 'messenger',
  object: 'page',
  defaultBaseUrl: 'https://graph.facebook.com/v21.0',
  credentialDefaults: {
    appSecret: { env: 'MESSENGER_APP_SECRET', dev: 'dev-messenger-app-secret' },
    verifyToken: { env: 'MESSENGER_VERIFY_TOKEN', dev: 'dev-messenger-verify-token' },
    accessToken: { env: 'MESSENGER_PAGE_ACCESS_TOKEN', dev: 'dev-messenger-page-access-token' },
  },
  optionalCredentials: { appId: { env: 'MESSENGER_APP_ID' }, accountId: { env: 'MESSENGER_PAGE_ID' } },
  echoSender: 'Page inbox',
  sendsMetadata: true,
  // The Send API fetches attachments up to 25 MB.
  mediaLimits: { file: 25 * MB },
  // The Send API's text limit: 2000 characters.
  textLimit: { max: 2000, measure: utf16Length },
});
