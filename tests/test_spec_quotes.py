"""scripts/spec_quotes.py: every quote in the source is read, and docs/design.md's
spec-to-code table is the one the source gives (`--update` writes it, `--check` and
this test catch a stale one)."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from scripts import spec_quotes

REPO = Path(__file__).resolve().parent.parent
DESIGN = REPO / "docs" / "design.md"
FILES = spec_quotes.documented_files(REPO)


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_every_quote_in_the_source_is_read():
    _, unparsed = spec_quotes.all_quotes(FILES, REPO)
    assert [f"{miss.path}:{miss.line}: {miss.text}" for miss in unparsed] == []


def test_the_design_documents_table_is_up_to_date():
    quotes, _ = spec_quotes.all_quotes(FILES, REPO)
    text = DESIGN.read_text(encoding="utf-8")
    expected = spec_quotes.replace_table(text, spec_quotes.design_table(quotes, REPO))
    assert text == expected, ("docs/design.md's spec-to-code table is out of date: "
                              "run python -m scripts.spec_quotes --update docs/design.md")
    assert spec_quotes.main(["--check", str(DESIGN)]) == 0


def test_the_table_has_a_row_for_each_quote_of_the_asgi_server():
    quotes, _ = spec_quotes.all_quotes([REPO / "servers" / "asgi_server.py"], REPO)
    assert len(quotes) > 20
    table = spec_quotes.design_table(quotes, REPO).splitlines()
    assert len(table) == 2 + len(quotes)
    assert all("`servers/asgi_server.py`" in row for row in table[2:])


def test_check_fails_on_a_stale_table_and_update_mends_it(tmp_path, capsys):
    source = write(tmp_path, "rules.py", '''
        # RFC 9110 §8.6: "a recipient MUST anticipate potentially large decimal numerals"
        LIMIT = 19
        ''')
    document = write(tmp_path, "design.md", f"""
        # Design

        {spec_quotes.TABLE_START}

        | an old table |

        {spec_quotes.TABLE_END}

        The end.
        """)
    assert spec_quotes.main(["--check", str(document), str(source)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert spec_quotes.main(["--update", str(document), str(source)]) == 0
    text = document.read_text(encoding="utf-8")
    assert "an old table" not in text
    assert text.endswith(f"{spec_quotes.TABLE_END}\n\nThe end.\n")
    assert ('| RFC 9110 | [§8.6](https://www.rfc-editor.org/rfc/rfc9110#section-8.6) | '
            '"a recipient MUST anticipate potentially large decimal numerals" | ') in text
    assert text.count("| `LIMIT` |") == 1
    assert spec_quotes.main(["--check", str(document), str(source)]) == 0


def test_a_document_without_the_markers_is_a_clear_error(tmp_path, capsys):
    document = write(tmp_path, "design.md", "# Design\n\nNo table here.\n")
    with pytest.raises(SystemExit) as exit:
        spec_quotes.main(["--check", str(document)])
    assert exit.value.code == 2
    assert "marker comments" in capsys.readouterr().err


def test_the_owner_is_the_definition_a_quote_stands_in_or_above():
    source = textwrap.dedent('''
        """The module docstring: line 1."""
        # Above a constant: line 2.
        LIMIT = 3


        class Cycle:
            """The class docstring: line 7."""

            # Above a method: line 9.
            def send(self):
                # Inside the method: line 11.
                return {
                    # Inside a literal: line 13.
                    "a": 1,
                }


        @staticmethod
        # Among the decorators: line 19.
        def helper():
            pass
        # After everything: line 22.
        ''').lstrip("\n")
    tree = ast.parse(source)
    owners = {line: spec_quotes.owner(tree, line) for line in (1, 2, 7, 9, 11, 13, 19, 22)}
    assert owners == {1: "", 2: "LIMIT", 7: "Cycle", 9: "Cycle.send", 11: "Cycle.send",
                      13: "Cycle.send", 19: "helper", 22: ""}


def test_a_quote_continues_over_comment_lines_inside_brackets(tmp_path):
    path = write(tmp_path, "servers/scope.py", '''
        scope = {
            "type": "websocket",
            # ASGI extensions ("Websocket Denial Response"): "ASGI Servers that
            # implement this extension will provide ``websocket.http.response`` in
            # the extensions part of the scope"
            "extensions": {"websocket.http.response": {}},  # ASGI spec: "an end-of-line quote"
        }
        ''')
    quotes, unparsed = spec_quotes.extract(path, tmp_path)
    assert unparsed == []
    assert [(q.ref.spec, q.ref.section, q.words, q.line) for q in quotes] == [
        ("ASGI extensions", "Websocket Denial Response",
         "ASGI Servers that implement this extension will provide ``websocket.http.response`` "
         "in the extensions part of the scope", 3),
        ("ASGI main", "", "an end-of-line quote", 6),
    ]
    assert quotes[0].ref.url == (
        "https://asgi.readthedocs.io/en/latest/extensions.html#websocket-denial-response")
