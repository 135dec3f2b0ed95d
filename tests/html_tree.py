"""A strict little HTML tree for structural checks of rendered documents (every element must be closed)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.children: list[Node | str] = []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def spaced_text(self) -> str:
        """Text with a space at every element boundary, so `<dt>A</dt><dd>B</dd>` reads "A B"."""
        return "".join(c if isinstance(c, str) else f" {c.spaced_text()} " for c in self.children)

    def flat_text(self) -> str:
        return re.sub(r"\s+", " ", self.spaced_text().replace("\xad", "")).strip()

    def iter(self, tag: str | None = None) -> list[Node]:
        found: list[Node] = []
        for c in self.children:
            if isinstance(c, Node):
                if tag is None or c.tag == tag:
                    found.append(c)
                found.extend(c.iter(tag))
        return found

    def by_id(self, ident: str) -> Node:
        matches = [n for n in self.iter() if n.attrs.get("id") == ident]
        assert len(matches) == 1, f"expected one element with id={ident!r}, found {len(matches)}"
        return matches[0]

    def has_class(self, name: str) -> bool:
        return name in (self.attrs.get("class") or "").split()


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> does not close <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements: " + ", ".join(n.tag for n in builder.stack[1:])
    return builder.root
