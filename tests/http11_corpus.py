"""Requests for testing HTTP/1.1 parsers and servers: valid ones with what they mean,
malformed ones with the status a server must answer.

    VALID    list of (name, raw_bytes, summary): one complete request each; summary is
             a dict (method, target, path, query, http_version, headers, body,
             keep_alive, expect_continue) as servers.http11 reports it, body de-chunked.
    INVALID  list of (name, raw_bytes, expected_status): one request each, refused with
             that status by the time its last byte has arrived (no entry needs EOF or
             more bytes to reach its verdict), under the default Limits and any
             --max-body of at least 1 KiB.
    summarize(events) -> summary of one request's events, in the form VALID uses.
"""

from servers import http11


def summarize(events):
    """The summary of a Request, Data..., EndOfMessage sequence."""
    request = events[0]
    assert isinstance(request, http11.Request), events
    assert isinstance(events[-1], http11.EndOfMessage), events
    return {
        "method": request.method,
        "target": request.target,
        "path": request.path,
        "query": request.query,
        "http_version": request.http_version,
        "headers": request.headers,
        "body": b"".join(event.data for event in events[1:-1]),
        "keep_alive": request.keep_alive,
        "expect_continue": request.expect_continue,
    }


def _summary(method, target, headers, body=b"", *, path=None, query=b"",
             http_version="1.1", keep_alive=True, expect_continue=False):
    return {
        "method": method, "target": target,
        "path": target.partition(b"?")[0] if path is None else path,
        "query": target.partition(b"?")[2] if path is None else query,
        "http_version": http_version, "headers": headers, "body": body,
        "keep_alive": keep_alive, "expect_continue": expect_continue,
    }


HOST = (b"host", b"example.com")

VALID = [
    ("simple-get", b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
     _summary("GET", b"/", [HOST])),
    ("query-string", b"GET /search?q=a%20b&lang=en HTTP/1.1\r\nHost: example.com\r\n\r\n",
     _summary("GET", b"/search?q=a%20b&lang=en", [HOST])),
    ("empty-query", b"GET /a? HTTP/1.1\r\nHost: example.com\r\n\r\n",
     _summary("GET", b"/a?", [HOST])),
    ("question-mark-in-query", b"GET /a?b?c=/d HTTP/1.1\r\nHost: example.com\r\n\r\n",
     _summary("GET", b"/a?b?c=/d", [HOST])),
    ("percent-encoded-path", b"GET /caf%C3%A9/%2F HTTP/1.1\r\nHost: example.com\r\n\r\n",
     _summary("GET", b"/caf%C3%A9/%2F", [HOST])),
    ("sub-delims-in-path", b"GET /a;b=c,d/@:!$&'()*+~ HTTP/1.1\r\nHost: example.com\r\n\r\n",
     _summary("GET", b"/a;b=c,d/@:!$&'()*+~", [HOST])),
    ("head", b"HEAD /hello HTTP/1.1\r\nHost: example.com\r\n\r\n",
     _summary("HEAD", b"/hello", [HOST])),
    ("options-asterisk", b"OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n",
     _summary("OPTIONS", b"*", [HOST], path=b"*")),
    ("absolute-form", b"GET http://example.com/a/b?c=d HTTP/1.1\r\nHost: example.com\r\n\r\n",
     _summary("GET", b"http://example.com/a/b?c=d", [HOST], path=b"/a/b", query=b"c=d")),
    ("absolute-form-empty-path", b"GET https://example.com:8443 HTTP/1.1\r\nHost: example.com\r\n\r\n",
     _summary("GET", b"https://example.com:8443", [HOST], path=b"/")),
    ("extension-method", b"M-SEARCH / HTTP/1.1\r\nHost: example.com\r\n\r\n",
     _summary("M-SEARCH", b"/", [HOST])),
    ("http10-no-host", b"GET /old HTTP/1.0\r\n\r\n",
     _summary("GET", b"/old", [], http_version="1.0", keep_alive=False)),
    ("http10-keep-alive", b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
     _summary("GET", b"/", [(b"connection", b"Keep-Alive")], http_version="1.0")),
    ("http11-close", b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
     _summary("GET", b"/", [HOST, (b"connection", b"close")], keep_alive=False)),
    ("connection-list-with-close",
     b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: TE, Close\r\n\r\n",
     _summary("GET", b"/", [HOST, (b"connection", b"TE, Close")], keep_alive=False)),
    ("higher-minor-version", b"GET / HTTP/1.7\r\nHost: example.com\r\n\r\n",
     _summary("GET", b"/", [HOST])),
    ("leading-empty-lines", b"\r\n\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
     _summary("GET", b"/", [HOST])),
    ("header-case-and-whitespace",
     b"GET / HTTP/1.1\r\nHOST: example.com\r\nX-Padded: \t padded value \t\r\nX-Empty:\r\n\r\n",
     _summary("GET", b"/", [HOST, (b"x-padded", b"padded value"), (b"x-empty", b"")])),
    ("duplicate-headers-kept",
     b"GET / HTTP/1.1\r\nHost: example.com\r\nAccept: a\r\nCookie: x=1\r\nAccept: b\r\n\r\n",
     _summary("GET", b"/", [HOST, (b"accept", b"a"), (b"cookie", b"x=1"), (b"accept", b"b")])),
    ("obs-text-in-value", b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Name: Jos\xe9\r\n\r\n",
     _summary("GET", b"/", [HOST, (b"x-name", b"Jos\xe9")])),
    ("colon-in-value", b"GET / HTTP/1.1\r\nHost: example.com:8080\r\nX-Time: 12:30:00\r\n\r\n",
     _summary("GET", b"/", [(b"host", b"example.com:8080"), (b"x-time", b"12:30:00")])),
    ("host-ipv6", b"GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n",
     _summary("GET", b"/", [(b"host", b"[::1]:8000")])),
    ("host-empty", b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
     _summary("GET", b"/", [(b"host", b"")])),
    ("post-content-length",
     b"POST /echo HTTP/1.1\r\nHost: example.com\r\nContent-Length: 11\r\n\r\nhello world",
     _summary("POST", b"/echo", [HOST, (b"content-length", b"11")], b"hello world")),
    ("post-content-length-zero", b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n",
     _summary("POST", b"/", [HOST, (b"content-length", b"0")])),
    ("content-length-leading-zeros",
     b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 003\r\n\r\nabc",
     _summary("POST", b"/", [HOST, (b"content-length", b"003")], b"abc")),
    ("identical-content-length-lines",
     b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
     _summary("POST", b"/", [HOST, (b"content-length", b"2"), (b"content-length", b"2")], b"ok")),
    ("binary-body",
     b"PUT /blob HTTP/1.1\r\nHost: example.com\r\nContent-Length: 6\r\n\r\n\x00\r\n\xff\r\n",
     _summary("PUT", b"/blob", [HOST, (b"content-length", b"6")], b"\x00\r\n\xff\r\n")),
    ("chunked",
     b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
     _summary("POST", b"/", [HOST, (b"transfer-encoding", b"chunked")], b"hello world")),
    ("chunked-case-and-padding",
     b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding:  Chunked \r\n\r\n"
     b"0000A\r\n0123456789\r\n000\r\n\r\n",
     _summary("POST", b"/", [HOST, (b"transfer-encoding", b"Chunked")], b"0123456789")),
    ("chunk-extensions",
     b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"3;name=value;flag\r\nabc\r\n2 ; q=\"a \\\"b\\\"\"\r\nde\r\n0;last\r\n\r\n",
     _summary("POST", b"/", [HOST, (b"transfer-encoding", b"chunked")], b"abcde")),
    ("chunked-trailers",
     b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
     b"4\r\ndata\r\n0\r\nX-Sum: 42\r\nX-Other: y\r\n\r\n",
     _summary("POST", b"/", [HOST, (b"transfer-encoding", b"chunked"), (b"trailer", b"X-Sum")],
              b"data")),
    ("chunk-data-with-crlf",
     b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"4\r\n\r\n\r\n\r\n0\r\n\r\n",
     _summary("POST", b"/", [HOST, (b"transfer-encoding", b"chunked")], b"\r\n\r\n")),
    ("expect-continue",
     b"POST / HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
     _summary("POST", b"/", [HOST, (b"expect", b"100-continue"), (b"content-length", b"2")],
              b"hi", expect_continue=True)),
    ("expect-continue-ignored-on-http10",
     b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
     _summary("POST", b"/", [(b"expect", b"100-continue"), (b"content-length", b"2")],
              b"hi", http_version="1.0", keep_alive=False)),
    ("browser-get",
     b"GET /products HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: keep-alive\r\n"
     b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\n"
     b"Accept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.8\r\n"
     b"Accept-Language: en-US,en;q=0.5\r\nCookie: a=1; b=2\r\n\r\n",
     _summary("GET", b"/products", [
         (b"host", b"127.0.0.1:8000"), (b"connection", b"keep-alive"),
         (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"),
         (b"accept", b"text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
         (b"accept-language", b"en-US,en;q=0.5"), (b"cookie", b"a=1; b=2")])),
]


def _get(lines=b"Host: example.com\r\n", request_line=b"GET / HTTP/1.1"):
    return request_line + b"\r\n" + lines + b"\r\n"


def _post(framing, body=b""):
    return b"POST / HTTP/1.1\r\nHost: example.com\r\n" + framing + b"\r\n" + body


_CHUNKED = b"Transfer-Encoding: chunked\r\n"

INVALID = [
    # Request line (RFC 9112 §3)
    ("empty-method", _get(request_line=b" / HTTP/1.1"), 400),
    ("slash-in-method", _get(request_line=b"GE/T / HTTP/1.1"), 400),
    ("non-ascii-method", _get(request_line=b"G\xc3\x89T / HTTP/1.1"), 400),
    ("two-spaces-after-method", _get(request_line=b"GET  / HTTP/1.1"), 400),
    ("tab-as-separator", _get(request_line=b"GET\t/ HTTP/1.1"), 400),
    ("space-after-version", _get(request_line=b"GET / HTTP/1.1 "), 400),
    ("space-in-target", _get(request_line=b"GET /a b HTTP/1.1"), 400),
    ("no-version-http09", b"GET /\r\nHost: example.com\r\n\r\n", 400),
    ("lower-case-http-name", _get(request_line=b"GET / http/1.1"), 400),
    ("two-digit-major-version", _get(request_line=b"GET / HTTP/11.1"), 400),
    ("version-without-minor", _get(request_line=b"GET / HTTP/1"), 400),
    ("version-with-letters", _get(request_line=b"GET / HTTP/1.x"), 400),
    ("version-2.0", _get(request_line=b"GET / HTTP/2.0"), 505),
    ("version-3.0", _get(request_line=b"GET / HTTP/3.0"), 505),
    ("version-0.9", _get(request_line=b"GET / HTTP/0.9"), 505),
    ("http2-prior-knowledge-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    ("fragment-in-target", _get(request_line=b"GET /a#frag HTTP/1.1"), 400),
    ("non-ascii-target", _get(request_line=b"GET /caf\xc3\xa9 HTTP/1.1"), 400),
    ("quote-in-target", _get(request_line=b'GET /"x" HTTP/1.1'), 400),
    ("bad-percent-encoding", _get(request_line=b"GET /a%zz HTTP/1.1"), 400),
    ("truncated-percent-encoding", _get(request_line=b"GET /a%2 HTTP/1.1"), 400),
    ("asterisk-for-get", _get(request_line=b"GET * HTTP/1.1"), 400),
    ("relative-target", _get(request_line=b"GET a/b HTTP/1.1"), 400),
    ("authority-form-for-get", _get(request_line=b"GET example.com:80 HTTP/1.1"), 400),
    ("userinfo-in-absolute-form", _get(request_line=b"GET http://user@example.com/ HTTP/1.1"), 400),
    ("ftp-absolute-form", _get(request_line=b"GET ftp://example.com/ HTTP/1.1"), 400),
    ("connect-not-supported", _get(request_line=b"CONNECT example.com:443 HTTP/1.1"), 501),
    ("control-character-in-target", _get(request_line=b"GET /\x01 HTTP/1.1"), 400),
    ("nul-in-request-line", _get(request_line=b"GET /\x00 HTTP/1.1"), 400),
    ("bare-cr-in-request-line", b"GET / HTTP/1.1\rHost: example.com\r\n\r\n", 400),
    ("bare-lf-line-endings", b"GET / HTTP/1.1\nHost: example.com\n\n", 400),
    ("tls-client-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
    ("request-line-too-long", _get(request_line=b"GET /" + b"a" * 8200 + b" HTTP/1.1"), 414),
    ("request-line-too-long-unfinished", b"GET /" + b"a" * 8200, 414),
    # Header fields (RFC 9112 §5, RFC 9110 §5)
    ("whitespace-before-first-field", _get(b" Host: example.com\r\n"), 400),
    ("space-before-colon", _get(b"Host : example.com\r\n"), 400),
    ("tab-before-colon", _get(b"Host\t: example.com\r\n"), 400),
    ("empty-field-name", _get(b"Host: example.com\r\n: value\r\n"), 400),
    ("field-without-colon", _get(b"Host: example.com\r\nX-No-Colon\r\n"), 400),
    ("obs-fold-space", _get(b"Host: example.com\r\nX-Folded: a\r\n b\r\n"), 400),
    ("obs-fold-tab", _get(b"Host: example.com\r\nX-Folded: a\r\n\tb\r\n"), 400),
    ("parenthesis-in-field-name", _get(b"Host: example.com\r\nX(y): 1\r\n"), 400),
    ("non-ascii-field-name", _get(b"Host: example.com\r\nX-\xc3\xa9: 1\r\n"), 400),
    ("nul-in-field-value", _get(b"Host: example.com\r\nX-A: a\x00b\r\n"), 400),
    ("bare-cr-in-field-value", _get(b"Host: example.com\r\nX-A: a\rb\r\n"), 400),
    ("bare-lf-in-field-value", _get(b"Host: example.com\r\nX-A: a\nb\r\n"), 400),
    ("del-in-field-value", _get(b"Host: example.com\r\nX-A: a\x7fb\r\n"), 400),
    ("escape-in-field-value", _get(b"Host: example.com\r\nX-A: \x1b[31m\r\n"), 400),
    ("field-line-too-large", _get(b"Host: example.com\r\nX-Big: " + b"a" * 8200 + b"\r\n"), 431),
    ("too-many-fields",
     _get(b"Host: example.com\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(100))), 431),
    ("head-too-large",
     _get(b"Host: example.com\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 7000)
                                              for i in range(10))), 431),
    # Host (RFC 9112 §3.2, RFC 9110 §7.2)
    ("missing-host", _get(b"Accept: */*\r\n"), 400),
    ("two-host-fields", _get(b"Host: example.com\r\nHost: evil.example\r\n"), 400),
    ("two-host-fields-http10",
     _get(b"Host: example.com\r\nHost: example.com\r\n", b"GET / HTTP/1.0"), 400),
    ("space-in-host", _get(b"Host: example com\r\n"), 400),
    ("slash-in-host", _get(b"Host: example.com/evil\r\n"), 400),
    ("userinfo-in-host", _get(b"Host: user@example.com\r\n"), 400),
    ("letters-in-host-port", _get(b"Host: example.com:http\r\n"), 400),
    ("unclosed-ipv6-host", _get(b"Host: [::1\r\n"), 400),
    # Message framing, request smuggling (RFC 9112 §6)
    ("content-length-and-chunked", _post(b"Content-Length: 5\r\n" + _CHUNKED, b"0\r\n\r\n"), 400),
    ("chunked-and-content-length", _post(_CHUNKED + b"Content-Length: 5\r\n", b"0\r\n\r\n"), 400),
    ("content-length-list-equal", _post(b"Content-Length: 5, 5\r\n", b"hello"), 400),
    ("content-length-list-differing", _post(b"Content-Length: 5, 6\r\n", b"hello"), 400),
    ("differing-content-length-lines",
     _post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello"), 400),
    ("content-length-plus-sign", _post(b"Content-Length: +5\r\n", b"hello"), 400),
    ("content-length-negative", _post(b"Content-Length: -1\r\n"), 400),
    ("content-length-hex", _post(b"Content-Length: 0x5\r\n", b"hello"), 400),
    ("content-length-empty", _post(b"Content-Length: \r\n"), 400),
    ("content-length-inner-space", _post(b"Content-Length: 1 0\r\n", b"0123456789"), 400),
    ("content-length-non-ascii-digits", _post(b"Content-Length: \xd9\xa3\r\n", b"abc"), 400),
    ("content-length-decimal", _post(b"Content-Length: 5.0\r\n", b"hello"), 400),
    ("content-length-too-many-digits", _post(b"Content-Length: 99999999999999999999\r\n"), 413),
    ("chunked-on-http10",
     b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("gzip-without-chunked", _post(b"Transfer-Encoding: gzip\r\n", b"hello"), 400),
    ("unknown-coding-only", _post(b"Transfer-Encoding: foo\r\n", b"hello"), 400),
    ("chunked-not-last", _post(b"Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n"), 400),
    ("gzip-then-chunked-not-implemented",
     _post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"), 501),
    ("chunked-twice", _post(b"Transfer-Encoding: chunked, chunked\r\n", b"0\r\n\r\n"), 400),
    ("chunked-on-two-lines", _post(_CHUNKED + _CHUNKED, b"0\r\n\r\n"), 400),
    ("empty-transfer-encoding", _post(b"Transfer-Encoding: \r\n", b"0\r\n\r\n"), 400),
    ("xchunked", _post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"), 400),
    ("chunked-with-parameter", _post(b"Transfer-Encoding: chunked;q=1\r\n", b"0\r\n\r\n"), 400),
    ("space-before-colon-transfer-encoding",
     _post(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"), 400),
    # Chunked bodies (RFC 9112 §7.1)
    ("chunk-size-not-hex", _post(_CHUNKED, b"g\r\n"), 400),
    ("chunk-size-negative", _post(_CHUNKED, b"-5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-plus-sign", _post(_CHUNKED, b"+5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-0x-prefix", _post(_CHUNKED, b"0x5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-leading-space", _post(_CHUNKED, b" 5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-trailing-space", _post(_CHUNKED, b"5 \r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-empty", _post(_CHUNKED, b"\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-17-digits", _post(_CHUNKED, b"00000000000000005\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-overflow", _post(_CHUNKED, b"fffffffffffffffff0\r\n"), 400),
    ("chunk-size-bare-lf", _post(_CHUNKED, b"5\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-data-longer-than-size", _post(_CHUNKED, b"5\r\nhelloXX\r\n0\r\n\r\n"), 400),
    ("chunk-data-bare-lf-terminator", _post(_CHUNKED, b"5\r\nhello\n0\r\n\r\n"), 400),
    ("chunk-extension-without-name", _post(_CHUNKED, b"5;\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-extension-control-character", _post(_CHUNKED, b"5;a\x01\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-extension-unterminated-quote",
     _post(_CHUNKED, b'5;a="b\r\nhello\r\n0\r\n\r\n'), 400),
    ("chunk-line-too-long", _post(_CHUNKED, b"5;a=" + b"b" * 5000 + b"\r\n"), 400),
    ("trailer-without-colon", _post(_CHUNKED, b"0\r\nX-Trailer\r\n\r\n"), 400),
    ("trailer-content-length", _post(_CHUNKED, b"0\r\nContent-Length: 5\r\n\r\n"), 400),
    ("trailer-transfer-encoding", _post(_CHUNKED, b"0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400),
    ("trailer-host", _post(_CHUNKED, b"0\r\nHost: evil.example\r\n\r\n"), 400),
    ("trailer-obs-fold", _post(_CHUNKED, b"0\r\nX-A: a\r\n b\r\n\r\n"), 400),
    ("trailer-space-before-colon", _post(_CHUNKED, b"0\r\nX-A : a\r\n\r\n"), 400),
    ("trailer-nul-in-value", _post(_CHUNKED, b"0\r\nX-A: a\x00\r\n\r\n"), 400),
    ("trailer-bare-lf-in-value", _post(_CHUNKED, b"0\r\nX-A: a\nb\r\n\r\n"), 400),
    ("trailer-bare-cr-in-value", _post(_CHUNKED, b"0\r\nX-A: a\rb\r\n\r\n"), 400),
]
