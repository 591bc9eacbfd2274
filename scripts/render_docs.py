"""Render the annotated source as a book: one side-by-side page per file, a reading order, spec to code.

    python -m scripts.render_docs                       # into var/docs/, prints the index's path
    python -m scripts.render_docs --out /tmp/book
    python -m scripts.render_docs --screenshot docs/figures/docs-page.png

Each page puts a file's prose (its docstrings and comment blocks, read as Markdown)
beside the code it belongs to, section by section, in the form of docco and pycco;
scripts/literate.py does the sectioning. Spec references link to the published text
(scripts/spec_quotes.py), and a name defined in another rendered file links to its
definition there. index.html gives the reading order, starting from where each server
calls the application (found in the code, so the links follow the code as it moves);
spec.html lists every quoted rule beside the code that implements it.
"""

from __future__ import annotations

import argparse
import ast
import html
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import markdown
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer
from pygments.token import STANDARD_TYPES, Comment, Name, Operator, Text, Whitespace

from scripts import call_paths, literate, spec_quotes

ROOT = Path(__file__).resolve().parent.parent
CSS = Path(__file__).with_name("docs.css")

# Careful reading of annotated code, prose included; the index states it beside each estimate.
LINES_PER_MINUTE = 20

# The order the index suggests: what a server loads, then the three servers in the order
# the interfaces appeared (CGI, WSGI, ASGI), each with the module its lesson leans on
# (PEP 3333 after CGI's child, the WebSocket core after ASGI), then the HTTP core they
# share, then the shared mechanics. Files not listed (new modules of servers/) follow, by name.
READING_ORDER = [
    "sample_site/wsgi.py", "sample_site/asgi.py", "sample_site/cgi-bin/django.py",
    "servers/cgi_server.py", "servers/cgi_variables.py", "servers/cgi_app.py",
    "servers/pep3333.py", "servers/wsgi_server.py", "servers/prefork.py",
    "servers/asgi_server.py", "servers/websocket.py", "servers/asgi_checker.py",
    "servers/http11.py", "servers/cli.py", "servers/trace.py", "servers/timeouts.py",
    "servers/spool.py", "servers/linger.py", "servers/wakeup.py", "servers/forwarded.py",
    "servers/tuning.py",
]

# The three servers and where their application runs. The CGI runner starts a process;
# the script it runs hands the application to servers/cgi_app.py, which calls it.
SERVERS = [
    ("CGI", "servers/cgi_server.py", "sample_site/cgi-bin/django.py"),
    ("WSGI", "servers/wsgi_server.py", None),
    ("ASGI", "servers/asgi_server.py", None),
]

# A line of ABNF in a comment ("token = 1*tchar"), shown as code.
GRAMMAR_LINE = re.compile(r"(^|:\s+)\s*[A-Za-z][\w-]*\s+=\s+\S")
FILE_PATH = re.compile(r"\b[\w-]+(?:/[\w.-]+)*\.py\b")
LINKABLE = (Name, Name.Namespace, Name.Other, Name.Variable, Name.Constant, Name.Attribute)
NOT_LINKED = (Name.Builtin, Name.Builtin.Pseudo, Name.Function, Name.Class, Name.Decorator,
              Name.Exception, Name.Function.Magic, Name.Variable.Magic)


def module_name(relative: str) -> str:
    """'servers/http11.py' -> 'servers.http11'; 'sample_site/cgi-bin/django.py' keeps its dash."""
    return relative.removesuffix(".py").replace("/", ".")


@dataclass
class Module:
    path: Path
    relative: str                     # "servers/http11.py"
    name: str                         # "servers.http11"
    parsed: literate.LiterateFile
    anchors: dict[str, int] = field(default_factory=dict)       # qualname -> line
    aliases: dict[str, str] = field(default_factory=dict)       # local name -> module
    imported: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (module, qualname)

    @property
    def page(self) -> str:
        return f"{self.name}.html"

    @property
    def line_count(self) -> int:
        return len(self.parsed.lines)

    @property
    def minutes(self) -> int:
        return max(1, round(self.line_count / LINES_PER_MINUTE))

    @property
    def summary(self) -> str:
        """The first paragraph of the module's docstring: what the file teaches."""
        doc = ast.get_docstring(self.parsed.tree) or ""
        return doc.strip().split("\n\n")[0].replace("\n", " ")

    def anchor_for_line(self, line: int) -> str:
        """The id of a code line, or of the section whose prose holds the line."""
        for index, section in enumerate(self.parsed.sections):
            if line in section.code:
                return f"L{line}"
            if any(line in block.lines for block in section.prose):
                return f"section-{index}"
        raise ValueError(f"{self.relative} has no line {line}")


class Book:
    """Every rendered file, and how a name in one of them finds its definition."""

    def __init__(self, files: list[Path], root: Path = ROOT):
        self.root = root
        self.modules: dict[str, Module] = {}
        for path in files:
            relative = path.resolve().relative_to(root).as_posix()
            parsed = literate.parse(path.read_text(encoding="utf-8"), relative)
            module = Module(path, relative, module_name(relative), parsed)
            self.modules[module.name] = module
        for module in self.modules.values():
            self._index_definitions(module)
        for module in self.modules.values():
            self._index_imports(module)
        # A class, function or method defined in one file only: prose anywhere may name it
        # without its module (`ServerConnection.receive` in the WSGI server's comments).
        defined: dict[str, list[str]] = {}
        for module in self.modules.values():
            for definition in module.parsed.definitions:
                if definition.kind != "name":
                    defined.setdefault(definition.qualname, []).append(module.name)
        self.unique = {qualname: names[0] for qualname, names in defined.items() if len(names) == 1}

    def _index_definitions(self, module: Module) -> None:
        for definition in module.parsed.definitions:
            if definition.qualname.startswith("__"):
                continue
            module.anchors.setdefault(definition.qualname, definition.line)

    def _index_imports(self, module: Module) -> None:
        package = module.name.rsplit(".", 1)[0]
        for node in ast.walk(module.parsed.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname and alias.name in self.modules:
                        module.aliases[alias.asname] = alias.name
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(filter(None, [package.rsplit(".", node.level - 1)[0], base]))
                for alias in node.names:
                    local = alias.asname or alias.name
                    if f"{base}.{alias.name}" in self.modules:
                        module.aliases[local] = f"{base}.{alias.name}"
                    elif base in self.modules and alias.name in self.modules[base].anchors:
                        module.imported[local] = (base, alias.name)

    def href(self, target: str, qualname: str | None, here: Module) -> str:
        page = "" if target == here.name and qualname else self.modules[target].page
        return page + (f"#{qualname}" if qualname else "")

    def resolve_name(self, name: str, here: Module) -> str | None:
        """The link for a bare name used in `here`, if it names something rendered."""
        if name in here.imported:
            target, qualname = here.imported[name]
            return self.href(target, qualname, here)
        if name in here.aliases:
            return self.href(here.aliases[name], None, here)
        if name in self.modules:  # `servers.http11` in `from servers.http11 import ...`
            return self.href(name, None, here)
        definition = next((d for d in here.parsed.definitions if d.qualname == name), None)
        if definition and (definition.kind in ("class", "function") or name.isupper()):
            return self.href(here.name, name, here)
        return None

    def resolve_attribute(self, owner: str, attribute: str, here: Module) -> str | None:
        """The link for `owner.attribute` where owner is a rendered module imported in `here`."""
        target = here.aliases.get(owner)
        if target and attribute in self.modules[target].anchors:
            return self.href(target, attribute, here)
        return None

    def file_links(self, here: Module) -> dict[str, str]:
        """Each rendered file's path (`servers/http11.py`) -> the link to its page."""
        return {m.relative: self.href(m.name, None, here) for m in self.modules.values()}

    def resolve_dotted(self, text: str, here: Module) -> str | None:
        """A dotted name written in prose (`http11.ServerConnection`, `Worker.run()`),
        or a rendered file's path."""
        if text.strip() in self.file_links(here):
            return self.file_links(here)[text.strip()]
        name = re.sub(r"\(.*\)$", "", text.strip())
        if not re.fullmatch(r"[A-Za-z_][\w.]*", name):
            return None
        parts = name.split(".")
        if len(parts) >= 2 and parts[0] in here.aliases:
            target = here.aliases[parts[0]]
            qualname = ".".join(parts[1:])
            if qualname in self.modules[target].anchors:
                return self.href(target, qualname, here)
            return None
        if parts[0] in here.imported:
            target, first = here.imported[parts[0]]
            qualname = ".".join([first] + parts[1:])
            anchors = self.modules[target].anchors
            return self.href(target, qualname if qualname in anchors else first, here)
        if name in here.anchors:
            return self.href(here.name, name, here)
        if name in self.modules:
            return self.href(name, None, here)
        if name in self.unique and name in self.modules[self.unique[name]].anchors:
            return self.href(self.unique[name], name, here)
        return None


# ── Code: Pygments tokens, with links on names ─────────────────────────────

def css_class(token_type) -> str:
    while token_type not in STANDARD_TYPES:
        token_type = token_type.parent
    return STANDARD_TYPES[token_type]


def code_lines(module: Module, book: Book) -> dict[int, str]:
    """The highlighted HTML of every line of a file, by line number (1-based)."""
    lexer = PythonLexer(stripnl=False, ensurenl=False)
    tokens = [(kind, value) for kind, value in lexer.get_tokens(module.parsed.source)]
    significant = [i for i, (kind, value) in enumerate(tokens)
                   if kind not in (Text, Whitespace) and value.strip()]
    position = {index: order for order, index in enumerate(significant)}
    lines: list[list[str]] = [[]]
    for index, (kind, value) in enumerate(tokens):
        href = None
        if index in position and kind in LINKABLE and kind not in NOT_LINKED:
            order = position[index]
            before = tokens[significant[order - 1]] if order > 0 else (Text, "")
            after = tokens[significant[order + 1]] if order + 1 < len(significant) else (Text, "")
            is_keyword_argument = after == (Operator, "=")
            if before[1] == "." and order > 1:
                owner = tokens[significant[order - 2]]
                href = book.resolve_attribute(owner[1], value, module)
            elif not is_keyword_argument:
                href = book.resolve_name(value, module)
        pieces = value.split("\n")
        for number, piece in enumerate(pieces):
            if number:
                lines.append([])
            if not piece:
                continue
            text = html.escape(piece, quote=False)
            if kind in Comment:
                text = link_specs(text)
            span = f'<span class="{css_class(kind)}">{text}</span>' if css_class(kind) else text
            if href:
                span = f'<a class="name" href="{html.escape(href)}">{span}</a>'
            lines[-1].append(span)
    return {number: "".join(parts) for number, parts in enumerate(lines, start=1)}


def link_specs(text: str, files: dict[str, str] | None = None) -> str:
    """Spec references in escaped text, as links to the published sections; and the
    rendered files named in it (`servers/http11.py`), as links to their pages."""
    found = [(start, end, f'<a class="spec" href="{html.escape(ref.url)}">')
             for start, end, ref in spec_quotes.spec_refs(text)]
    for match in FILE_PATH.finditer(text):
        if files and match.group(0) in files:
            found.append((match.start(), match.end(), f'<a href="{files[match.group(0)]}">'))
    out, last = [], 0
    for start, end, opening in sorted(found):
        if start < last:
            continue  # overlaps the previous link
        out += [text[last:start], opening, text[start:end], "</a>"]
        last = end
    out.append(text[last:])
    return "".join(out)


# ── Prose: Markdown, then links ────────────────────────────────────────────

def markdown_renderer() -> markdown.Markdown:
    """Markdown as the comments use it: paragraphs, lists, `code`, indented examples.

    Off: raw HTML (a comment's `<N bytes>` is text, not a tag) and emphasis, whose
    `*` would eat the ABNF of the grammar comments (`1*tchar`, `*( OWS "," )`)."""
    renderer = markdown.Markdown(output_format="html")
    for name in ("html", "em_strong", "em_strong2", "not_strong"):
        if name in renderer.inlinePatterns:
            renderer.inlinePatterns.deregister(name)
    if "html_block" in renderer.preprocessors:
        renderer.preprocessors.deregister("html_block")
    return renderer


def grammar_as_code(text: str) -> str:
    """A comment's lines of grammar (`RFC 9110 §5.6.2:  token = 1*tchar` and the indented
    lines that continue it) as a Markdown code block: kept verbatim, aligned as written."""
    out, in_grammar = [], False
    for row in text.split("\n"):
        grammar = bool(GRAMMAR_LINE.search(row)) or (in_grammar and row.startswith(" ")
                                                      and bool(row.strip()))
        if grammar != in_grammar:
            out.append("")  # a code block begins and ends at a blank line
            in_grammar = grammar
        out.append("    " + row if grammar else row)
    return "\n".join(out)


def link_prose(fragment: str, module: Module, book: Book) -> str:
    """Spec references and rendered names (in `code`) become links; text inside links stays."""
    parts = re.split(r"(<[^>]+>)", fragment)
    out, in_link, in_code = [], 0, False
    for part in parts:
        if part.startswith("<"):
            if part.startswith("<a "):
                in_link += 1
            elif part == "</a>":
                in_link -= 1
            in_code = part == "<code>" or (in_code and part != "</code>")
            out.append(part)
            continue
        if in_link:
            out.append(part)
        elif in_code:
            href = book.resolve_dotted(html.unescape(part), module)
            out.append(f'<a class="name" href="{html.escape(href)}">{part}</a>' if href
                       else link_specs(part))
        else:
            out.append(link_specs(part, book.file_links(module)))
    return "".join(out)


def render_prose(block: literate.Block, module: Module, book: Book,
                 renderer: markdown.Markdown) -> str:
    renderer.reset()
    text = grammar_as_code(block.text) if block.kind == "comment" else block.text
    body = renderer.convert(text) if text.strip() else ""
    title = f"<h3>{link_specs(html.escape(block.title, quote=False))}</h3>" if block.title else ""
    return f'<div class="{block.kind}">{title}{link_prose(body, module, book)}</div>'


# ── Pages ───────────────────────────────────────────────────────────────────

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="docs.css">
</head>
<body>
<header class="top"><a href="index.html">Reading order</a> · <a href="spec.html">Spec to code</a>{extra}</header>
{body}
</body>
</html>
"""


def contents(module: Module) -> str:
    """Banner titles, classes with their methods, and top-level functions, in file order."""
    entries: list[tuple[int, int, str]] = []
    for index, section in enumerate(module.parsed.sections):
        for block in section.prose:
            if block.title:
                entries.append((block.first, 0, f'<li class="part"><a href="#section-{index}">'
                                                 f'{html.escape(block.title)}</a></li>'))
    for definition in module.parsed.definitions:
        if definition.kind == "name" or module.anchors.get(definition.qualname) != definition.line:
            continue
        if definition.kind == "method" and definition.qualname.split(".")[-1].startswith("__"):
            continue  # __init__, __repr__: the class's entry leads there
        label = definition.qualname.split(".")[-1]
        kind = {"class": "class ", "function": "def ", "method": ""}[definition.kind]
        entries.append((definition.line, 1, f'<li class="{definition.kind}"><a href="#'
                                            f'{html.escape(definition.qualname)}">{kind}'
                                            f'{html.escape(label)}</a></li>'))
    entries.sort()
    items = "\n".join(entry for _, _, entry in entries)
    return f'<nav class="toc" aria-label="Contents"><h2>Contents</h2><ul>\n{items}\n</ul></nav>'


def render_page(module: Module, book: Book) -> str:
    renderer = markdown_renderer()
    highlighted = code_lines(module, book)
    anchors_by_line: dict[int, list[str]] = {}
    for qualname, line in module.anchors.items():
        anchors_by_line.setdefault(line, []).append(qualname)
    sections = []
    for index, section in enumerate(module.parsed.sections):
        prose = "\n".join(render_prose(block, module, book, renderer) for block in section.prose)
        rows = []
        for line in section.code:
            marks = "".join(f'<a class="def" id="{html.escape(name)}"></a>'
                            for name in anchors_by_line.get(line, []))
            rows.append(f'<span class="line" id="L{line}" data-n="{line}">{marks}'
                        f'{highlighted.get(line, "")}</span>')
        # The lines are blocks already: a newline between them would add an empty line.
        code = "".join(rows)
        sections.append(f'<section class="sec" id="section-{index}">\n'
                        f'<div class="prose">{prose}</div>\n'
                        f'<div class="code"><pre class="highlight">{code}</pre></div>\n</section>')
    extra = (f" · <b>{html.escape(module.relative)}</b> · {module.line_count} lines, "
             f"about {module.minutes} min")
    body = (f'<h1>{html.escape(module.relative)}</h1>\n{contents(module)}\n'
            f'<main class="book">\n' + "\n".join(sections) + "\n</main>")
    return PAGE.format(title=html.escape(module.relative), extra=extra, body=body)


# ── The index: where the application is called, then the reading order ─────

@dataclass
class Step:
    module: Module
    line: int
    label: str          # what happens at this line, as HTML

    def link(self) -> str:
        return f"{self.module.page}#{self.module.anchor_for_line(self.line)}"


def shown(node: call_paths.Node, seen_from: str) -> str:
    """`Worker.run()`, or `pep3333.Response.run_application()` seen from another module."""
    module, qualname = node
    name = qualname if module == seen_from else f"{module.rsplit('.', 1)[-1]}.{qualname}"
    return f"<code>{html.escape(name)}()</code>"


def chain_steps(book: Book, graph: call_paths.CallGraph, requested: call_paths.Node,
                found, goal_calls, what: str) -> list[Step]:
    """Steps of a path found by CallGraph.path, ending at the goal's call line."""
    start, chain = found
    steps = []
    if start != requested:
        module = book.modules[start[0]]
        line = graph.functions[start[0]][start[1]].lineno
        steps.append(Step(module, line, f"{shown(start, start[0])} runs when the event loop or "
                                        "a thread calls it: no code in these files does"))
    for caller, callee, line in chain:
        steps.append(Step(book.modules[caller[0]], line,
                          f"{shown(caller, caller[0])} calls {shown(callee, caller[0])}"))
    goal = chain[-1][1] if chain else start
    module, line = book.modules[goal[0]], goal_calls[goal].lineno
    source = html.escape(module.parsed.lines[line - 1].strip())
    steps.append(Step(module, line, f"{what}: <code>{source}</code>"))
    return steps


def application_paths(book: Book) -> list[tuple[str, list[Step]]]:
    """For each server, the steps from its main() to the line that runs the application."""
    graph = call_paths.CallGraph(book)
    app_calls = {}
    for name, module in book.modules.items():
        for owner, call in call_paths.application_calls(module.parsed.tree):
            if owner:
                app_calls.setdefault((name, owner), call)
    paths = []
    for interface, server_file, script_file in SERVERS:
        server = book.modules.get(module_name(server_file))
        if server is None:
            continue
        if script_file is None:
            main = (server.name, "main")
            found = graph.path(set(app_calls), main)
            if found:
                paths.append((interface, chain_steps(book, graph, main, found, app_calls,
                                                     "the application is called")))
            continue
        spawns = {(server.name, owner): call for owner, call in
                  call_paths.calls_named(server.parsed.tree, call_paths.SPAWN_NAMES) if owner}
        main = (server.name, "main")
        found = graph.path(set(spawns), main)
        script = book.modules.get(module_name(script_file))
        if found is None or script is None:
            continue
        steps = chain_steps(book, graph, main, found, spawns, "the script starts in a new process")
        paths.append((interface, steps + script_steps(script, book, graph, app_calls)))
    return paths


def script_steps(script: Module, book: Book, graph: call_paths.CallGraph, app_calls) -> list[Step]:
    """In a CGI script: the statement that hands over the application, then where it is called."""
    for statement in script.parsed.tree.body:
        call = statement.value if isinstance(statement, ast.Expr) else None
        if not (isinstance(call, ast.Call) and any(
                isinstance(arg, ast.Name) and arg.id in call_paths.APPLICATION_NAMES
                for arg in call.args)):
            continue
        source = html.escape(script.parsed.lines[call.lineno - 1].strip())
        steps = [Step(script, call.lineno, f"the script hands over the application: "
                                           f"<code>{source}</code>")]
        entry = graph.referenced(script.name, "", call.func)
        found = graph.path(set(app_calls), entry) if entry else None
        if found and found[0] == entry:
            steps += chain_steps(book, graph, entry, found, app_calls, "the application is called")
        return steps
    return []


def ordered(book: Book) -> list[Module]:
    known = [book.modules[module_name(f)] for f in READING_ORDER if module_name(f) in book.modules]
    rest = sorted((m for m in book.modules.values() if m not in known), key=lambda m: m.relative)
    return known + rest


def render_index(book: Book) -> str:
    renderer = markdown_renderer()
    parts = ["<h1>The annotated source, read as a book</h1>",
             "<p>Each page puts a file's explanations (its docstrings and comments) beside the "
             "code they explain. Spec references link to the published text; a name defined in "
             "another file links to its definition. "
             '<a href="spec.html">Spec to code</a> lists every quoted rule.</p>',
             '<h2 id="application">Start here: where is my application called?</h2>',
             "<p>The shortest path through each server, from its <code>main()</code> to the line "
             "that runs your application (found by reading the code, so it follows the code "
             "as it changes):</p>"]
    for interface, steps in application_paths(book):
        items = "".join(f'<li><a href="{step.link()}">{html.escape(step.module.relative)}:'
                        f'{step.line}</a> {step.label}</li>' for step in steps)
        parts.append(f'<h3>{interface}</h3><ol class="path">{items}</ol>')
    modules = ordered(book)
    total = sum(m.minutes for m in modules)
    parts.append('<h2 id="order">Reading order</h2>')
    parts.append(f"<p>Times assume about {LINES_PER_MINUTE} lines a minute (careful reading of "
                 f"annotated code, prose included), computed from each file's line count: "
                 f"about {total} minutes in all. The order: what a server loads, the three "
                 "servers in the order the interfaces appeared (CGI, WSGI, ASGI) with their "
                 "helpers, then the HTTP/1.1 core they share.</p>")
    rows = []
    for number, module in enumerate(modules, start=1):
        renderer.reset()
        summary = link_prose(renderer.convert(module.summary), module, book)
        rows.append(f'<tr><td>{number}</td><td><a href="{module.page}">{html.escape(module.relative)}'
                    f'</a></td><td>{summary}</td><td class="num">{module.line_count}</td>'
                    f'<td class="num">{module.minutes}</td></tr>')
    parts.append('<table class="order"><thead><tr><th>#</th><th>file</th><th>what it teaches'
                 '</th><th>lines</th><th>minutes</th></tr></thead><tbody>'
                 + "".join(rows) + "</tbody></table>")
    return PAGE.format(title="The annotated source", extra="",
                       body='<main class="page">' + "\n".join(parts) + "</main>")


def render_spec_page(book: Book, quotes: list[spec_quotes.Quote]) -> str:
    rows = []
    for quote in quotes:
        module = book.modules[module_name(quote.path)]
        label = quote.ref.text
        code = f"{module.page}#{module.anchor_for_line(quote.line)}"
        rows.append(f'<tr><td><a class="spec" href="{html.escape(quote.ref.url)}">'
                    f'{html.escape(label)}</a></td><td>“{html.escape(quote.words)}”</td>'
                    f'<td><a href="{code}">{html.escape(quote.path)}:{quote.line}</a></td></tr>')
    body = ('<main class="page"><h1>Spec to code</h1>'
            f"<p>Every rule the source quotes ({len(quotes)} quotes), with a link to the spec's "
            "section and to the code that implements it. The table is extracted from the "
            "comments and docstrings by <code>python -m scripts.spec_quotes</code>.</p>"
            '<table class="spec-table"><thead><tr><th>spec</th><th>rule</th><th>code</th></tr>'
            "</thead><tbody>" + "".join(rows) + "</tbody></table></main>")
    return PAGE.format(title="Spec to code", extra="", body=body)


def render(out: Path, files: list[Path] | None = None, root: Path = ROOT) -> Path:
    """Write every page into `out`; returns the index's path."""
    files = files if files is not None else spec_quotes.documented_files(root)
    book = Book(files, root)
    out.mkdir(parents=True, exist_ok=True)
    # One style sheet: the layout, then Pygments' colours for the code.
    (out / "docs.css").write_text(CSS.read_text(encoding="utf-8") + "\n"
                                  + HtmlFormatter(style="default").get_style_defs(".highlight")
                                  + "\n", encoding="utf-8")
    for module in book.modules.values():
        (out / module.page).write_text(render_page(module, book), encoding="utf-8")
    quotes, _ = spec_quotes.all_quotes(files, root)
    (out / "spec.html").write_text(render_spec_page(book, quotes), encoding="utf-8")
    index = out / "index.html"
    index.write_text(render_index(book), encoding="utf-8")
    return index


def screenshot(index: Path, target: Path, root: Path = ROOT) -> None:
    """A 1280x800 picture of the WSGI server's page at the section that calls the application."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise SystemExit("error: --screenshot needs Debian's chromium (apt-get install chromium)")
    book = Book(spec_quotes.documented_files(root), root)
    paths = dict(application_paths(book))
    if "WSGI" not in paths:
        raise SystemExit("error: --screenshot: no path to the application call in the WSGI server")
    call = paths["WSGI"][-1]
    url = (index.parent / call.module.page).as_uri()
    anchor = call.module.anchor_for_line(call.line)
    target.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        # Root in a sandbox without network: no sandbox, no calls to Google's hosts.
        browser = playwright.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            # The whole section, its prose included, from the top of the window.
            page.evaluate("""id => {
                const section = document.getElementById(id).closest('section');
                const header = document.querySelector('header.top').offsetHeight;
                window.scrollTo(0, section.getBoundingClientRect().top + scrollY - header);
            }""", anchor)
            page.screenshot(path=str(target))
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Render servers/ and the site's entry points as side-by-side HTML pages "
                    "(prose beside code), an index with a reading order, and a spec-to-code page.")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "docs",
                        help="folder for the pages (default: var/docs)")
    parser.add_argument("--screenshot", type=Path, metavar="PNG",
                        help="also save a 1280x800 screenshot of one page (needs chromium)")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} exists and is not a folder")
    if args.screenshot and args.screenshot.suffix.lower() != ".png":
        parser.error("--screenshot must name a .png file")
    try:
        index = render(args.out)
    except SyntaxError as exc:
        print(f"error: cannot parse {exc.filename or 'a source file'}: {exc}", file=sys.stderr)
        return 1
    if args.screenshot:
        screenshot(index, args.screenshot)
        print(f"screenshot: {args.screenshot}")
    print(index.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
