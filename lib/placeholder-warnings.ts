import { Annotations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Ids of the warnings for defaults that deploy but that a production deploy should not keep.
 * The app cannot tell a deploy from a synth, so it warns instead of refusing: every synth and
 * deploy prints them, and `cdk deploy --strict` fails on them.
 */
export const PLACEHOLDER_WARNINGS = {
  sesIdentity: 'conversa:placeholderSesIdentity',
  corsAnyOrigin: 'conversa:placeholderCorsAnyOrigin',
  alarmsWithoutActions: 'conversa:placeholderAlarmsWithoutActions',
} as const;

/** Warns on `scope` that it keeps the placeholder `warning`, and what to set instead. */
export function warnPlaceholder(scope: IConstruct, warning: keyof typeof PLACEHOLDER_WARNINGS, message: string): void {
  Annotations.of(scope).addWarningV2(PLACEHOLDER_WARNINGS[warning], message);
}
