/**
 * AWS list prices the cost model uses: the one place to update them.
 * Region us-east-1, on-demand, no free tier, first (most expensive) volume tier.
 * Taken from the AWS pricing pages as they stood on the date below; check them again before
 * quoting a figure to anyone.
 */
export const PRICES = {
  asOf: '2025-06-01',
  region: 'us-east-1',
  lambda: {
    /** arm64 (Graviton), per GB-second of billed duration (1 ms granularity). */
    armGbSecond: 0.0000133334,
    perMillionRequests: 0.2,
  },
  apiGateway: {
    /** HTTP API, per million requests of up to 512 KB. */
    httpPerMillionRequests: 1.0,
    /** WebSocket API, per million messages of up to 32 KB (both directions). */
    websocketPerMillionMessages: 1.0,
    websocketPerMillionConnectionMinutes: 0.25,
  },
  sqs: {
    /** FIFO queues, per million requests of up to 64 KB (a batch of 10 is one request). */
    fifoPerMillionRequests: 0.5,
  },
  dynamodb: {
    /** On-demand, Standard table class (prices since the November 2024 reduction). */
    perMillionWriteRequestUnits: 0.625,
    perMillionReadRequestUnits: 0.125,
  },
  scheduler: {
    /** EventBridge Scheduler, per million scheduled invocations. */
    perMillionInvocations: 1.0,
  },
  cloudwatchLogs: {
    /** Ingestion, per GB. */
    perGbIngested: 0.5,
  },
} as const;
