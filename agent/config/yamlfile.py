"""Read YAML text into plain data plus the line of every key, so errors can point at the file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from agent.config.base import ConfigError, ConfigProblem

__all__ = ["YamlDocument", "read_yaml"]

Path_ = tuple[str, ...]
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_NODES = 100_000  # anchors can make a small file a huge tree; lines are a help, not a must


@dataclass
class YamlDocument:
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    duplicates: list[ConfigProblem] = field(default_factory=list)

    def line_of(self, path: Path_) -> int | None:
        """The line of ``path``'s key, or of its nearest ancestor that is in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


def read_yaml(text: str, source: str) -> YamlDocument:
    """Parse one YAML document (safe tags only). Raises ConfigError with line and column on bad syntax."""
    try:
        loader = yaml.SafeLoader(text)  # the reader already rejects control characters here
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(source, [_syntax_problem(exc)]) from None
    document = YamlDocument(data)
    if node is not None:
        document.lines[()] = node.start_mark.line + 1
        _Walker(document).walk(node, ())
    return document


def _syntax_problem(exc: yaml.YAMLError) -> ConfigProblem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    message = f"invalid YAML: {context + ', ' if context else ''}{problem}"
    if mark is None:
        return ConfigProblem("", message)
    return ConfigProblem("", message, line=mark.line + 1, column=mark.column + 1)


class _Walker:
    def __init__(self, document: YamlDocument) -> None:
        self.document = document
        self.visited = 0
        self.stack: set[int] = set()

    def walk(self, node: Node, path: Path_) -> None:
        self.visited += 1
        if self.visited > _MAX_NODES or id(node) in self.stack:
            return
        self.stack.add(id(node))
        if isinstance(node, MappingNode):
            self._mapping(node, path, set(), merged=False)
        elif isinstance(node, SequenceNode):
            for index, child in enumerate(node.value):
                self._record((*path, str(index)), child)
                self.walk(child, (*path, str(index)))
        self.stack.discard(id(node))

    def _mapping(self, node: MappingNode, path: Path_, seen: set[str], merged: bool) -> None:
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *defaults`: the merged keys belong to this mapping
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    if isinstance(source, MappingNode) and id(source) not in self.stack:
                        self._mapping(source, path, set(seen), merged=True)
                continue
            key = key_node.value if isinstance(key_node, ScalarNode) else "?"
            child = (*path, key)
            if key in seen:
                self.document.duplicates.append(
                    ConfigProblem(".".join(child), "duplicate key", line=key_node.start_mark.line + 1)
                )
            seen.add(key)
            self._record(child, key_node, keep=merged)
            self.walk(value_node, child)

    def _record(self, path: Path_, node: Node, keep: bool = False) -> None:
        # Keys written in the mapping itself win over keys merged in with `<<`.
        if keep:
            self.document.lines.setdefault(path, node.start_mark.line + 1)
        else:
            self.document.lines[path] = node.start_mark.line + 1
