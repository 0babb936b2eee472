import type { FragmentDefinitionNode, GraphQLResolveInfo, SelectionSetNode } from 'graphql';

/**
 * Whether the field being resolved selects any of `names` on its result (through inline
 * fragments and named fragments too). Conservative: `@skip`/`@include` are not evaluated,
 * so a field that may be skipped counts as selected.
 */
export function selectsAny(info: Pick<GraphQLResolveInfo, 'fieldNodes' | 'fragments'>, names: readonly string[]): boolean {
  const seen = new Set<string>();
  const visit = (set: SelectionSetNode | undefined): boolean =>
    (set?.selections ?? []).some((selection) => {
      if (selection.kind === 'Field') return names.includes(selection.name.value);
      if (selection.kind === 'InlineFragment') return visit(selection.selectionSet);
      if (seen.has(selection.name.value)) return false;
      seen.add(selection.name.value);
      const fragment: FragmentDefinitionNode | undefined = info.fragments[selection.name.value];
      // An unknown fragment cannot pass validation; if it ever did, assume the worst.
      return fragment ? visit(fragment.selectionSet) : true;
    });
  return info.fieldNodes.some((node) => visit(node.selectionSet));
}
