"""`make docs`: the annotated source as side-by-side pages (scripts/render_docs.py).

First the renderer alone, on the real files and on small ones written here: every
source line appears once and in order, every comment and docstring appears, every
link leads somewhere that exists, spec references become the right URLs, quotes are
extracted. Then every page in headless chromium: no JavaScript error, two columns
side by side at 1280 pixels with no horizontal scrolling, links followed.
"""

from __future__ import annotations

import html
import re
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from scripts import literate, render_docs, spec_quotes

REPO = Path(__file__).resolve().parent.parent
FILES = spec_quotes.documented_files(REPO)
PAGES = [render_docs.module_name(p.relative_to(REPO).as_posix()) + ".html" for p in FILES]
EXTERNAL = ("https://www.rfc-editor.org/rfc/rfc", "https://peps.python.org/pep-",
            "https://asgi.readthedocs.io/en/latest/specs/",
            "https://asgi.readthedocs.io/en/latest/extensions.html")


class Links(HTMLParser):
    """Every href and every id of a page."""

    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag in ("a", "link") and "href" in attributes:
            self.hrefs.append(attributes["href"])


def links_of(path: Path) -> Links:
    parser = Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text))


def page_text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def code_column(markup: str) -> list[tuple[int, str]]:
    """(line number, text) of every code line of a page, in page order."""
    rows = []
    for chunk in markup.split('<span class="line" id="L')[1:]:
        number, rest = chunk.split('"', 1)
        rest = rest.split("</pre>", 1)[0]
        rows.append((int(number), html.unescape(re.sub(r"<[^>]+>", "", rest.split(">", 1)[1]))))
    return rows


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    """The real files rendered once into a temporary folder; the index's folder."""
    return render_docs.render(tmp_path_factory.mktemp("docs")).parent


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


# ── The renderer alone ─────────────────────────────────────────────────────

def test_every_file_is_rendered_with_the_agreed_names(book):
    names = {path.name for path in book.glob("*.html")}
    assert {"index.html", "spec.html", "servers.http11.html", "servers.wsgi_server.html",
            "sample_site.cgi-bin.django.html", "sample_site.wsgi.html"} <= names
    assert set(PAGES) <= names
    assert "servers.__init__.html" not in names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_source_line_appears_once_in_order(path):
    source = path.read_text(encoding="utf-8")
    parsed = literate.parse(source)
    placed = [n for s in parsed.sections for n in
              [m for block in s.prose for m in block.lines] + s.code]
    assert sorted(placed) == list(range(1, len(parsed.lines) + 1))
    code = [n for s in parsed.sections for n in s.code]
    assert code == sorted(code)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_code_column_holds_the_code_lines_verbatim(book, path):
    parsed = literate.parse(path.read_text(encoding="utf-8"))
    page = book / (render_docs.module_name(path.relative_to(REPO).as_posix()) + ".html")
    rows = code_column(page.read_text(encoding="utf-8"))
    assert [number for number, _ in rows] == [n for s in parsed.sections for n in s.code]
    for number, text in rows:
        assert text.rstrip() == parsed.lines[number - 1].rstrip(), f"line {number}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_comment_and_docstring_appears(book, path):
    parsed = literate.parse(path.read_text(encoding="utf-8"))
    page = book / (render_docs.module_name(path.relative_to(REPO).as_posix()) + ".html")
    text = words(page_text(page.read_text(encoding="utf-8")))
    prose = [block for section in parsed.sections for block in section.prose]
    assert len(prose) == len(parsed.blocks)
    for block in parsed.blocks:
        assert words(f"{block.title or ''} {block.text}") in text, f"line {block.first}"
    for line, comment in parsed.code_comments.items():
        assert words(comment) in text, f"line {line}"


def test_every_link_target_exists(book):
    pages = {page: links_of(page) for page in sorted(book.glob("*.html"))}
    followed = 0
    for page, found in pages.items():
        for href in found.hrefs:
            parts = urlsplit(href)
            if parts.scheme:
                assert href.startswith(EXTERNAL), f"{page.name}: {href}"
                continue
            target = book / parts.path if parts.path else page
            assert target.exists(), f"{page.name}: {href}"
            if parts.fragment:
                assert parts.fragment in pages[target].ids, f"{page.name}: {href}"
                followed += 1
    assert followed > 100


def test_spec_references_become_links_in_prose_and_code(book):
    markup = (book / "servers.http11.html").read_text(encoding="utf-8")
    assert 'href="https://www.rfc-editor.org/rfc/rfc9112#section-6.3"' in markup
    assert 'href="https://www.rfc-editor.org/rfc/rfc9110#section-10.1.1"' in markup


@pytest.mark.parametrize("reference, url", [
    ("RFC 9112 §6.3", "https://www.rfc-editor.org/rfc/rfc9112#section-6.3"),
    ("RFC 9110 §10.1.1", "https://www.rfc-editor.org/rfc/rfc9110#section-10.1.1"),
    ("RFC 3875 §4.1.5", "https://www.rfc-editor.org/rfc/rfc3875#section-4.1.5"),
    ("RFC 6455 §5.2", "https://www.rfc-editor.org/rfc/rfc6455#section-5.2"),
    ("RFC 9112", "https://www.rfc-editor.org/rfc/rfc9112"),
    ("PEP 3333", "https://peps.python.org/pep-3333/"),
    ('PEP 3333 ("The start_response() Callable")',
     "https://peps.python.org/pep-3333/#the-start-response-callable"),
    ('ASGI HTTP spec ("Response Start")',
     "https://asgi.readthedocs.io/en/latest/specs/www.html#response-start-send-event"),
    ('ASGI HTTP spec ("Disconnect")',
     "https://asgi.readthedocs.io/en/latest/specs/www.html#disconnect-receive-event"),
    ('ASGI lifespan spec ("Startup Complete")',
     "https://asgi.readthedocs.io/en/latest/specs/lifespan.html#startup-complete-send-event"),
    ("ASGI spec", "https://asgi.readthedocs.io/en/latest/specs/main.html"),
    ('ASGI extensions ("Websocket Denial Response")',
     "https://asgi.readthedocs.io/en/latest/extensions.html#websocket-denial-response"),
])
def test_a_spec_reference_becomes_the_right_url(reference, url):
    found = spec_quotes.spec_refs(f"see {reference}: more")
    assert [ref.url for _, _, ref in found] == [url]
    assert found[0][2].text == reference


def test_a_file_with_no_comments_still_renders(tmp_path):
    path = write(tmp_path, "servers/plain.py", """
        import os


        def cwd():
            return os.getcwd()
        """)
    index = render_docs.render(tmp_path / "out", [path], tmp_path)
    markup = (index.parent / "servers.plain.html").read_text(encoding="utf-8")
    assert [text for _, text in code_column(markup)] == path.read_text().splitlines()
    assert '<a class="def" id="cwd"></a>' in markup
    assert 'href="servers.plain.html"' in index.read_text(encoding="utf-8")


def test_names_link_to_their_definition_in_another_file(tmp_path):
    first = write(tmp_path, "servers/first.py", '''
        """The first module."""

        LIMIT = 3


        class Thing:
            """A thing."""

            def use(self):
                return LIMIT


        def helper():
            return Thing()
        ''')
    second = write(tmp_path, "servers/second.py", '''
        """Uses `first.Thing` and `helper()`, from servers/first.py."""

        from servers import first
        from servers.first import helper as assist


        def make():
            # Both spellings reach the definitions in first.py.
            return first.Thing(), assist(), first.LIMIT
        ''')
    out = render_docs.render(tmp_path / "out", [first, second], tmp_path).parent
    markup = (out / "servers.second.html").read_text(encoding="utf-8")
    for href in ("servers.first.html#Thing", "servers.first.html#helper",
                 "servers.first.html#LIMIT", "servers.first.html"):
        assert f'href="{href}"' in markup
    ids = links_of(out / "servers.first.html").ids
    assert {"Thing", "Thing.use", "helper", "LIMIT"} <= ids
    # The prose's `first.Thing` links too, and the contents list names the class.
    assert '<a class="name" href="servers.first.html#Thing">first.Thing</a>' in markup
    assert '<a href="servers.first.html">servers/first.py</a>' in markup
    assert '<a href="#Thing">class Thing</a>' in (out / "servers.first.html").read_text()


def test_a_docstring_sits_beside_its_def_line(tmp_path):
    source = textwrap.dedent('''
        # The helpers.

        @staticmethod
        def decorated():
            """Explains decorated()."""
            return 1
        ''').lstrip()
    parsed = literate.parse(source)
    owner = next(s for s in parsed.sections if any(b.kind == "docstring" for b in s.prose))
    # The comment block and the docstring share a section with the decorator and def lines.
    assert [b.kind for b in owner.prose] == ["comment", "docstring"]
    assert [parsed.lines[n - 1] for n in owner.code if parsed.lines[n - 1].strip()] == [
        "@staticmethod", "def decorated():", "    return 1"]


def test_line_numbers_follow_python_across_a_form_feed(tmp_path):
    path = write(tmp_path, "servers/paged.py", 'A = 1\n\x0c\n# Part two.\nB = "\u2028"\n')
    parsed = literate.parse(path.read_text(encoding="utf-8"))
    assert parsed.blocks[0].first == 3 and len(parsed.lines) == 4
    out = render_docs.render(tmp_path / "out", [path], tmp_path).parent
    rows = code_column((out / "servers.paged.html").read_text(encoding="utf-8"))
    assert rows == [(1, "A = 1"), (2, "\x0c"), (4, 'B = "\u2028"')]


def test_a_comment_inside_brackets_stays_in_the_code():
    parsed = literate.parse('VALUES = [\n    1,\n    # the second one\n    2,\n]\n')
    assert parsed.blocks == []
    assert parsed.code_comments == {3: "# the second one"}


def test_quotes_are_extracted_in_every_form_and_bad_ones_reported(tmp_path):
    path = write(tmp_path, "servers/rules.py", '''
        def f():
            # RFC 9112 §6.3: "If a message is received with both a Transfer-Encoding
            # and a Content-Length header field ... the Transfer-Encoding overrides".
            # PEP 3333 ("The start_response() Callable"): "must be a Python list".
            # ASGI HTTP spec ("Response Start"): "need not flush the data".
            # RFC 9112 §9.3: "If the "close" connection option is present".
            # RFC 9110 §15.5.9: 408 "the server did not receive a complete request".
            # RFC 9110 §5.6.2:  token = 1*tchar, tchar = "!" / "#"
            # ASGI HTTP spec: http.disconnect is "sent to the application".
            # RFC 9110 §4.2.4 says "A sender MUST NOT generate the userinfo (and its "@" delimiter)".
            # PEP 3333 ("HTTP 1.1 Expect/Continue") offers: "... response if/when".
            # PEP 3333 allows it ("if the iterable returned by the application has a len()").
            # RFC 6455 §5.2: "an unfinished quote
            return 1
        ''')
    quotes, unparsed = spec_quotes.extract(path, tmp_path)
    found = [(q.ref.spec, q.ref.section, q.words, q.line) for q in quotes]
    assert found == [
        ("RFC 9112", "6.3", "If a message is received with both a Transfer-Encoding and a "
                            "Content-Length header field ... the Transfer-Encoding overrides", 2),
        ("PEP 3333", "The start_response() Callable", "must be a Python list", 4),
        ("ASGI www", "Response Start", "need not flush the data", 5),
        ("RFC 9112", "9.3", 'If the "close" connection option is present', 6),
        ("RFC 9110", "15.5.9", "the server did not receive a complete request", 7),
        ("ASGI www", "", "sent to the application", 9),
        ("RFC 9110", "4.2.4", 'A sender MUST NOT generate the userinfo (and its "@" delimiter)', 10),
        ("PEP 3333", "HTTP 1.1 Expect/Continue", "... response if/when", 11),
    ]
    # Reported: a quote in parentheses (a form not read) and a quote never closed.
    assert [(miss.path, miss.line) for miss in unparsed] == [
        ("servers/rules.py", 12), ("servers/rules.py", 13)]


def test_each_quote_is_found_on_the_line_of_its_reference(tmp_path):
    path = write(tmp_path, "servers/banner.py", '''
        # ---------------------------------------------------------------------------
        # Framing
        # ---------------------------------------------------------------------------
        # RFC 9112 §6.3: "the message body length is zero".


        def f():
            """What f does.

            PEP 3333 ("The write() Callable"): "must not be called".
            """
        ''')
    quotes, _ = spec_quotes.extract(path, tmp_path)
    assert [(q.ref.text, q.line) for q in quotes] == [
        ("RFC 9112 §6.3", 4), ('PEP 3333 ("The write() Callable")', 10)]
    real, _ = spec_quotes.all_quotes(FILES, REPO)
    for quote in real:
        line = (REPO / quote.path).read_text(encoding="utf-8").splitlines()[quote.line - 1]
        assert quote.ref.text.split()[0] in line, (quote.path, quote.line)


def test_spec_quotes_cli_prints_a_markdown_table(tmp_path, capsys):
    path = write(tmp_path, "rules.py", '# RFC 9110 §8.6: "a recipient MUST anticipate"\n')
    assert spec_quotes.main([str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| spec | rule | code |"
    assert out[2].startswith("| [RFC 9110 §8.6](https://www.rfc-editor.org/rfc/rfc9110#section-8.6)"
                             ' | "a recipient MUST anticipate" |')


def test_the_spec_page_links_each_quote_to_spec_and_code(book):
    markup = (book / "spec.html").read_text(encoding="utf-8")
    quotes, _ = spec_quotes.all_quotes(FILES, REPO)
    assert len(quotes) > 20
    rows = markup.split("<tr>")[2:]
    assert len(rows) == len(quotes)
    for row in rows:
        assert re.search(r'<a class="spec" href="https://', row)
        assert re.search(r'<a href="(servers|sample_site)\.[\w.-]+\.html#(L|section-)\d+">', row)


def test_the_index_leads_to_each_application_call(book):
    markup = (book / "index.html").read_text(encoding="utf-8")
    paths = dict(re.findall(r'<h3>(\w+)</h3><ol class="path">(.*?)</ol>', markup))
    assert set(paths) == {"CGI", "WSGI", "ASGI"}
    for interface, steps in paths.items():
        links = re.findall(r'<a href="([\w.-]+\.html)#(L\d+|section-\d+)">', steps)
        # Each step links to a line of a rendered file; the last is the application call.
        page, anchor = links[-1]
        assert anchor.startswith("L") and steps.endswith("</li>")
        assert "the application is called" in steps.rsplit("<li>", 1)[1]
        source = FILES[PAGES.index(page)].read_text(encoding="utf-8").splitlines()
        assert re.search(r"\b(app|application)\(", source[int(anchor[1:]) - 1]), interface
    assert "subprocess.Popen" in paths["CGI"] or "spawn" in paths["CGI"]
    assert "lines a minute" in markup
    for page in PAGES:
        assert f'href="{page}"' in markup


def test_call_paths_cross_modules_bases_and_callbacks(tmp_path):
    base = write(tmp_path, "servers/base.py", """
        class Response:
            def run_application(self, application, environ):
                return application(environ, self.start_response)

            def start_response(self, status, headers):
                pass
        """)
    server = write(tmp_path, "servers/server.py", """
        import threading

        from servers import base


        class Exchange(base.Response):
            def run(self, app):
                return self.run_application(app, {})


        class Pool:
            def __init__(self):
                self.thread = threading.Thread(target=self.work)

            def work(self):
                Exchange().run(None)


        class Handler:
            def data_received(self, data):
                exchange = Exchange()
                exchange.run(data)


        def main():
            runner = Pool()
            runner.run()
        """)
    book = render_docs.Book([base, server], tmp_path)
    graph = render_docs.call_paths.CallGraph(book)
    goal = ("servers.base", "Response.run_application")
    start, chain = graph.path({goal}, ("servers.server", "main"))
    # main -> Pool.__init__ -> (thread target) Pool.work -> Exchange.run -> the base's method;
    # `runner.run()` names no method of ours (Pool has no run) and is not followed.
    assert start == ("servers.server", "main")
    assert [(caller[1], callee[1]) for caller, callee, _ in chain] == [
        ("main", "Pool.__init__"), ("Pool.__init__", "Pool.work"), ("Pool.work", "Exchange.run"),
        ("Exchange.run", "Response.run_application")]
    # Without the thread's target, main leads nowhere: the path begins at the function
    # nearest the goal that nothing calls (as asyncio calls a Protocol's data_received).
    graph.callers.pop(("servers.server", "Pool.work"))
    start, chain = graph.path({goal}, ("servers.server", "main"))
    assert start == ("servers.server", "Handler.data_received")
    assert chain[-1][1] == goal


def test_render_docs_refuses_a_file_as_output_folder(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(SystemExit) as exit_info:
        render_docs.main(["--out", str(target)])
    assert exit_info.value.code == 2
    assert "is not a folder" in capsys.readouterr().err


# ── Every page in a real browser ───────────────────────────────────────────

def open_page(page, path: Path, fragment: str = "") -> list[str]:
    """Load a page; returns the JavaScript errors and console errors it produced."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on("console", lambda message: errors.append(f"console: {message.text}")
            if message.type == "error" else None)
    page.goto(path.as_uri() + fragment)
    page.wait_for_load_state("load")
    return errors


@pytest.mark.parametrize("name", ["index.html", "spec.html"] + PAGES)
def test_page_in_browser_two_columns_no_horizontal_scroll(book, page, name):
    errors = open_page(page, book / name)
    assert errors == []
    widths = page.evaluate("[document.scrollingElement.scrollWidth,"
                           " document.scrollingElement.clientWidth]")
    assert widths[0] <= widths[1], widths
    if name in ("index.html", "spec.html"):
        return
    # Every section: the prose column left of the code column, on the same row.
    misplaced = page.evaluate("""() => {
        const bad = [];
        for (const section of document.querySelectorAll('section.sec')) {
            const prose = section.querySelector('.prose').getBoundingClientRect();
            const code = section.querySelector('.code').getBoundingClientRect();
            if (!(prose.width > 200 && code.width > 400 && prose.right <= code.left + 1
                  && Math.abs(prose.top - code.top) < 1 && code.right <= innerWidth))
                bad.push(section.id);
        }
        return [document.querySelectorAll('section.sec').length, bad];
    }""")
    assert misplaced[0] > 0 and misplaced[1] == []


def test_browser_spec_link_and_cross_file_link(book, page):
    assert open_page(page, book / "servers.wsgi_server.html") == []
    spec = page.locator('a.spec[href*="rfc-editor.org/rfc/rfc"]').first
    assert re.fullmatch(r"https://www\.rfc-editor\.org/rfc/rfc\d+#section-\d+(\.\d+)*",
                        spec.get_attribute("href"))
    # Any name the WSGI server takes from another module of servers/ (http11, pep3333, ...).
    cross = page.locator('.code a.name[href^="servers."][href*="#"]'
                         ':not([href^="servers.wsgi_server.html"])').first
    href = cross.get_attribute("href")
    cross.click()
    page.wait_for_url(re.compile(re.escape(href) + "$"))
    target, fragment = href.split("#", 1)
    assert page.evaluate("id => document.getElementById(id) !== null", fragment)
    assert page.url.endswith(href) and target != "servers.wsgi_server.html"


def test_browser_index_link_to_the_application_call(book, page):
    assert open_page(page, book / "index.html") == []
    link = page.locator('ol.path a[href^="servers.asgi_server.html#L"]').last
    href = link.get_attribute("href")
    link.click()
    page.wait_for_url(re.compile(re.escape(href) + "$"))
    line = page.evaluate("id => document.getElementById(id).textContent", href.split("#")[1])
    assert "app(" in line


def test_prose_keeps_grammar_and_angle_brackets_as_text(tmp_path):
    path = write(tmp_path, "servers/grammar.py", '''
        # ---------------------------------------------------------------------------
        # The grammar
        # ---------------------------------------------------------------------------

        # RFC 9110 §5.6.2:  token = 1*tchar
        #   list = *( OWS "," ) element
        # Bodies are traced as <N bytes>, never as **bold**.
        TOKEN = "x"
        ''')
    out = render_docs.render(tmp_path / "out", [path], tmp_path).parent
    markup = (out / "servers.grammar.html").read_text(encoding="utf-8")
    assert "<h3>The grammar</h3>" in markup and "<hr" not in markup
    assert '<li class="part"><a href="#section-0">The grammar</a></li>' in markup
    # The grammar is a code block, aligned as written, its spec reference still a link.
    assert ('<pre><code><a class="spec" href="https://www.rfc-editor.org/rfc/rfc9110#section-5.6.2">'
            'RFC 9110 §5.6.2</a>:  token = 1*tchar\n  list = *( OWS "," ) element\n</code></pre>'
            ) in markup
    assert "<p>Bodies are traced as &lt;N bytes&gt;, never as **bold**.</p>" in markup
