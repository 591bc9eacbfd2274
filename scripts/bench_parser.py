"""Parse a browser GET head and a small chunked POST many times, with servers.http11
and with h11, and print requests per second for each.

    python -m scripts.bench_parser [--seconds S]

Each measurement parses a fresh connection's request and produces a small response
(start_response + send_body + end_response): the work a server does per request.
The last line is ``ratio_vs_h11_get=X.XX`` (http11 req/s divided by h11 req/s for
the GET head), measured in this same run. Timings are the best of several repeats.
"""

import argparse
import platform
import time

import h11

from servers import http11

# 443 bytes: the header fields Chrome sends when navigating to a page.
GET_HEAD = (
    b"GET / HTTP/1.1\r\n"
    b"Host: 127.0.0.1:8000\r\n"
    b"Connection: keep-alive\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
    b"(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
    b"image/webp,*/*;q=0.8\r\n"
    b"Sec-Fetch-Site: none\r\n"
    b"Sec-Fetch-Mode: navigate\r\n"
    b"Sec-Fetch-Dest: document\r\n"
    b"Accept-Encoding: gzip, deflate\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"\r\n"
)

CHUNKED_POST = (
    b"POST /echo HTTP/1.1\r\n"
    b"Host: 127.0.0.1:8000\r\n"
    b"Content-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
    b"10\r\n{\"name\": \"chair\"\r\n"
    b"b\r\n, \"qty\": 3}\r\n"
    b"0\r\n\r\n"
)

RESPONSE_HEADERS = [(b"Content-Type", b"text/plain; charset=utf-8")]
BODY = b"Hello, world!\n"


def one_http11(raw):
    conn = http11.ServerConnection()
    events = conn.receive(raw)
    assert type(events[-1]) is http11.EndOfMessage, events
    return (conn.start_response(200, RESPONSE_HEADERS, content_length=len(BODY))
            + conn.send_body(BODY) + conn.end_response())


def one_h11(raw):
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    while True:
        event = conn.next_event()
        if type(event) is h11.EndOfMessage:
            break
        assert event is not h11.NEED_DATA, "incomplete request"
    headers = RESPONSE_HEADERS + [(b"Content-Length", b"%d" % len(BODY))]
    return (conn.send(h11.Response(status_code=200, headers=headers))
            + conn.send(h11.Data(data=BODY)) + conn.send(h11.EndOfMessage()))


def rate(function, raw, seconds):
    """Best requests/second over five repeats of about seconds/5 each."""
    function(raw)
    count = 200
    while True:  # calibrate a batch size of about 20 ms
        started = time.perf_counter()
        for _ in range(count):
            function(raw)
        elapsed = time.perf_counter() - started
        if elapsed > 0.02:
            break
        count *= 2
    batches = max(1, int(seconds / 5 / elapsed))
    best = 0.0
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(batches * count):
            function(raw)
        best = max(best, batches * count / (time.perf_counter() - started))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="time per measurement (default 2)")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, h11 {h11.__version__}, "
          f"GET head {len(GET_HEAD)} bytes, chunked POST {len(CHUNKED_POST)} bytes")
    results = {}
    for name, raw in [("get", GET_HEAD), ("chunked_post", CHUNKED_POST)]:
        for parser_name, function in [("http11", one_http11), ("h11", one_h11)]:
            per_second = rate(function, raw, args.seconds)
            results[name, parser_name] = per_second
            print(f"{name:13} {parser_name:7} {per_second:10,.0f} req/s "
                  f"{1e6 / per_second:7.2f} us/req")
    post_ratio = results["chunked_post", "http11"] / results["chunked_post", "h11"]
    print(f"ratio_vs_h11_chunked_post={post_ratio:.2f}")
    get_ratio = results["get", "http11"] / results["get", "h11"]
    print(f"ratio_vs_h11_get={get_ratio:.2f}")


if __name__ == "__main__":
    main()
