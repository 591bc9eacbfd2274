"""The fuzz targets of scripts/fuzz.py: their seeds and every input that once found a
bug replayed in-process, the regressions they found in servers/http11.py, and a
3,000 inputs of real coverage-guided fuzzing per target, fixed seed (atheris, in child processes)."""

import subprocess
import sys

import pytest

from scripts import fuzz
from scripts.launch import REPO
from servers import http11

TARGETS = fuzz.available_targets()


@pytest.mark.parametrize("target", TARGETS)
def test_seeds_and_found_inputs_pass(target):
    test_one_input, seeds, _ = fuzz.TARGETS[target]
    inputs = seeds() + [path.read_bytes() for path in fuzz.regression_inputs(target)]
    assert len(inputs) >= 5
    for data in inputs:
        test_one_input(data)


def statuses(pieces, limits):
    conn = http11.ServerConnection(limits)
    events = []
    for piece in [*pieces, b""]:
        events += conn.receive(piece)
    return [type(event).__name__ if type(event) is not http11.Error else event.status
            for event in events]


def test_a_long_request_line_with_a_bad_byte_gets_one_status_however_split():
    # Found by http11-split: 414 when the whole line came in one read, 400 in two.
    limits = http11.Limits(max_request_line=40)
    raw = b"GET /" + b"a" * 20 + b"\n" + b"b" * 40 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    whole = statuses([raw], limits)
    assert whole == [400]
    for cut in range(1, len(raw)):
        assert statuses([raw[:cut], raw[cut:]], limits) == whole, cut


@pytest.mark.parametrize("fields", [7, 0])
def test_a_bare_lf_before_too_many_fields_gets_one_status_however_split(fields):
    # Found by http11-split: 400 in several reads (a bare LF then CRLF could end the
    # head, which is refused as soon as it is seen), 431 in one (too many fields,
    # judged first on a whole head). With no fields after it, the bare LF ends the
    # head and meets the CRLF of the head's end.
    limits = http11.Limits(max_headers=4)
    raw = (b"GET / HTTP/1.1\r\nHost: x\n\r\n"
           + b"".join(b"X-%d: y\r\n" % n for n in range(fields)) + b"\r\n")
    whole = statuses([raw], limits)
    assert whole == [400]
    for cut in range(1, len(raw)):
        assert statuses([raw[:cut], raw[cut:]], limits) == whole, cut


def test_a_request_line_of_exactly_the_limit_is_accepted_however_split():
    # A read ending with the CR of the line's CRLF used to count that CR as part of
    # the line: a valid line of exactly max_request_line bytes got 414.
    line = b"GET /" + b"a" * 21 + b" HTTP/1.1"
    limits = http11.Limits(max_request_line=len(line))
    raw = line + b"\r\nHost: x\r\n\r\n"
    for cut in range(1, len(raw)):
        assert statuses([raw[:cut], raw[cut:]], limits) == ["Request", "EndOfMessage"], cut
    assert statuses([b"GET /" + b"a" * 22 + b" HTTP/1.1\r\n"], limits) == [414]


def test_split_input_cuts_where_its_prefix_says():
    assert fuzz.split_input(fuzz.split_seed(b"abcdef", cuts=(2, 4))) == [b"ab", b"cd", b"ef"]
    assert fuzz.split_input(b"") == [b""]
    assert b"".join(fuzz.split_input(b"\x07\x00")) == b""


def test_a_target_reports_a_bug_as_an_exception():
    # The split target compares the verdicts of both ways: a parser that disagreed
    # with itself would raise. Here the comparison itself is checked on events.
    accepted = [http11.Request("GET", b"/", b"/", b"", "1.1", [], True, False, 0, False, b""),
                http11.EndOfMessage()]
    assert fuzz.verdicts(accepted) != fuzz.verdicts([http11.Error(400, "bad")])
    assert fuzz.verdicts([http11.Error(400, "a")]) == fuzz.verdicts([http11.Error(400, "b")])
    assert fuzz.verdicts([http11.Error(400, "a")]) != fuzz.verdicts([http11.Error(431, "a")])
    with pytest.raises(AssertionError):
        fuzz.check_http11_sequence([http11.EndOfMessage(), accepted[0]])


def test_every_target_fuzzes_clean_for_a_few_thousand_inputs(tmp_path):
    # A number of inputs and a seed, not a number of seconds: the same inputs run on a
    # fast machine and a slow one, so a finding cannot depend on the machine's speed.
    result = subprocess.run(
        [sys.executable, "-m", "scripts.fuzz", "--runs", "3000", "--seed", "1",
         "--work", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for target in TARGETS:
        line = next(line for line in result.stdout.splitlines() if line.startswith(f"{target}:"))
        assert "no bug found" in line, line
        runs = int(line.split(":")[1].split()[0])
        assert runs >= 3000, line
