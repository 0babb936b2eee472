import { type FragmentDefinitionNode, type OperationDefinitionNode, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { selectsAny } from './selection.js';

/** The info of the operation's first root field, as graphql-js passes it to a resolver. */
function infoOf(query: string) {
  const document = parse(query);
  const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition')!;
  const fragments = Object.fromEntries(
    document.definitions
      .filter((d): d is FragmentDefinitionNode => d.kind === 'FragmentDefinition')
      .map((fragment) => [fragment.name.value, fragment]),
  );
  return { fieldNodes: [operation.selectionSet.selections[0]] as never, fragments };
}

describe('selectsAny', () => {
  const names = ['capacity', 'remaining'];
  it('sees fields selected directly, in inline fragments and in named fragments (also nested)', () => {
    expect(selectsAny(infoOf('{ c { allowed reason used } }'), names)).toBe(false);
    expect(selectsAny(infoOf('{ c { allowed capacity } }'), names)).toBe(true);
    expect(selectsAny(infoOf('{ c { allowed ... on D { remaining } } }'), names)).toBe(true);
    expect(selectsAny(infoOf('{ c { ...a } } fragment a on D { allowed ...b } fragment b on D { remaining }'), names)).toBe(true);
    expect(selectsAny(infoOf('{ c { ...a } } fragment a on D { allowed }'), names)).toBe(false);
  });
  it('counts a field under @skip or @include as selected, and terminates on fragment cycles', () => {
    expect(selectsAny(infoOf('{ c { allowed capacity @skip(if: true) } }'), names)).toBe(true);
    expect(selectsAny(infoOf('{ c { ...a } } fragment a on D { ...a allowed }'), names)).toBe(false);
  });
  it("looks at the decision's own fields only, not at nested objects' fields of the same name", () => {
    expect(selectsAny(infoOf('{ c { nested { capacity } } }'), names)).toBe(false);
  });
});
