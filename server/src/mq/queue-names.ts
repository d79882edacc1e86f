/**
 * How a gateway names its subscription queues: `topicgate.<gateway-id>.<subscription id>`
 * (docs/protocol.md §12.2). Operators find a gateway's queues by this prefix,
 * and a reconnect declares the same names again.
 */
export function queuePrefixFor(gatewayId: string): string {
  return `topicgate.${gatewayId}.`;
}
