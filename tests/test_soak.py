"""A short soak of each toy server (scripts/soak.py): a few hundred mixed requests over
every endpoint with every kind of fault, two bursts over the concurrency limit, then
SIGTERM with requests in flight. Asserted: every well-formed request answered
correctly (a 503 only in a burst over a limit), every malformed one refused with its
status, descriptors, threads and children back to the baseline, and a clean shutdown.
Nothing timed is asserted: the memory figures are reported, not judged, here."""

import json

import pytest

from scripts import soak

# CGI starts a Python process and imports Django for every request: fewer requests
# and connections keep its run short on a small machine.
SIZES = {"wsgi": (150, 16), "asgi": (150, 16), "cgi": (30, 8)}
IN_FLIGHT = 8


@pytest.fixture(scope="module", params=soak.TOY_SERVERS)
def row(request):
    kind = request.param
    requests, connections = SIZES[kind]
    return soak.soak_server(kind, requests=requests, connections=connections,
                            in_flight=IN_FLIGHT, seed=17)


def test_every_well_formed_request_is_answered_correctly(row):
    assert row["errors"] == []
    assert row["wrong"] == 0 and row["lost"] == 0
    assert row["correct"] + row["limited_503"] == row["sent"]
    assert row["correct"] >= SIZES[row["kind"]][0]


def test_every_malformed_request_gets_its_status(row):
    assert row["malformed_sent"] >= 1
    assert row["malformed_refused"] == row["malformed_sent"]


def test_every_kind_of_fault_and_both_bursts_ran(row):
    operations = row["operations"]
    for fault in soak.FAULTS:
        assert operations.get(fault, 0) >= 1, (fault, operations)
    assert operations["burst"] == 2
    if row["kind"] == "wsgi":
        # No limit that answers 503: a burst waits for the thread pool.
        assert row["limited_503"] == 0


def test_descriptors_threads_and_children_return_to_the_baseline(row):
    baseline, after = row["baseline"], row["after"]
    assert after["fds"] <= baseline["fds"], (baseline, after)
    assert after["threads"] <= baseline["threads"], (baseline, after)
    assert after["children"] <= baseline["children"], (baseline, after)
    if row["kind"] == "cgi":
        assert after["children"] == 0


def test_shutdown_under_load_completes_everything_in_flight(row):
    shutdown = row["shutdown"]
    assert shutdown["problems"] == []
    assert shutdown["completed"] == IN_FLIGHT, shutdown
    assert shutdown["corrupt"] == 0
    assert shutdown["exit_status"] == 0
    assert not shutdown["group_left"]


def test_the_report_prints_a_table_and_the_goals(row):
    lines = soak.report([row])
    assert lines[0].split()[:3] == ["server", "sent", "correct"]
    assert lines[2].split()[0] == row["kind"]
    assert any("[PASS ] threads back to baseline" in line for line in lines), lines
    assert any("WebSocket /ws/echo" in line for line in lines)


def test_several_results_make_one_table(row, tmp_path, capsys):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps({"rows": [row]}))
    second.write_text(json.dumps({"rows": [dict(row, kind="again")]}))
    assert soak.main(["--report-from", str(first), str(second)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in table[2:4]] == [row["kind"], "again"]


class Received:
    """What classify_cut reads of a client: the bytes that arrived before the cut."""

    def __init__(self, data):
        self.buffer = bytearray(data)


def test_a_cut_answer_is_clean_only_when_it_is_a_prefix_of_the_right_one():
    stream = soak.Exchange("GET", "/stream?chunks=3&delay_ms=0", soak.exactly(soak.stream_body(3)))
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert soak.classify_cut(Received(b""), stream) == "cut"
    assert soak.classify_cut(Received(b"HTTP/1.1 2"), stream) == "cut"
    assert soak.classify_cut(Received(head + b"d\r\nchunk 1 of 3\n\r\n"), stream) == "cut"
    assert soak.classify_cut(Received(head + b"d\r\nchunk 1 of 3\n\r\nd\r\nchunk 2"), stream) == "cut"
    assert soak.classify_cut(Received(head + b"d\r\nchunk 9 of 3\n\r\n"), stream) == "corrupt"
    assert soak.classify_cut(Received(b"garbage"), stream) == "corrupt"


def test_bad_command_lines_get_a_one_line_error(capsys):
    for argv in (["--servers", "nope"], ["--requests", "0"], ["--report-from", "/no/such/file"]):
        with pytest.raises(SystemExit) as exit_info:
            soak.main(argv)
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith("python -m scripts.soak: error:")
