import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Flattens a resolved CloudFormation value the way cdk-nag prints it in finding ids:
 * `{Ref: X}` → `<X>`, `{Fn::GetAtt: [X, Y]}` → `<X.Y>`, joins concatenated.
 */
function flatten(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (typeof value === 'object' && value !== null) {
    const node = value as Record<string, unknown>;
    if (Array.isArray(node['Fn::Join'])) {
      const [delimiter, items] = node['Fn::Join'] as [string, unknown[]];
      return items.map(flatten).join(delimiter);
    }
    if (node['Fn::Sub'] !== undefined) return flatten(node['Fn::Sub']);
    if (Array.isArray(node['Fn::GetAtt'])) {
      const [resource, attribute] = node['Fn::GetAtt'] as [unknown, unknown];
      return `<${flatten(resource)}.${flatten(attribute)}>`;
    }
    if (node['Fn::ImportValue'] !== undefined) return flatten(node['Fn::ImportValue']);
    if (node.Ref !== undefined) return `<${flatten(node.Ref)}>`;
  }
  return JSON.stringify(value);
}

/**
 * Acknowledges cdk-nag's AwsSolutions-IAM5 finding for one wildcard resource ARN on `scope`
 * (typically the role that received a grant). cdk-nag 3 matches acknowledgments by exact
 * finding id, so the id is computed from the ARN rather than copied from a report, and keeps
 * matching when logical ids move.
 */
export function acknowledgeWildcardResource(scope: IConstruct, arn: string, reason: string): void {
  const finding = flatten(Stack.of(scope).resolve(arn));
  Validations.of(scope).acknowledge({ id: `AwsSolutions-IAM5[Resource::${finding}]`, reason });
}
