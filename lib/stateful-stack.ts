import { Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { AgentDirectory, type AgentDirectoryProps } from './constructs/agent-directory';
import { ConversaTable, type ConversaTableProps } from './constructs/conversa-table';

/** Properties of {@link StatefulStack}. */
export interface StatefulStackProps extends StackProps {
  /**
   * Options of the single table.
   * @default - RETAIN, deletion protection on, pinned logical id
   */
  readonly table?: ConversaTableProps;
  /**
   * Options of the agents' user pool.
   * @default - RETAIN, PLUS feature plan, pinned logical id
   */
  readonly agents?: AgentDirectoryProps;
}

/**
 * What a redeploy must never lose: the table holding every conversation and the user pool
 * holding every agent. Kept apart from the stateless stack, which can be destroyed freely.
 */
export class StatefulStack extends Stack {
  public readonly table: ConversaTable;
  public readonly agents: AgentDirectory;

  constructor(scope: Construct, id: string, props: StatefulStackProps = {}) {
    super(scope, id, { description: 'Conversa data: the single DynamoDB table and the agent user pool', ...props });
    this.table = new ConversaTable(this, 'Data', props.table);
    this.agents = new AgentDirectory(this, 'Agents', props.agents);
  }
}
