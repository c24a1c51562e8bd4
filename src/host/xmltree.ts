import XMLBuilder from 'fast-xml-builder';
import { XMLParser } from 'fast-xml-parser';

/** A node of a document parsed with `preserveOrder`: `{ tag: children, ':@': attributes }`. */
export type Node = Record<string, unknown> & { ':@'?: Record<string, string> };

// preserveOrder keeps the document exactly as libvirt wrote it when we rewrite parts of it.
const options = {
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: false,
  processEntities: true,
  suppressEmptyNode: true,
} as const;

export const parser = new XMLParser(options);
export const builder = new XMLBuilder({ ...options, format: false });

export function tagOf(node: Node): string | undefined {
  return Object.keys(node).find((k) => k !== ':@');
}

export function childrenOf(node: Node): Node[] {
  const tag = tagOf(node);
  const value = tag === undefined ? undefined : node[tag];
  return Array.isArray(value) ? (value as Node[]) : [];
}

export function child(node: Node, tag: string): Node | undefined {
  return childrenOf(node).find((c) => tagOf(c) === tag);
}

export function textOf(node: Node | undefined): string | undefined {
  if (!node) return undefined;
  return childrenOf(node)
    .map((c) => c['#text'])
    .filter((t): t is string => typeof t === 'string')
    .join('')
    .trim();
}
