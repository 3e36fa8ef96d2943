import { readFileSync } from 'node:fs';
import { GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ChannelNotConfiguredError,
  NOT_CONFIGURED_TTL_MS,
  CREDENTIALS_TTL_MS,
  DEV_CREDENTIALS,
  baseUrl,
  clearCredentialCache,
  credentialsFromEnv,
  loadCredentials,
} from '../../src/channels/credentials';
import { adapters, getAdapter } from '../../src/channels/registry';
import { PROVIDER_CHANNELS } from '../../src/domain/types';

const secrets = mockClient(SecretsManagerClient);
const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:conversa/whatsapp-AbCdEf';

beforeEach(() => {
  secrets.reset();
  clearCredentialCache();
});

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('registry', () => {
  it('has one adapter per provider channel, named by its channel', () => {
    expect(Object.keys(adapters).sort()).toEqual([...PROVIDER_CHANNELS].sort());
    for (const channel of PROVIDER_CHANNELS) expect(getAdapter(channel).channel).toBe(channel);
  });
});

describe('credentials from the environment', () => {
  it('falls back to the documented development defaults', async () => {
    for (const name of ['WHATSAPP_APP_SECRET', 'WHATSAPP_VERIFY_TOKEN', 'WHATSAPP_ACCESS_TOKEN', 'WHATSAPP_PHONE_NUMBER_ID', 'WHATSAPP_SECRET_ARN']) {
      vi.stubEnv(name, '');
    }
    expect(await loadCredentials('whatsapp')).toEqual({
      appSecret: 'dev-whatsapp-app-secret',
      verifyToken: 'dev-whatsapp-verify-token',
      accessToken: 'dev-whatsapp-access-token',
      phoneNumberId: '100000000000001',
    });
    expect(DEV_CREDENTIALS.whatsapp.appSecret).toBe('dev-whatsapp-app-secret');
  });

  it('reads every CONTRACT variable of every channel', () => {
    const env = {
      WHATSAPP_APP_SECRET: 'w1', WHATSAPP_VERIFY_TOKEN: 'w2', WHATSAPP_ACCESS_TOKEN: 'w3', WHATSAPP_PHONE_NUMBER_ID: 'w4',
      MESSENGER_APP_SECRET: 'm1', MESSENGER_VERIFY_TOKEN: 'm2', MESSENGER_PAGE_ACCESS_TOKEN: 'm3',
      INSTAGRAM_APP_SECRET: 'i1', INSTAGRAM_VERIFY_TOKEN: 'i2', INSTAGRAM_ACCESS_TOKEN: 'i3',
      TELEGRAM_BOT_TOKEN: 't1', TELEGRAM_SECRET_TOKEN: 't2',
      TWILIO_ACCOUNT_SID: 's1', TWILIO_AUTH_TOKEN: 's2', TWILIO_FROM_NUMBER: 's3',
    };
    expect(credentialsFromEnv('whatsapp', env)).toEqual({ appSecret: 'w1', verifyToken: 'w2', accessToken: 'w3', phoneNumberId: 'w4' });
    expect(credentialsFromEnv('messenger', env)).toEqual({ appSecret: 'm1', verifyToken: 'm2', accessToken: 'm3' });
    expect(credentialsFromEnv('instagram', env)).toEqual({ appSecret: 'i1', verifyToken: 'i2', accessToken: 'i3' });
    expect(credentialsFromEnv('telegram', env)).toEqual({ botToken: 't1', secretToken: 't2' });
    expect(credentialsFromEnv('sms', env)).toEqual({ accountSid: 's1', authToken: 's2', fromNumber: 's3' });
    // Meta's app id has no default: without it, echoes are dropped.
    expect(credentialsFromEnv('messenger', { ...env, MESSENGER_APP_ID: '1517776481860111' })).toMatchObject({ appId: '1517776481860111' });
    expect(credentialsFromEnv('instagram', { ...env, INSTAGRAM_APP_ID: '42' })).toMatchObject({ appId: '42' });
    // Nor the Page's (account's) id: without it, every Page's entries are taken.
    expect(credentialsFromEnv('messenger', { ...env, MESSENGER_PAGE_ID: '107311788749211' })).toMatchObject({ accountId: '107311788749211' });
    expect(credentialsFromEnv('instagram', { ...env, INSTAGRAM_ACCOUNT_ID: '17841400000000000' })).toMatchObject({ accountId: '17841400000000000' });
  });

  it('documents every development default in the README, variable and exact value on one row', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const channel of PROVIDER_CHANNELS) {
      for (const { env, dev } of Object.values(adapters[channel].credentialDefaults)) {
        expect(readme, env).toContain(`| \`${env}\` | \`${dev}\` |`);
      }
      for (const { env } of Object.values(adapters[channel].optionalCredentials ?? {})) {
        expect(readme, env).toContain(`| \`${env}\` | none (optional) |`);
      }
    }
  });

  it('refuses to run a deployed function on the public development credentials', async () => {
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'ConversaStateless-WebhookFunction');
    vi.stubEnv('WHATSAPP_SECRET_ARN', '');
    await expect(loadCredentials('whatsapp')).rejects.toThrow(/WHATSAPP_SECRET_ARN/);
  });

  it('does not call Secrets Manager without a secret ARN', async () => {
    vi.stubEnv('TELEGRAM_SECRET_ARN', '');
    vi.stubEnv('TELEGRAM_BOT_TOKEN', '42:abc');
    expect(await loadCredentials('telegram')).toMatchObject({ botToken: '42:abc' });
    expect(secrets.calls()).toHaveLength(0);
  });
});

describe('credentials from Secrets Manager', () => {
  const secret = {
    WHATSAPP_APP_SECRET: 'prod-app-secret',
    WHATSAPP_VERIFY_TOKEN: 'prod-verify',
    WHATSAPP_ACCESS_TOKEN: 'prod-token',
    WHATSAPP_PHONE_NUMBER_ID: '5550001',
  };

  it('reads the secret named by <CHANNEL>_SECRET_ARN and maps its keys', async () => {
    vi.stubEnv('WHATSAPP_SECRET_ARN', ARN);
    vi.stubEnv('WHATSAPP_APP_SECRET', 'ignored-when-a-secret-is-configured');
    secrets.on(GetSecretValueCommand, { SecretId: ARN }).resolves({ SecretString: JSON.stringify(secret) });
    expect(await loadCredentials('whatsapp')).toEqual({
      appSecret: 'prod-app-secret',
      verifyToken: 'prod-verify',
      accessToken: 'prod-token',
      phoneNumberId: '5550001',
    });
  });

  it('caches per cold start and refreshes after the TTL', async () => {
    vi.stubEnv('WHATSAPP_SECRET_ARN', ARN);
    secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(secret) });
    const t0 = 1_000_000;
    await Promise.all([loadCredentials('whatsapp', t0), loadCredentials('whatsapp', t0)]);
    await loadCredentials('whatsapp', t0 + CREDENTIALS_TTL_MS - 1);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    await loadCredentials('whatsapp', t0 + CREDENTIALS_TTL_MS + 1);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('refuses a secret that lacks a key instead of falling back to a public dev default', async () => {
    vi.stubEnv('WHATSAPP_SECRET_ARN', ARN);
    secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ ...secret, WHATSAPP_APP_SECRET: undefined }) });
    await expect(loadCredentials('whatsapp')).rejects.toThrow(/lacks WHATSAPP_APP_SECRET/);
  });

  // As the stack creates it: placeholders, one generated key. Scanners post to such channels.
  it('answers a channel left with its placeholders as not configured, from the cache for a minute, telling the log once', async () => {
    vi.stubEnv('SMS_SECRET_ARN', ARN);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ TWILIO_ACCOUNT_SID: '', TWILIO_FROM_NUMBER: '', TWILIO_AUTH_TOKEN: 'generated' }) });
    const t0 = 2_000_000;
    const first = await Promise.allSettled([loadCredentials('sms', t0), loadCredentials('sms', t0), loadCredentials('sms', t0 + NOT_CONFIGURED_TTL_MS - 1)]);
    expect(first.map((r) => r.status === 'rejected' && r.reason instanceof ChannelNotConfiguredError)).toEqual([true, true, true]);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toBe(`the sms channel is not configured: its secret ${ARN} has only placeholders`);

    // Filled in meanwhile: picked up once the minute is over.
    secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ TWILIO_ACCOUNT_SID: 'AC1', TWILIO_FROM_NUMBER: '+1555', TWILIO_AUTH_TOKEN: 'tok' }) });
    expect(await loadCredentials('sms', t0 + NOT_CONFIGURED_TTL_MS + 1)).toEqual({ accountSid: 'AC1', authToken: 'tok', fromNumber: '+1555' });
    warn.mockRestore();
  });

  it('does not cache a failure', async () => {
    vi.stubEnv('SMS_SECRET_ARN', ARN);
    secrets
      .on(GetSecretValueCommand)
      .rejectsOnce(new Error('ThrottlingException'))
      .resolves({ SecretString: JSON.stringify({ TWILIO_ACCOUNT_SID: 'AC1', TWILIO_AUTH_TOKEN: 'tok', TWILIO_FROM_NUMBER: '+1555' }) });
    await expect(loadCredentials('sms')).rejects.toThrow('ThrottlingException');
    expect(await loadCredentials('sms')).toEqual({ accountSid: 'AC1', authToken: 'tok', fromNumber: '+1555' });
  });

  // Someone filled it in, wrongly, or the secret is gone: a channel that worked may be broken, and
  // the 5xx and dead-letter alarms must page someone rather than a 404 hide it.
  it.each([
    ['a secret that is not JSON', () => secrets.on(GetSecretValueCommand).resolves({ SecretString: 'plain-text' }), /is not a JSON object/],
    ['a secret that is a JSON list', () => secrets.on(GetSecretValueCommand).resolves({ SecretString: '["42:abc","s"]' }), /is not a JSON object/],
    ['a binary secret', () => secrets.on(GetSecretValueCommand).resolves({ SecretBinary: new Uint8Array([1, 2]) }), /is not a JSON object/],
    [
      'a secret that does not exist',
      () => secrets.on(GetSecretValueCommand).rejects(new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret.", $metadata: {} })),
      /can't find/,
    ],
  ])('answers %s as broken, not as not configured, and caches nothing', async (_, arrange, problem) => {
    vi.stubEnv('TELEGRAM_SECRET_ARN', ARN);
    arrange();
    const t0 = 3_000_000;
    await expect(loadCredentials('telegram', t0)).rejects.toThrow(problem);
    await expect(loadCredentials('telegram', t0 + 1)).rejects.not.toBeInstanceOf(ChannelNotConfiguredError);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('answers a secret whose typed-in credentials are partly missing as broken', async () => {
    vi.stubEnv('WHATSAPP_SECRET_ARN', ARN);
    secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ ...secret, WHATSAPP_ACCESS_TOKEN: '' }) });
    await expect(loadCredentials('whatsapp')).rejects.toThrow(`Secret ${ARN} for whatsapp has an empty WHATSAPP_ACCESS_TOKEN`);
    await expect(loadCredentials('whatsapp')).rejects.not.toBeInstanceOf(ChannelNotConfiguredError);
  });

  it.each([
    ['AccessDeniedException', 'User: arn:aws:sts::123456789012:assumed-role/webhook is not authorized to perform: secretsmanager:GetSecretValue'],
    ['ThrottlingException', 'Rate exceeded'],
    ['InternalServiceError', 'An error occurred on the server side.'],
  ])('leaves %s as it is: no "not configured", nothing cached', async (name, message) => {
    vi.stubEnv('TELEGRAM_SECRET_ARN', ARN);
    const error = Object.assign(new Error(message), { name });
    secrets.on(GetSecretValueCommand).rejects(error);
    const t0 = 4_000_000;
    await expect(loadCredentials('telegram', t0)).rejects.toMatchObject({ name, message });
    await expect(loadCredentials('telegram', t0 + 1)).rejects.not.toBeInstanceOf(ChannelNotConfiguredError);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('reads Meta’s optional app id when the secret has it, and does without it when it lacks it', async () => {
    const messenger = { MESSENGER_APP_SECRET: 'm1', MESSENGER_VERIFY_TOKEN: 'm2', MESSENGER_PAGE_ACCESS_TOKEN: 'm3' };
    vi.stubEnv('MESSENGER_SECRET_ARN', ARN);
    secrets
      .on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: JSON.stringify({ ...messenger, MESSENGER_APP_ID: '1517776481860111' }) })
      .resolvesOnce({ SecretString: JSON.stringify(messenger) })
      // A number typed without quotes may have lost digits on the way (2^53): refused, not misread.
      .resolvesOnce({ SecretString: JSON.stringify({ ...messenger, MESSENGER_APP_ID: 1517776481860111 }) });
    expect(await loadCredentials('messenger', 5_000_000)).toEqual({ appSecret: 'm1', verifyToken: 'm2', accessToken: 'm3', appId: '1517776481860111' });
    expect(await loadCredentials('messenger', 5_000_000 + CREDENTIALS_TTL_MS + 1)).toEqual({ appSecret: 'm1', verifyToken: 'm2', accessToken: 'm3' });
    await expect(loadCredentials('messenger', 5_000_000 + 2 * CREDENTIALS_TTL_MS + 2)).rejects.toThrow(`Secret ${ARN} for messenger has a number, not a string, as MESSENGER_APP_ID`);
  });

  it('names a key whose value is not a string for what it is, not as missing', async () => {
    vi.stubEnv('WHATSAPP_SECRET_ARN', ARN);
    secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ ...secret, WHATSAPP_PHONE_NUMBER_ID: 5550001 }) });
    await expect(loadCredentials('whatsapp')).rejects.toThrow(`Secret ${ARN} for whatsapp has a number, not a string, as WHATSAPP_PHONE_NUMBER_ID`);
  });
});

describe('baseUrl', () => {
  it('is the production API by default', () => {
    vi.stubEnv('WHATSAPP_API_BASE_URL', '');
    vi.stubEnv('TWILIO_API_BASE_URL', '');
    expect(baseUrl('whatsapp')).toBe('https://graph.facebook.com/v21.0');
    expect(baseUrl('sms')).toBe('https://api.twilio.com');
  });

  it('follows <CHANNEL>_API_BASE_URL (TWILIO_ for sms) without a trailing slash', () => {
    vi.stubEnv('TELEGRAM_API_BASE_URL', 'http://127.0.0.1:3000/local/providers/telegram/');
    vi.stubEnv('TWILIO_API_BASE_URL', 'http://127.0.0.1:3000/local/providers/sms');
    expect(baseUrl('telegram')).toBe('http://127.0.0.1:3000/local/providers/telegram');
    expect(baseUrl('sms')).toBe('http://127.0.0.1:3000/local/providers/sms');
  });
});
