/**
 * SDK clients, created once per cold start. Endpoints come from the standard
 * AWS_ENDPOINT_URL_<SERVICE> variables, so the local stack reaches its stand-ins
 * without any code path knowing it runs locally.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { countConsumedCapacity } from './capacity';

let documentClient: DynamoDBDocumentClient | undefined;
let sqsClient: SQSClient | undefined;
let managementClient: ApiGatewayManagementApiClient | undefined;

export function ddb(): DynamoDBDocumentClient {
  if (!documentClient) {
    const base = new DynamoDBClient({ maxAttempts: 4 });
    countConsumedCapacity(base);
    documentClient = DynamoDBDocumentClient.from(base, {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    });
  }
  return documentClient;
}

export function sqs(): SQSClient {
  sqsClient ??= new SQSClient({});
  return sqsClient;
}

export function connectionsApi(endpoint: string): ApiGatewayManagementApiClient {
  managementClient ??= new ApiGatewayManagementApiClient({ endpoint });
  return managementClient;
}
