"""Coverage-guided fuzzing of the protocol cores with atheris (libFuzzer for Python).

Each target feeds fuzzed bytes to a sans-I/O core and checks what comes out. The
cores answer a malformed peer with an event (http11's Error, websocket's Failed),
and raise their own LocalProtocolError only when the server side misuses them, so
any other exception, or a broken event sequence, is a bug. Targets:

  http11-whole     one request (or several, pipelined) in one read, then EOF; every
                   request that parses is answered, so the response side and
                   next_request() are exercised too
  http11-split     the same bytes cut into reads at fuzzed positions: the same
                   requests must be accepted, with the same events, or refused,
                   as when they come in one read
  http11-chunked   a chunked request head, then a fuzzed body, cut at fuzzed positions
  websocket-frames (when servers/websocket.py exists) fuzzed frames from a client,
                   cut at fuzzed positions, with the protocol's own replies taken

They start from seeds: the requests of tests/http11_corpus.py (valid and malformed)
and, for frames, a few well-formed client frames; libFuzzer mutates from there.
Inputs that ever found a bug live in tests/fuzz_regressions/<target>/ and are replayed
by tests/test_fuzz.py.

    python -m scripts.fuzz --seconds 60                 # every target, one per core
    python -m scripts.fuzz --seconds 600 --targets http11-split

Adding a core: write a function that takes bytes and raises on a bug, a function that
returns seed inputs, and add both to TARGETS.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REGRESSIONS = REPO / "tests" / "fuzz_regressions"
WORK = REPO / "results" / "fuzz"

CHUNKED_HEAD = b"POST /echo HTTP/1.1\r\nHost: fuzz.test\r\nTransfer-Encoding: chunked\r\n\r\n"


# ── How an input is cut into reads ───────────────────────────────────────────────────

def split_input(data):
    """An input is: one byte k (0-7 cuts), k big-endian 16-bit cut positions, the payload."""
    if not data:
        return [b""]
    positions = data[1:1 + 2 * (data[0] & 7)]
    payload = data[1 + len(positions):]
    if not payload:
        return [b""]
    positions = positions[:len(positions) // 2 * 2]   # an input may end inside a position
    cuts = sorted({position % len(payload) for (position,) in struct.iter_unpack("!H", positions)})
    pieces, start = [], 0
    for cut in cuts + [len(payload)]:
        if cut > start:
            pieces.append(payload[start:cut])
            start = cut
    return pieces


def split_seed(payload, cuts=(1, 7, 20)):
    """A seed for a split target: payload cut at `cuts`."""
    return bytes([len(cuts)]) + b"".join(struct.pack("!H", cut) for cut in cuts) + payload


# ── http11 ────────────────────────────────────────────────────────────────────────────

def http11_events(pieces, answer=True):
    """Feed the reads, then EOF; answer each request that parses (so pipelined requests
    follow); return the events. Raises AssertionError when the sequence is malformed."""
    from servers import http11
    conn = http11.ServerConnection(http11.Limits(max_body_size=65536))
    events, current = [], []
    reads = list(pieces) + [b""]
    while reads or current:
        if reads and not (current and isinstance(current[-1], http11.EndOfMessage)):
            current += conn.receive(reads.pop(0))
        check_http11_sequence(current)
        if current and isinstance(current[-1], (http11.Error, http11.ConnectionClosed)):
            events += current
            if isinstance(current[-1], http11.Error) and answer:
                conn.error_response(current[-1].status, current[-1].reason)
            break
        if current and isinstance(current[-1], http11.EndOfMessage):
            events += current
            current = []
            if not answer:
                break
            try:
                conn.start_response(200, [("Content-Type", "text/plain")], content_length=3)
                conn.send_body(b"ok\n")
                conn.end_response()
                if not conn.keep_alive:
                    break
                current = conn.next_request()
            except http11.LocalProtocolError:
                break
        elif not reads:
            events += current
            break
    return events


def check_http11_sequence(events):
    """Request, Data..., EndOfMessage, or a final Error or ConnectionClosed, in that order."""
    from servers import http11
    for index, event in enumerate(events):
        assert type(event) in (http11.Request, http11.Data, http11.EndOfMessage,
                               http11.Error, http11.ConnectionClosed), event
        if type(event) is http11.Request:
            assert index == 0, events
            assert isinstance(event.method, str) and isinstance(event.target, bytes), event
        elif type(event) in (http11.Error, http11.ConnectionClosed):
            assert index == len(events) - 1, events
            if type(event) is http11.Error:
                assert 400 <= event.status <= 599, event
        elif type(event) is http11.Data:
            assert events[0].__class__ is http11.Request and event.data, events
        elif type(event) is http11.EndOfMessage:
            assert events[0].__class__ is http11.Request, events


def verdicts(events):
    """Events with the Data merged and each Error reduced to its status: how a request is
    split must not change what is accepted, how it parses, nor the status of a refusal.
    (The reason may differ: a head still arriving is judged by fewer checks than a
    whole one, which all give the same status where they overlap.)"""
    from servers import http11
    merged = []
    for event in events:
        if type(event) is http11.Data and merged and type(merged[-1]) is http11.Data:
            merged[-1] = http11.Data(merged[-1].data + event.data)
        else:
            merged.append(event)
    return [("refused", event.status) if type(event) is http11.Error else event
            for event in merged]


def fuzz_http11_whole(data):
    http11_events([data])


def fuzz_http11_split(data):
    pieces = split_input(data)
    whole = b"".join(pieces)
    split_verdicts = verdicts(http11_events(pieces, answer=False))
    whole_verdicts = verdicts(http11_events([whole], answer=False))
    assert split_verdicts == whole_verdicts, (pieces, split_verdicts, whole_verdicts)
    http11_events(pieces)


def fuzz_http11_chunked(data):
    pieces = split_input(data)
    http11_events([CHUNKED_HEAD + pieces[0], *pieces[1:]])


def corpus_requests():
    from tests.http11_corpus import INVALID, VALID
    return [raw for _, raw, _ in VALID] + [raw for _, raw, _ in INVALID]


def seeds_http11_whole():
    requests = corpus_requests()
    return requests + [requests[0] + requests[1], requests[0] * 3]


def seeds_http11_split():
    return [split_seed(raw) for raw in corpus_requests()]


def seeds_http11_chunked():
    bodies = []
    for raw in corpus_requests():
        head, _, body = raw.partition(b"\r\n\r\n")
        if b"chunked" in head.lower() and body:
            bodies.append(split_seed(body, cuts=(3,)))
    return bodies + [split_seed(b"5\r\nhello\r\n0\r\n\r\n", cuts=(2,)),
                     split_seed(b"3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n", cuts=(5,))]


# ── websocket (when servers/websocket.py exists) ──────────────────────────────────────

def websocket_available():
    return importlib.util.find_spec("servers.websocket") is not None


def fuzz_websocket_frames(data):
    from servers import websocket
    connection = websocket.Connection(max_message_size=65536)
    for piece in split_input(data) + [b""]:
        events = connection.receive(piece)
        connection.data_to_send()
        for index, event in enumerate(events):
            if type(event) in (websocket.Failed, websocket.ConnectionLost):
                assert index == len(events) - 1, events
        if connection.open:
            try:
                connection.send("fuzz")
                connection.ping(b"p")
            except websocket.LocalProtocolError:
                pass
        if connection.closed:
            break


def client_frame(opcode, payload, fin=True, mask=b"\x01\x02\x03\x04"):
    length = len(payload)
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, 0xFE, length)
    else:
        header = struct.pack("!BBQ", first, 0xFF, length)
    return header + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


def seeds_websocket_frames():
    text, binary, close = client_frame(0x1, "héllo".encode()), client_frame(0x2, b"\x00" * 200), \
        client_frame(0x8, struct.pack("!H", 1000) + b"bye")
    fragmented = client_frame(0x1, b"frag", fin=False) + client_frame(0x9, b"ping") + \
        client_frame(0x0, b"ment")
    return [split_seed(frames, cuts=(1, 2, 6)) for frames in
            (text, binary, close, fragmented, text + close, client_frame(0x2, b"x" * 70000))]


# name: (the function given one input, the seeds, whether the core exists)
TARGETS = {
    "http11-whole": (fuzz_http11_whole, seeds_http11_whole, lambda: True),
    "http11-split": (fuzz_http11_split, seeds_http11_split, lambda: True),
    "http11-chunked": (fuzz_http11_chunked, seeds_http11_chunked, lambda: True),
    "websocket-frames": (fuzz_websocket_frames, seeds_websocket_frames, websocket_available),
}
INSTRUMENTED = {"http11": "servers.http11", "websocket": "servers.websocket"}


def available_targets():
    return [name for name, (_, _, available) in TARGETS.items() if available()]


def regression_inputs(name):
    folder = REGRESSIONS / name
    return sorted(folder.iterdir()) if folder.is_dir() else []


# ── Running: a child process per target, as many at once as there are cores ───────────

def run_target(name, seconds, work, seed, runs=None):
    """In the child process: instrument the core, then let libFuzzer run for `seconds`
    (or for `runs` inputs: with a fixed seed, the same inputs on any machine)."""
    import atheris
    with atheris.instrument_imports(include=["servers"]):
        importlib.import_module(INSTRUMENTED[name.split("-")[0]])
    test_one_input, seeds, _ = TARGETS[name]
    corpus, seed_dir = work / name / "corpus", work / name / "seeds"
    corpus.mkdir(parents=True, exist_ok=True)
    seed_dir.mkdir(parents=True, exist_ok=True)
    for index, data in enumerate(seeds()):
        (seed_dir / f"seed-{index:04d}").write_bytes(data)
    for path in regression_inputs(name):
        (seed_dir / f"regression-{path.name}").write_bytes(path.read_bytes())
    limit = f"-runs={runs}" if runs else f"-max_total_time={seconds}"
    argv = [sys.argv[0], limit, f"-seed={seed}", "-rss_limit_mb=2048",
            "-timeout=10", "-print_final_stats=1", f"-artifact_prefix={work / name}{os.sep}",
            str(corpus), str(seed_dir)]
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


def summarize(output):
    runs = coverage = None
    for line in output.splitlines():
        if match := re.match(r"#(\d+)\s+DONE\s+cov: (\d+)", line):
            runs, coverage = int(match[1]), int(match[2])
        elif match := re.match(r"stat::number_of_executed_units: (\d+)", line):
            runs = int(match[1])
    crash = re.search(r"Test unit written to (\S+)", output)
    return runs, coverage, crash[1] if crash else None


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m scripts.fuzz",
        description="Coverage-guided fuzzing of servers/http11.py (and servers/websocket.py "
                    "when it exists) with atheris; one target per core at a time. Any "
                    "exception other than the core's own LocalProtocolError is a bug.")
    parser.add_argument("--seconds", type=int, default=60, help="how long each target runs (default 60)")
    parser.add_argument("--runs", type=int, default=None, metavar="N",
                        help="run N inputs per target instead of --seconds; with --seed, the "
                             "same inputs on any machine however fast (what make test uses)")
    parser.add_argument("--targets", default="all",
                        help=f"comma-separated targets or 'all' (default; now: "
                             f"{', '.join(available_targets())})")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="targets run at once (default: one per core)")
    parser.add_argument("--work", type=Path, default=WORK,
                        help="where the growing corpus and any crash inputs go (default results/fuzz)")
    parser.add_argument("--seed", type=int, default=0,
                        help="libFuzzer's random seed; 0 (the default) picks one")
    parser.add_argument("--run-one", metavar="TARGET", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.jobs < 1 or (args.runs is not None and args.runs < 1):
        parser.error("--seconds, --runs and --jobs must be at least 1")
    if args.run_one:
        run_target(args.run_one, args.seconds, args.work, args.seed, args.runs)
        return 0
    names = available_targets() if args.targets == "all" else \
        [name.strip() for name in args.targets.split(",") if name.strip()]
    for name in names:
        if name not in TARGETS:
            parser.error(f"unknown target {name!r}; choose from {', '.join(TARGETS)}")
        if name not in available_targets():
            parser.error(f"target {name!r} needs {INSTRUMENTED[name.split('-')[0]]}, which does not exist yet")

    from tqdm import tqdm
    pending, running, failures = list(names), {}, 0
    with tqdm(total=len(names), desc="fuzz targets", unit="target", file=sys.stderr) as progress:
        while pending or running:
            while pending and len(running) < args.jobs:
                name = pending.pop(0)
                log = open(_log_path(args.work, name), "w+")
                child = subprocess.Popen(
                    [sys.executable, "-m", "scripts.fuzz", "--run-one", name,
                     "--seconds", str(args.seconds), "--work", str(args.work),
                     "--seed", str(args.seed)] + (["--runs", str(args.runs)] if args.runs else []),
                    cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
                running[name] = (child, log)
            for name, (child, log) in list(running.items()):
                if child.poll() is None:
                    continue
                del running[name]
                log.seek(0)
                output = log.read()
                log.close()
                runs, coverage, crash = summarize(output)
                if child.returncode == 0:
                    spent = "" if args.runs else f" in {args.seconds} s"
                    tqdm.write(f"{name}: {runs} inputs{spent}, coverage {coverage}, "
                               "no bug found", file=sys.stdout)
                else:
                    failures += 1
                    tqdm.write(f"{name}: BUG (exit {child.returncode}), input saved to {crash}; "
                               f"log in {_log_path(args.work, name)}\n" + output[-3000:],
                               file=sys.stdout)
                progress.update(1)
            time.sleep(0.1)
    return 1 if failures else 0


def _log_path(work, name):
    work.mkdir(parents=True, exist_ok=True)
    return work / f"{name}.log"


if __name__ == "__main__":
    sys.exit(main())
