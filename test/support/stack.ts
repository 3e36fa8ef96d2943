/** Starts a local stack for one test file, on free ports, against the run's DynamoDB Local. */
import { inject } from 'vitest';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../../local/stack';

export async function startTestStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  return startLocalStack({
    httpPort: 0,
    wsPort: 0,
    dynamodbEndpoint: inject('dynamodbEndpoint'),
    tableName: `conversa-test-${crypto.randomUUID().slice(0, 8)}`,
    ...options,
  });
}
