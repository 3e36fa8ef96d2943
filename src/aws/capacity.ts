/**
 * Counts the DynamoDB capacity units every request consumes (ReturnConsumedCapacity TOTAL is
 * free). The benchmark reads the totals to report units per message; in Lambda they feed
 * nothing but a debug log, and the overhead is a few additions per request.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

interface ConsumedCapacityLike {
  ReadCapacityUnits?: number;
  WriteCapacityUnits?: number;
  CapacityUnits?: number;
}

export const capacityTotals = { read: 0, write: 0, requests: 0 };

export function resetCapacityTotals(): void {
  capacityTotals.read = 0;
  capacityTotals.write = 0;
  capacityTotals.requests = 0;
}

const READ_COMMAND = /(Get|Query|Scan)/;

export function countConsumedCapacity(client: DynamoDBClient): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Record<string, unknown>;
      if (input && typeof input === 'object' && !('ReturnConsumedCapacity' in input)) {
        input.ReturnConsumedCapacity = 'TOTAL';
      }
      let result;
      try {
        result = await next(args);
      } catch (error) {
        capacityTotals.requests += 1;
        // DynamoDB bills a write whose condition fails (at least one unit) but reports nothing.
        if ((error as Error).name === 'ConditionalCheckFailedException') capacityTotals.write += 1;
        throw error;
      }
      const output = result.output as { ConsumedCapacity?: ConsumedCapacityLike | ConsumedCapacityLike[] };
      const consumed = output?.ConsumedCapacity;
      const list = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
      const isRead = READ_COMMAND.test(context.commandName ?? '');
      for (const entry of list) {
        const units = entry.CapacityUnits ?? 0;
        capacityTotals.read += entry.ReadCapacityUnits ?? (isRead ? units : 0);
        capacityTotals.write += entry.WriteCapacityUnits ?? (isRead ? 0 : units);
      }
      capacityTotals.requests += 1;
      return result;
    },
    { step: 'initialize', name: 'conversaConsumedCapacity' },
  );
}
