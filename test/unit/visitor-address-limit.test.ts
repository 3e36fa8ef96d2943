/**
 * The per-address limit on web visitors' messages counts a network: an IPv4 address, or an IPv6
 * /64 (one host can take any address of it), an IPv4-mapped IPv6 address as its IPv4 address.
 * DynamoDB and the @connections API are mocked.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';

process.env.TABLE_NAME = 'conversa-test';
process.env.WS_CALLBACK_URL = 'https://example.execute-api.us-east-1.amazonaws.com/live';
process.env.AWS_REGION = 'us-east-1';
const ddbMock = mockClient(DynamoDBDocumentClient);
const wsMock = mockClient(ApiGatewayManagementApiClient);
const { addressNetwork, handleFrame } = await import('../../src/domain/realtime');

beforeEach(() => {
  ddbMock.reset();
  wsMock.reset();
});

describe('addressNetwork', () => {
  it('keeps an IPv4 address whole', () => {
    expect(addressNetwork('203.0.113.7')).toBe('203.0.113.7');
    expect(addressNetwork('203.0.113.8')).not.toBe(addressNetwork('203.0.113.7'));
  });

  it('gives every address of one IPv6 /64 the same network, however it is written', () => {
    const network = addressNetwork('2001:db8:85a3:8d3:1319:8a2e:370:7348');
    for (const same of ['2001:db8:85a3:8d3::1', '2001:0DB8:85A3:08D3:ffff:ffff:ffff:ffff', '2001:db8:85a3:8d3:0:0:0:0', '2001:db8:85a3:8d3::1.2.3.4', '2001:db8:85a3:8d3::1%eth0']) {
      expect(addressNetwork(same), same).toBe(network);
    }
  });

  it('tells IPv6 networks apart by their first 64 bits', () => {
    const network = addressNetwork('2001:db8:85a3:8d3::1');
    for (const other of ['2001:db8:85a3:8d4::1', '2001:db8:85a3::1', '2001:db9:85a3:8d3::1', '::1']) {
      expect(addressNetwork(other), other).not.toBe(network);
    }
  });

  it('counts an IPv4-mapped IPv6 address as its IPv4 address', () => {
    expect(addressNetwork('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(addressNetwork('::FFFF:cb00:7107')).toBe('203.0.113.7');
    expect(addressNetwork('0:0:0:0:0:ffff:203.0.113.7')).toBe('203.0.113.7');
    // Not mapped: an IPv6 network like any other.
    expect(addressNetwork('64:ff9b::203.0.113.7')).not.toBe('203.0.113.7');
  });

  it('keeps what is no IP address as it came', () => {
    expect(addressNetwork('not-an-ip')).toBe('not-an-ip');
  });
});

describe('a visitor message counted per network', () => {
  /** Sends a visitor's message from `sourceIp` with every address window full; answers the address window's key. */
  async function addressWindowOf(sourceIp: string): Promise<string> {
    ddbMock.reset();
    wsMock.reset();
    ddbMock.on(UpdateCommand).callsFake((input: { Key: { pk: string } }) => {
      if (input.Key.pk.startsWith('ADDRESS#')) throw new ConditionalCheckFailedException({ message: 'full', $metadata: {} });
      return {};
    });
    ddbMock.on(GetCommand).resolves({});
    wsMock.on(PostToConnectionCommand).resolves({});
    await handleFrame({ role: 'visitor', id: 'visitor-1' }, 'conn-1', JSON.stringify({ action: 'sendMessage', text: 'hi', clientMessageId: crypto.randomUUID() }), { sourceIp });
    const refused = JSON.parse(Buffer.from(wsMock.commandCalls(PostToConnectionCommand)[0]!.args[0].input.Data as Uint8Array).toString());
    expect(refused).toMatchObject({ type: 'error', code: 'rate_limited' });
    const keys = ddbMock.commandCalls(UpdateCommand).map((call) => (call.args[0].input.Key as { pk: string }).pk);
    const address = keys.filter((pk) => pk.startsWith('ADDRESS#'));
    expect(address).toHaveLength(1);
    return address[0]!;
  }

  it('shares one window between the addresses of a /64, and between an IPv4 client and its mapped form', async () => {
    const first = await addressWindowOf('2001:db8:85a3:8d3::1');
    expect(await addressWindowOf('2001:db8:85a3:8d3:dead:beef:0:2')).toBe(first);
    expect(await addressWindowOf('2001:db8:85a3:8d4::1')).not.toBe(first);
    expect(await addressWindowOf('::ffff:203.0.113.7')).toBe(await addressWindowOf('203.0.113.7'));
  });
});
