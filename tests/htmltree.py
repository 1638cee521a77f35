"""A small HTML tree from ``html.parser``, to check the status page's structure."""
from html.parser import HTMLParser

#: Elements with no end tag.
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                  "meta", "source", "track", "wbr"})


class Element:
    """One element: its tag, attributes, children (elements and text strings)."""

    def __init__(self, tag, attrs, parent=None):
        self.tag = tag
        self.attrs = dict(attrs)
        self.parent = parent
        self.children = []

    def text(self):
        """All the text inside, joined, whitespace squeezed."""
        parts = []
        for child in self.children:
            parts.append(child.text() if isinstance(child, Element) else child)
        return " ".join(" ".join(parts).split())

    def iter(self, tag=None):
        """This element and every element inside it, in document order."""
        if tag is None or self.tag == tag:
            yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter(tag)

    def find_all(self, tag=None, **attrs):
        """Elements inside with ``tag`` whose attributes include ``attrs`` (``class_``
        for ``class``; a class matches one of the element's classes)."""
        wanted = {key.rstrip("_"): value for key, value in attrs.items()}
        found = []
        for element in self.iter(tag):
            if element is self:
                continue
            ok = True
            for key, value in wanted.items():
                have = element.attrs.get(key)
                if key == "class":
                    ok = ok and have is not None and value in have.split()
                else:
                    ok = ok and have == value
            if ok:
                found.append(element)
        return found

    def find(self, tag=None, **attrs):
        """The first of :meth:`find_all`, or None."""
        found = self.find_all(tag, **attrs)
        return found[0] if found else None


class _Builder(HTMLParser):
    """Builds the tree; checks that every end tag closes the open element."""

    def __init__(self):
        HTMLParser.__init__(self, convert_charrefs=True)
        self.root = Element("#document", {})
        self.current = self.root
        self.errors = []

    def handle_starttag(self, tag, attrs):
        """An element opens (void ones close at once)."""
        element = Element(tag, attrs, self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_startendtag(self, tag, attrs):
        """A self-closed element."""
        self.current.children.append(Element(tag, attrs, self.current))

    def handle_endtag(self, tag):
        """An element closes; it must be the open one."""
        if tag in VOID:
            return
        if self.current.tag != tag:
            self.errors.append(f"</{tag}> closes <{self.current.tag}>")
            return
        self.current = self.current.parent

    def handle_data(self, data):
        """Text inside the open element."""
        self.current.children.append(data)


def parse_html(text):
    """
    The document tree of ``text``.

    :raises AssertionError: when tags do not nest, or some are left open.
    """
    builder = _Builder()
    builder.feed(text)
    builder.close()
    if builder.current is not builder.root:
        builder.errors.append(f"<{builder.current.tag}> never closed")
    if builder.errors:
        raise AssertionError("badly nested HTML: " + "; ".join(builder.errors))
    return builder.root
