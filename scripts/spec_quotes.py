"""Spec references and quoted rules in the annotated source, and where they link.

Two jobs, both used by scripts/render_docs.py and the first also by its tests:
- `spec_refs(text)` finds each reference ("RFC 9112 §6.3", "PEP 3333 ("Title")",
  "ASGI HTTP spec ("Response Start")") and `Ref.url` is the section of the published text;
- `extract(path)` finds each quoted rule, in the form the source uses:

      # RFC 9112 §6.3: "exact words ... more words"      (continued on following # lines)
      # PEP 3333 ("Section title"): "..."
      # ASGI HTTP spec ("Response Start"): "..."
      # ASGI extensions ("Websocket Denial Response"): "..."

  and the older forms still present, where a few words come between the reference
  and the quote (`RFC 9110 §15.5.9: 408 "the server did not receive ..."`).

    python -m scripts.spec_quotes                 # the spec-to-code table as Markdown
    python -m scripts.spec_quotes --unparsed      # quotes it could not read, one a line
    python -m scripts.spec_quotes --update docs/design.md   # rewrite the design doc's table
    python -m scripts.spec_quotes --check docs/design.md    # exit 1 if it is out of date

The design document's table (`design_table`) is the same list, shorter: each rule's
first words and the definition it stands in, so that it changes only when a quote does.

A quote whose closing mark cannot be found, or a quote mark soon after a reference in
none of these forms (`PEP 3333 allows it ("...")`), is reported, not guessed at.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts import literate

ROOT = Path(__file__).resolve().parent.parent

RFC_URL = "https://www.rfc-editor.org/rfc/rfc{number}"
PEP_URL = "https://peps.python.org/pep-{number:04d}/"
ASGI_URL = "https://asgi.readthedocs.io/en/latest/specs/{page}.html"
ASGI_EXTENSIONS_URL = "https://asgi.readthedocs.io/en/latest/extensions.html"

# The section titles of the ASGI documents (django/asgiref, specs/*.rst), in order.
# Sphinx makes each title's anchor (see `slug`); a title the source shortens
# ("Response Start") is matched to the first title that starts with it.
ASGI_DOCUMENTS = {
    "main": [
        "Abstract", "Rationale", "Overview", "Specification Details", "Connection Scope",
        "Events", "Applications", "Legacy Applications", "Protocol Specifications",
        "Middleware", "Error Handling", "Extensions", "Strings and Unicode",
    ],
    "www": [
        "Spec Versions", "HTTP", "HTTP Connection Scope", "Request - receive event",
        "Response Start - send event", "Response Body - send event",
        "Disconnected Client - send exception", "Disconnect - receive event", "WebSocket",
        "Websocket Connection Scope", "Connect - receive event", "Accept - send event",
        "Receive - receive event", "Send - send event", "Close - send event",
        "WSGI Compatibility", "WSGI encoding differences",
    ],
    "lifespan": [
        "Scope", "Lifespan State", "Startup - receive event", "Startup Complete - send event",
        "Startup Failed - send event", "Shutdown - receive event",
        "Shutdown Complete - send event", "Shutdown Failed - send event",
    ],
}
ASGI_WORDS = {"http": "www", "websocket": "www", "lifespan": "lifespan"}

REF = re.compile(
    r"""(?:RFC\s(?P<rfc>\d{3,5})(?:\s§(?P<section>\d+(?:\.\d+)*))?
      | PEP\s(?P<pep>\d+)(?:\s\("(?P<pep_title>[^"]+)"\))?
      | ASGI(?:\s(?P<asgi_doc>HTTP|WebSocket|[Ll]ifespan))?\sspec
            (?:\s(?P<asgi_version>\d+\.\d+))?(?:\s\("(?P<asgi_title>[^"]+)"\))?
      | ASGI\s(?P<asgi_extensions>extensions)(?:\s\("(?P<extension_title>[^"]+)"\))?
      | (?P<asgi_rst>asgi\.rst)
    )(?!\w)   # "ASGI spec" but not "ASGI specification"
    """,
    re.VERBOSE)

# After a reference, the quote: after a colon (`RFC 9112 §6.3: "..."`), perhaps with one
# word before it (`PEP 3333 ("...") offers: "..."`) and a few words after it, within the
# sentence (`RFC 9110 §15.5.9: 408 "..."`); or at once (`RFC 9112 §7.1.1 "..."`, `says "..."`).
QUOTE_START = re.compile(
    r"""(?: (?:\s\w+)?:\s*(?P<lead>(?:[^".;:]|\.(?=\S)){0,100}?)
          | \s+(?:says\s+)? )" """.strip(), re.VERBOSE)
# A quote mark later in the same sentence: a quote the forms above do not cover.
GRAMMAR = re.compile(r"[:\s]+[A-Za-z][\w-]*\s+=\s")
NEAR_MISS = re.compile(r'(?:[^".;]|\.(?=\S)){0,60}"')


def slug(title: str) -> str:
    """The anchor docutils and Sphinx give a section title."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower().replace("`", "")).strip("-")


@dataclass(frozen=True)
class Ref:
    text: str          # as written in the source
    spec: str          # "RFC 9112", "PEP 3333", "ASGI www"
    section: str       # "6.3", a title, or "" for the whole document
    url: str

    @property
    def sort_key(self) -> tuple:
        numbers = tuple(int(part) for part in self.section.split(".")) if re.fullmatch(
            r"\d+(\.\d+)*", self.section) else (0,)
        return (self.spec, numbers, self.section)


def ref_from_match(match: re.Match) -> Ref:
    text = match.group(0)
    if match["rfc"]:
        url = RFC_URL.format(number=match["rfc"])
        section = match["section"] or ""
        return Ref(text, f"RFC {match['rfc']}", section,
                   url + (f"#section-{section}" if section else ""))
    if match["pep"]:
        url = PEP_URL.format(number=int(match["pep"]))
        title = match["pep_title"] or ""
        return Ref(text, f"PEP {match['pep']}", title, url + (f"#{slug(title)}" if title else ""))
    if match["asgi_extensions"]:
        title = match["extension_title"] or ""
        return Ref(text, "ASGI extensions", title,
                   ASGI_EXTENSIONS_URL + (f"#{slug(title)}" if title else ""))
    if match["asgi_rst"]:
        return Ref(text, "ASGI main", "", ASGI_URL.format(page="main"))
    page = ASGI_WORDS.get((match["asgi_doc"] or "").lower(), "main")
    title = match["asgi_title"] or ""
    url = ASGI_URL.format(page=page)
    if title:
        url += f"#{slug(asgi_heading(page, title))}"
    return Ref(text, f"ASGI {page}", title, url)


def asgi_heading(page: str, title: str) -> str:
    """The full section title of an ASGI document that a source's title stands for."""
    # Whole words: "Disconnect" is "Disconnect - receive event", not "Disconnected Client".
    shortened = re.compile(re.escape(title) + r"\b", re.IGNORECASE)
    return next((h for h in ASGI_DOCUMENTS.get(page, []) if shortened.match(h)), title)


def spec_refs(text: str) -> list[tuple[int, int, Ref]]:
    """(start, end, Ref) for each spec reference in a piece of text."""
    return [(m.start(), m.end(), ref_from_match(m)) for m in REF.finditer(text)]


@dataclass(frozen=True)
class Quote:
    ref: Ref
    words: str         # the quoted words, whitespace collapsed
    path: str          # relative to the repository
    line: int          # where the reference is written


@dataclass(frozen=True)
class Unparsed:
    path: str
    line: int
    text: str


def closing_quote(text: str, start: int) -> int | None:
    """Index of the '"' that closes the quote opened just before `start`.

    A rule may itself quote a word (RFC 9112 §9.3: 'If the "close" connection option',
    RFC 9110 §4.2.4: 'its "@" delimiter'): a mark after a space and before a visible
    character opens such an inner quote, and the next mark closes it."""
    inner = False
    for index in range(start, len(text)):
        if text[index] != '"':
            continue
        before = text[index - 1] if index > start else " "
        after = text[index + 1] if index + 1 < len(text) else " "
        if inner:
            inner = False
        elif before in " (" and not after.isspace():
            inner = True
        else:
            return index
    return None


DOCSTRING_OPEN = re.compile(r"^[rRuU]?(\"\"\"|'''|\"|')")
DOCSTRING_CLOSE = re.compile(r"(\"\"\"|'''|\"|')$")


def source_rows(block: literate.Block, lines: list[str]) -> list[tuple[int, str]]:
    """A block's lines as written, each with its number: the comment markers or the
    docstring's quotes removed, nothing else (a banner's rulers keep their lines)."""
    if block.kind == "inline":
        return [(block.first, block.text)]
    if block.kind == "comment":
        return [(n, literate.strip_comment_marker(lines[n - 1].strip())) for n in block.lines]
    rows = [[n, lines[n - 1].strip()] for n in block.lines]
    rows[0][1] = DOCSTRING_OPEN.sub("", rows[0][1], count=1)
    rows[-1][1] = DOCSTRING_CLOSE.sub("", rows[-1][1], count=1)
    return [(n, row) for n, row in rows]


def joined(block: literate.Block, lines: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """A block's text on one line, and (offset, source line) where each of its lines begins."""
    offsets, parts, position = [], [], 0
    for number, row in source_rows(block, lines):
        offsets.append((position, number))
        parts.append(row.strip())
        position += len(parts[-1]) + 1
    return " ".join(parts), offsets


def line_at(offsets: list[tuple[int, int]], position: int) -> int:
    return max(line for start, line in offsets if start <= position)


def quotes_in_block(block: literate.Block, lines: list[str],
                    path: str) -> tuple[list[Quote], list[Unparsed]]:
    text, offsets = joined(block, lines)
    quotes, unparsed = [], []
    quoted_until = 0  # a reference inside a quote is the spec's, not ours
    for start, end, ref in spec_refs(text):
        if start < quoted_until:
            continue
        line = line_at(offsets, start)
        opening = QUOTE_START.match(text, end)
        if not opening:
            if NEAR_MISS.match(text, end) and not GRAMMAR.match(text, end):
                unparsed.append(Unparsed(path, line, text[start:start + 120]))
            continue
        close = closing_quote(text, opening.end())
        if close is None:
            unparsed.append(Unparsed(path, line, text[start:start + 120]))
            continue
        words = " ".join(text[opening.end():close].split())
        # A grammar's literal (`token = 1*tchar` ... `"!"`) is not a quoted rule.
        if "=" in (opening["lead"] or "") or not any(char.isalpha() for char in words):
            continue
        quotes.append(Quote(ref, words, path, line))
        quoted_until = close
    return quotes, unparsed


def extract(path: Path, root: Path = ROOT) -> tuple[list[Quote], list[Unparsed]]:
    """Every quoted rule in a file's comments and docstrings, and those it could not read."""
    parsed = literate.parse(path.read_text(encoding="utf-8"))
    resolved = path.resolve()
    name = resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else str(path)
    quotes, unparsed = [], []
    blocks = list(parsed.blocks) + code_comment_blocks(parsed)
    for block in sorted(blocks, key=lambda b: b.first):
        found, missed = quotes_in_block(block, parsed.lines, name)
        quotes += found
        unparsed += missed
    return quotes, unparsed


def code_comment_blocks(parsed: literate.LiterateFile) -> list[literate.Block]:
    """End-of-line comments, one block per line; comments on lines of their own inside
    brackets (a dict's key explained), one block per run of adjacent lines, since a
    quote may continue on the next line there as anywhere."""
    blocks: list[literate.Block] = []
    for line, comment in sorted(parsed.code_comments.items()):
        text = literate.strip_comment_marker(comment)
        if not parsed.lines[line - 1].lstrip().startswith("#"):
            blocks.append(literate.Block("inline", line, line, text))
        elif blocks and blocks[-1].kind == "comment" and blocks[-1].last == line - 1:
            blocks[-1].last = line
            blocks[-1].text += "\n" + text
        else:
            blocks.append(literate.Block("comment", line, line, text))
    return blocks


def documented_files(root: Path = ROOT) -> list[Path]:
    """The files the book renders: every module of servers/ and the site's entry points."""
    servers = sorted(p for p in (root / "servers").glob("*.py") if p.name != "__init__.py")
    site = [root / "sample_site" / "wsgi.py", root / "sample_site" / "asgi.py",
            root / "sample_site" / "cgi-bin" / "django.py"]
    return servers + [p for p in site if p.exists()]


def all_quotes(files: list[Path], root: Path = ROOT) -> tuple[list[Quote], list[Unparsed]]:
    quotes, unparsed = [], []
    for path in files:
        found, missed = extract(path, root)
        quotes += found
        unparsed += missed
    quotes.sort(key=lambda q: (q.ref.sort_key, q.path, q.line))
    return quotes, unparsed


def markdown_table(quotes: list[Quote]) -> str:
    rows = ["| spec | rule | code |", "|---|---|---|"]
    for quote in quotes:
        label = quote.ref.spec + (f" §{quote.ref.section}" if quote.ref.section and
                                  quote.ref.spec.startswith("RFC") else
                                  f' ("{quote.ref.section}")' if quote.ref.section else "")
        words = quote.words.replace("|", "\\|")
        rows.append(f'| [{label}]({quote.ref.url}) | "{words}" | `{quote.path}:{quote.line}` |')
    return "\n".join(rows)


# The design document's spec-to-code table lies between these two lines.
TABLE_START = ("<!-- spec-to-code table: generated by `python -m scripts.spec_quotes --update "
               "docs/design.md`; do not edit by hand -->")
TABLE_END = "<!-- end of the spec-to-code table -->"
ASGI_NAMES = {"ASGI main": "ASGI", "ASGI www": "ASGI HTTP & WebSocket",
              "ASGI lifespan": "ASGI lifespan", "ASGI extensions": "ASGI extensions"}
BEGINNING_WORDS = 10


def owner(tree: ast.Module, line: int) -> str:
    """The code a quote on `line` stands beside: the function or method around it; else
    the definition or name the comment stands above, in the same body; else its class.
    "" for the module's own docstring and comments that precede nothing."""
    names: list[str] = []
    body = tree.body
    while True:
        around = next((node for node in body if first_line(node) <= line <= node.end_lineno), None)
        if isinstance(around, ast.ClassDef):
            names.append(around.name)
            body = around.body
            continue
        if isinstance(around, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return ".".join(names + [around.name])
        target = around or next((node for node in body if first_line(node) > line), None)
        name = defined_name(target) if target is not None else None
        return ".".join(names + [name] if name else names)


def first_line(node: ast.stmt) -> int:
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])


def defined_name(node: ast.stmt) -> str | None:
    if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return node.name
    targets = node.targets if isinstance(node, ast.Assign) else (
        [node.target] if isinstance(node, ast.AnnAssign) else [])
    names = [target.id for target in targets if isinstance(target, ast.Name)]
    return names[0] if names else None


def design_table(quotes: list[Quote], root: Path = ROOT) -> str:
    """The design document's table: each quoted rule's source and section (linked to
    the published text), its first words, and the file and definition it stands in."""
    trees: dict[str, ast.Module] = {}
    rows = ["| source | section | the quote begins | where | implemented by |",
            "|---|---|---|---|---|"]
    for quote in quotes:
        if quote.path not in trees:
            trees[quote.path] = ast.parse((root / quote.path).read_text(encoding="utf-8"))
        spec = ASGI_NAMES.get(quote.ref.spec, quote.ref.spec)
        ref = quote.ref
        if ref.spec.startswith("RFC") and ref.section:
            section = f"§{ref.section}"
        elif ref.spec.startswith("ASGI") and ref.section:
            section = asgi_heading(ref.spec.split()[1], ref.section.replace("`", ""))
        else:
            section = ref.section or "(the whole text)"
        words = quote.words.split()
        beginning = " ".join(words[:BEGINNING_WORDS])
        if len(words) > BEGINNING_WORDS:
            beginning += " …"
        tree = trees[quote.path]
        name = owner(tree, quote.line)
        in_docstring = ast.get_docstring(tree) is not None and quote.line <= tree.body[0].end_lineno
        where = (f"`{name}`" if name else
                 "the module docstring" if in_docstring else "the module")
        rows.append(f"| {spec} | [{section}]({ref.url}) | \"{markdown_text(beginning)}\" | "
                    f"`{quote.path}` | {where} |")
    return "\n".join(rows)


def markdown_text(text: str) -> str:
    """Words in a Markdown table cell: a bar would end the cell."""
    return text.replace("|", "\\|")


def replace_table(document: str, table: str) -> str:
    """The document with its generated table replaced; ValueError without the markers."""
    start, end = document.find(TABLE_START), document.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError("no generated spec-to-code table in it (the marker comments "
                         f"{TABLE_START[:30]}... and {TABLE_END} are missing)")
    return document[:start + len(TABLE_START)] + "\n\n" + table + "\n\n" + document[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print the spec-to-code table (every quoted rule in servers/ and the "
                    "site's entry points) as Markdown, or keep the design document's "
                    "shorter table in step with the source (--update, --check).")
    parser.add_argument("files", nargs="*", type=Path,
                        help="files to read (default: the files the docs render)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--unparsed", action="store_true",
                        help="print only the quotes the extractor could not read")
    action.add_argument("--update", metavar="DOCUMENT", type=Path,
                        help="rewrite the design document's table (docs/design.md) between "
                             "its marker comments")
    action.add_argument("--check", metavar="DOCUMENT", type=Path,
                        help="exit 1 if the design document's table differs from the source")
    args = parser.parse_args(argv)
    for path in args.files + [p for p in (args.update, args.check) if p is not None]:
        if not path.is_file():
            parser.error(f"no such file: {path}")
    files = [p.resolve() for p in args.files] or documented_files()
    quotes, unparsed = all_quotes(files)
    document = args.update or args.check
    if document is not None:
        text = document.read_text(encoding="utf-8")
        try:
            wanted = replace_table(text, design_table(quotes))
        except ValueError as exc:
            parser.error(f"{document}: {exc}")
        if args.update:
            if wanted != text:
                document.write_text(wanted, encoding="utf-8")
            print(f"{document}: {len(quotes)} quoted rules in the table"
                  + ("" if wanted != text else " (unchanged)"))
            return 0
        if wanted != text:
            print(f"{document}: the spec-to-code table is out of date with the source; "
                  f"run python -m scripts.spec_quotes --update {document}", file=sys.stderr)
            return 1
        return 0
    if args.unparsed:
        for miss in unparsed:
            print(f"{miss.path}:{miss.line}: {miss.text}")
        return 1 if unparsed else 0
    print(markdown_table(quotes))
    for miss in unparsed:
        print(f"quote not read: {miss.path}:{miss.line}: {miss.text}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
