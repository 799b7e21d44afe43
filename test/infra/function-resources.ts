/**
 * One function of a synthesized stack and what belongs to it (its log group, role and role policy), found by the
 * function's own references, so tests of a stack with several functions look at the right ones.
 */
import type { Stack } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';

export type Resource = { Type: string; Properties: Record<string, unknown>; Metadata?: Record<string, unknown>; [k: string]: unknown };
export type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Sid?: string };

export const logicalId = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as Parameters<Stack['getLogicalId']>[0]);

export const actions = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);

/** Every action a starter function's role allows, sorted: grantEncryptDecrypt's six and two for its own logs. */
export const FUNCTION_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:Query',
  'kms:Decrypt',
  'kms:Encrypt',
  'kms:GenerateDataKey',
  'logs:CreateLogStream',
  'logs:PutLogEvents',
];

export interface FunctionResources {
  id: string;
  fn: Resource;
  logGroupId: string;
  logGroup: Resource;
  roleId: string;
  role: Resource;
  /** The statements of every policy attached to the function's role. */
  statements: Statement[];
  /** The one statement of the role's policies with an action starting with `prefix`. */
  statementFor(prefix: string): Statement;
}

export function functionResources(template: Template, stack: Stack, construct: lambda.Function): FunctionResources {
  const resources = template.toJSON().Resources as Record<string, Resource>;
  const id = logicalId(stack, construct);
  const fn = resources[id]!;
  const logGroupId = ((fn.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup).Ref;
  const roleId = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  const statements = Object.values(template.findResources('AWS::IAM::Policy') as Record<string, Resource>)
    .filter((p) => (p.Properties.Roles as unknown[]).some((r) => (r as { Ref?: string }).Ref === roleId))
    .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  return {
    id,
    fn,
    logGroupId,
    logGroup: resources[logGroupId]!,
    roleId,
    role: resources[roleId]!,
    statements,
    statementFor(prefix) {
      const found = statements.filter((s) => actions(s).some((a) => a.startsWith(prefix)));
      if (found.length !== 1) throw new Error(`${found.length} statements of ${roleId} with ${prefix} actions, not 1`);
      return found[0]!;
    },
  };
}
