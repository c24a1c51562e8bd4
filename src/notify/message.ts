/** What a notification says. Services without a title field put the title on the first line. */
export interface NotifyMessage {
  readonly title?: string;
  readonly body: string;
}

export function titledBody(message: NotifyMessage): string {
  return message.title ? `${message.title}\n${message.body}` : message.body;
}
