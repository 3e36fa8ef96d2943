/**
 * Whether an error means a service we depend on is not answering (DynamoDB, SQS, Scheduler: an
 * outage, throttling past the SDK's retries, a request that ran out of the function's time)
 * rather than a bug of ours: callers answer it with 503 and a retry hint, not a 500.
 */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND']);
/** Throttling as the services name it (the SDK retried these already). */
const THROTTLING = new Set(['ThrottlingException', 'Throttling', 'ProvisionedThroughputExceededException', 'RequestLimitExceeded', 'TooManyRequestsException']);

export function isDependencyUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const e = error as Error & { code?: string; status?: number; $fault?: string; $retryable?: { throttling?: boolean } };
  // middy's early timeout and the SDK's own request timeout both name themselves so.
  if (e.name === 'TimeoutError') return true;
  if (e.$fault === 'server' || e.$retryable?.throttling || THROTTLING.has(e.name)) return true;
  // Our own SQS sender (./sqs-send SqsError) after its retries: the service's trouble, or throttling.
  if (typeof e.status === 'number' && e.status >= 500) return true;
  return e.code !== undefined && (NETWORK_CODES.has(e.code) || /Throttl/.test(e.code));
}
