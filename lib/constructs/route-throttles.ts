import type { CfnStage } from 'aws-cdk-lib/aws-apigatewayv2';
import type { IConstruct } from 'constructs';
import type { RouteThrottle } from '../../src/manifest';

/**
 * Per-route limits on top of the stage's (RouteSettings, which CDK's stage constructs do not
 * expose). The stage waits for those routes: API Gateway refuses settings for a route key that
 * does not exist yet.
 */
export function applyRouteThrottles(stage: IConstruct, throttled: readonly { routeKey: string; route: IConstruct; throttle: RouteThrottle }[]): void {
  if (throttled.length === 0) return;
  const cfn = stage.node.defaultChild as CfnStage;
  cfn.routeSettings = Object.fromEntries(
    throttled.map(({ routeKey, throttle }) => [routeKey, { ThrottlingRateLimit: throttle.rateLimit, ThrottlingBurstLimit: throttle.burstLimit }]),
  );
  for (const { route } of throttled) cfn.node.addDependency(route);
}
