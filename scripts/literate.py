"""Split a Python file into literate sections: prose (comments, docstrings) beside its code.

The form is docco's (and pycco's): a section is a piece of prose and the code that
follows it, up to the next piece of prose. Comments and docstrings are found with
`tokenize` and `ast`, never by matching lines, so a `#` inside a string or a
triple-quoted string that is data stays code.

Rules, each chosen so that a reader sees the prose next to the code it describes:
- a run of full-line comments at statement level is prose; a comment inside brackets
  (an entry of a dict or argument list) stays in the code, where it annotates one line;
- a docstring is prose; the `def`/`class` line it belongs to (decorators included)
  moves with it, so a function's explanation sits beside its signature;
- every other line, blank lines included, is code.
Every line of the file lands in exactly one place, and the code lines keep their order.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field

OPENING, CLOSING = "([{", ")]}"

# A banner comment that names a part of a file: "# ── 2. The server ───", "# -- reading ---",
# or a ruler line ("# -----") followed by the title on the next line.
BANNER = re.compile(r"^(?:──|--)\s*(?P<title>[^─-].*?)\s*[─-]*$")
RULER = re.compile(r"^[─-]{8,}$")
# PEP 263's encoding declaration.
ENCODING = re.compile(r"^#.*?coding[:=][ \t]*[-\w.]+")


@dataclass
class Block:
    """One piece of prose: a comment block or a docstring, with the lines it occupies."""
    kind: str                      # "comment", "docstring" ("inline": a comment left in the code)
    first: int                     # first and last line, 1-based, inclusive
    last: int
    text: str                      # the prose, comment markers or quotes removed
    owner_start: int | None = None  # a docstring's def/class (decorators included)
    title: str | None = None       # a banner comment's title

    @property
    def lines(self) -> range:
        return range(self.first, self.last + 1)


@dataclass
class Definition:
    """A class, function, method or module-level name, for anchors and the contents list."""
    qualname: str                  # "ServerConnection", "ServerConnection.receive"
    line: int                      # the line of `class`/`def` (not a decorator)
    kind: str                      # "class", "function", "method" or "name"


@dataclass
class Section:
    prose: list[Block] = field(default_factory=list)
    code: list[int] = field(default_factory=list)  # line numbers, ascending

    def has_code(self, lines: list[str]) -> bool:
        return any(lines[n - 1].strip() for n in self.code)


def comment_blocks(source: str) -> tuple[list[Block], dict[int, str]]:
    """Full-line comments at statement level, grouped into blocks of adjacent lines.

    Returns the blocks and, by line, every comment that stays in the code
    (end-of-line comments and comments inside brackets)."""
    depth = 0
    prose_lines: dict[int, str] = {}
    code_comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.OP:
            if token.string in OPENING:
                depth += 1
            elif token.string in CLOSING:
                depth -= 1
        if token.type != tokenize.COMMENT:
            continue
        row, col = token.start
        alone = not token.line[:col].strip()
        # The "#!" line and an encoding declaration are instructions to the system, not prose.
        directive = row <= 2 and (token.string.startswith("#!") or ENCODING.match(token.string))
        if alone and depth == 0 and not directive:
            prose_lines[row] = token.string
        else:
            code_comments[row] = token.string
    blocks: list[Block] = []
    for row in sorted(prose_lines):
        text = strip_comment_marker(prose_lines[row])
        if blocks and blocks[-1].kind == "comment" and blocks[-1].last == row - 1:
            blocks[-1].last = row
            blocks[-1].text += "\n" + text
        else:
            blocks.append(Block("comment", row, row, text))
    for block in blocks:
        block.title, block.text = banner_title(block.text)
    return blocks, code_comments


def strip_comment_marker(comment: str) -> str:
    text = comment[1:]
    return text[1:] if text.startswith(" ") else text


def banner_title(text: str) -> tuple[str | None, str]:
    """A banner's title and the rest of the block's prose, or (None, text)."""
    rows = text.split("\n")
    match = BANNER.match(rows[0].strip())
    if match:
        title, rest = match["title"], rows[1:]
    elif RULER.match(rows[0].strip()) and len(rows) > 1 and rows[1].strip():
        title, rest = rows[1].strip(), rows[2:]
    else:
        return None, text
    # The rulers around a title are decoration (Markdown would draw them as rules).
    return title, "\n".join(row for row in rest if not RULER.match(row.strip())).strip("\n")


def docstring_blocks(tree: ast.Module, lines: list[str]) -> list[Block]:
    """Docstrings of the module, its classes and functions (nested ones too)."""
    blocks = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if not (node.body and isinstance(node.body[0], ast.Expr)
                and isinstance(node.body[0].value, ast.Constant)
                and isinstance(node.body[0].value.value, str)):
            continue
        expr = node.body[0]
        before = lines[expr.lineno - 1][:expr.col_offset]
        after = lines[expr.end_lineno - 1][expr.end_col_offset:]
        # A docstring sharing a line with code (`def f(): "doc"`) stays code.
        if before.strip() or (after.strip() and not after.strip().startswith("#")):
            continue
        owner_start = None
        if not isinstance(node, ast.Module):
            owner_start = min([node.lineno] + [d.lineno for d in node.decorator_list])
        blocks.append(Block("docstring", expr.lineno, expr.end_lineno,
                            ast.get_docstring(node, clean=True) or "", owner_start))
    return blocks


def definitions(tree: ast.Module) -> list[Definition]:
    """Top-level classes, functions and names, and the methods of top-level classes."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            found.append(Definition(node.name, node.lineno, "class"))
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found.append(Definition(f"{node.name}.{item.name}", item.lineno, "method"))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append(Definition(node.name, node.lineno, "function"))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        found.append(Definition(name.id, node.lineno, "name"))
    return found


@dataclass
class LiterateFile:
    source: str
    lines: list[str]
    tree: ast.Module
    sections: list[Section]
    blocks: list[Block]
    code_comments: dict[int, str]
    definitions: list[Definition]

    def section_of_line(self, line: int) -> int:
        """The index of the section that holds a line (as prose or as code)."""
        for index, section in enumerate(self.sections):
            if line in section.code or any(line in block.lines for block in section.prose):
                return index
        raise ValueError(f"line {line} is in no section")


def source_lines(source: str) -> list[str]:
    """The lines as Python numbers them: str.splitlines() would also split at a form
    feed or a U+2028, which Python keeps inside a line."""
    lines = re.split(r"\r\n|\r|\n", source)
    return lines[:-1] if lines and lines[-1] == "" else lines


def parse(source: str, filename: str = "<source>") -> LiterateFile:
    """Sections of a file; raises SyntaxError for a file Python cannot parse."""
    lines = source_lines(source)
    tree = ast.parse(source, filename)
    comments, code_comments = comment_blocks(source)
    docstrings = docstring_blocks(tree, lines)
    blocks = sorted(comments + docstrings, key=lambda block: block.first)
    starts = {block.first: block for block in blocks}

    sections = [Section()]
    line = 1
    while line <= len(lines):
        block = starts.get(line)
        if block is None:
            sections[-1].code.append(line)
            line += 1
            continue
        current = sections[-1]
        if block.owner_start is not None:
            # The def/class line(s) leave the previous section to sit beside their docstring.
            header = [n for n in current.code if n >= block.owner_start]
            current.code = [n for n in current.code if n < block.owner_start]
            if current.has_code(lines) or not current.prose:
                sections.append(Section([block], header))
            else:
                current.prose.append(block)
                current.code += header
        elif current.has_code(lines):
            sections.append(Section([block]))
        else:
            current.prose.append(block)
        line = block.last + 1
    sections = [s for s in sections if s.prose or s.code]
    return LiterateFile(source, lines, tree, sections, blocks, code_comments, definitions(tree))
