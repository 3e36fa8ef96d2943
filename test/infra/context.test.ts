/** How the CDK app reads its context (lib/context.ts), without synthesizing anything. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONTEXT_KEYS, readConversaContext } from '../../lib/context';
import { HTTP_ROUTES, WS_ROUTE_THROTTLES } from '../../src/manifest';

/** Reads `values` as the app's context, as `-c key=value` strings or cdk.json JSON. */
const read = (values: Record<string, unknown> = {}) => readConversaContext((key) => values[key]);
const refused = (values: Record<string, unknown>) => () => read(values);

describe('context', () => {
  it('reads exactly the keys it lists', () => {
    const asked = new Set<string>();
    readConversaContext((key) => {
      asked.add(key);
      return undefined;
    });
    expect([...asked].sort()).toEqual([...CONTEXT_KEYS].sort());
  });

  it('leaves every setting to its default when nothing is set, and runs cdk-nag', () => {
    expect(read()).toEqual({ config: { webSocketAccessLogging: false, sourceMaps: true, consolePasswordAuth: false, inboxIndex: 'slim', dashboard: true }, nag: true });
    // An empty value (`-c mailFrom=`) is no value.
    expect(read({ mailFrom: '', nag: null })).toEqual(read());
  });

  it('passes strings through, splits allowedOrigins and reads numbers from strings or JSON', () => {
    const { config } = read({
      sesIdentity: 'acme.test',
      allowedOrigins: ' https://www.acme.test, https://console.acme.test ,',
      logLevel: 'DEBUG',
      visitorAddressSends: '250',
      reengageAfterSeconds: 3600,
    });
    expect(config).toMatchObject({
      sesIdentity: 'acme.test',
      allowedOrigins: ['https://www.acme.test', 'https://console.acme.test'],
      logLevel: 'DEBUG',
      visitorAddressSends: 250,
      reengageAfterSeconds: 3600,
    });
  });

  it('refuses an allowedOrigins that names no origin', () => {
    expect(refused({ allowedOrigins: ' , ' })).toThrow('context allowedOrigins must name origins separated by commas, got  , ');
  });

  it('refuses a log level or message count that cannot be meant', () => {
    expect(refused({ logLevel: 'debug' })).toThrow('context logLevel must be DEBUG, INFO, WARN or ERROR, got debug');
    expect(refused({ visitorAddressSends: '2.5' })).toThrow('context visitorAddressSends must be a whole number of messages, got 2.5');
    expect(read({ visitorUploadsPerHour: '30', agentUploadsPerHour: 1200 }).config).toMatchObject({ visitorUploadsPerHour: 30, agentUploadsPerHour: 1200 });
    expect(refused({ visitorUploadsPerHour: '0' })).toThrow('context visitorUploadsPerHour must be a whole number of upload tickets, got 0');
    expect(refused({ agentUploadsPerHour: 'lots' })).toThrow('context agentUploadsPerHour must be a whole number of upload tickets, got lots');
  });

  it('reads engagementConcurrency as a number, left to the stack to bound, or none', () => {
    expect(read({ engagementConcurrency: '35' }).config).toMatchObject({ engagementConcurrency: 35 });
    expect(read({ engagementConcurrency: 0 }).config).toMatchObject({ engagementConcurrency: 0 });
    expect(read({ engagementConcurrency: 'none' }).config).toMatchObject({ engagementConcurrency: 'none' });
    expect(refused({ engagementConcurrency: 'off' })).toThrow("context engagementConcurrency must be a number or none, got off");
  });

  it('reads timers as numbers, left to the stack to bound, and refuses what is not a number', () => {
    expect(read({ autoResolveAfterSeconds: '0.5', emailFallbackDelaySeconds: '0' }).config).toMatchObject({ autoResolveAfterSeconds: 0.5, emailFallbackDelaySeconds: 0 });
    expect(refused({ reengageAfterSeconds: '1d' })).toThrow('context reengageAfterSeconds must be a number of seconds, got 1d');
  });

  it('reads flags from cdk.json booleans and -c strings', () => {
    expect(read({ webSocketAccessLogging: true, sourceMaps: 'false', consolePasswordAuth: 'true', inboxIndexAll: true, dashboard: false, nag: false })).toEqual({
      config: { webSocketAccessLogging: true, sourceMaps: false, consolePasswordAuth: true, inboxIndex: 'all', dashboard: false },
      nag: false,
    });
  });

  it('reads 1 and 0 as true and false', () => {
    expect(read({ webSocketAccessLogging: '1', sourceMaps: '0', consolePasswordAuth: 1, inboxIndexAll: '1', dashboard: '0', nag: 0 })).toEqual({
      config: { webSocketAccessLogging: true, sourceMaps: false, consolePasswordAuth: true, inboxIndex: 'all', dashboard: false },
      nag: false,
    });
  });

  it('reads the inbox index stage from inboxIndex, or from inboxIndexAll as tables deployed before the migration path set it', () => {
    for (const stage of ['slim', 'all', 'migrating', 'switched', 'migrated']) expect(read({ inboxIndex: stage }).config.inboxIndex).toBe(stage);
    expect(read({ inboxIndexAll: 'true' }).config.inboxIndex).toBe('all');
    expect(read({ inboxIndexAll: false }).config.inboxIndex).toBe('slim');
    // Saying the same twice is no contradiction: the migration's first step replaces one with the other.
    expect(read({ inboxIndexAll: true, inboxIndex: 'all' }).config.inboxIndex).toBe('all');
    expect(read({ inboxIndexAll: '0', inboxIndex: 'slim' }).config.inboxIndex).toBe('slim');
    expect(read().config).not.toHaveProperty('inboxIndexAll');
  });

  it('refuses an inbox index stage it does not know, and an inboxIndexAll that says another', () => {
    expect(refused({ inboxIndex: 'ALL' })).toThrow('context inboxIndex must be slim, all, migrating, switched or migrated, got ALL');
    // cdk.json still holding inboxIndexAll=true while -c inboxIndex=migrating starts the migration.
    expect(refused({ inboxIndexAll: true, inboxIndex: 'migrating' })).toThrow(
      'context inboxIndexAll=true (inboxIndex all) and inboxIndex=migrating disagree: remove inboxIndexAll and keep inboxIndex alone (README, Deploy)',
    );
    expect(refused({ inboxIndexAll: 'true', inboxIndex: 'slim' })).toThrow(/disagree/);
    expect(refused({ inboxIndexAll: false, inboxIndex: 'migrated' })).toThrow(/context inboxIndexAll=false \(inboxIndex slim\) and inboxIndex=migrated disagree/);
  });

  it.each(['webSocketAccessLogging', 'sourceMaps', 'consolePasswordAuth', 'inboxIndexAll', 'dashboard', 'nag'])('refuses a %s that is neither true nor false', (key) => {
    for (const value of ['yes', 'no', 'False', 'off', '2']) {
      expect(refused({ [key]: value })).toThrow(`context ${key} must be true or false (or 1 or 0), got ${value}`);
    }
  });
});

describe('README', () => {
  it('lists every context key the app reads in the Configuration table, and no other', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const configuration = readme.slice(readme.indexOf('\n## Configuration'), readme.indexOf('\n## Deploy'));
    // A row's first cell names one key or several (`a`, `b`); environment variables are UPPER_CASE.
    const documented = [...configuration.matchAll(/^\| ((?:`[a-z]\w*`(?:, )?)+) \|/gm)].flatMap((row) => row[1]!.match(/[a-z]\w*/g) ?? []);
    expect(documented.sort()).toEqual([...CONTEXT_KEYS].sort());
  });

  it('names every route with a limit of its own in the Throttling paragraph, so a platform team knows what callers get 429 past', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const throttling = readme.slice(readme.indexOf('\nThrottling: '), readme.indexOf('\n\n', readme.indexOf('\nThrottling: ') + 1));
    const throttled = [...HTTP_ROUTES.filter((spec) => spec.throttle).map((spec) => `${spec.method} ${spec.path}`), ...Object.keys(WS_ROUTE_THROTTLES)];
    expect(throttled.length).toBeGreaterThan(0);
    expect(throttled.filter((routeKey) => !throttling.includes(`\`${routeKey}\``))).toEqual([]);
  });
});
