# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03b · WebSockets: one connection, both directions, held open
#
# **Learning goals.** After this notebook you can
# - read a WebSocket's opening handshake byte by byte, and compute its `Sec-WebSocket-Accept`;
# - read the `websocket` scope and the `websocket.*` messages an ASGI server hands an application;
# - decode a frame by hand (FIN, opcode, mask, length) and check it against `servers/websocket.py`;
# - show with measurements why ASGI holds hundreds of open connections in one thread, and what
#   a thread-per-request WSGI server would need for the same;
# - compare server-sent events and WebSocket: direction, framing, bytes per message, round trips;
# - follow a chat between two clients through a Channels consumer and its channel layer;
# - write a WebSocket application on the bare ASGI messages.

# %% [markdown]
# **How to use this notebook.** Run the cells from top to bottom (Shift-Enter). A cell that
# starts a server does it in a `with nb.server(...) as srv:` block: the server starts on a free
# port, the cell waits until it answers, and the server stops when the block ends, also when the
# cell fails. If you interrupt or restart the kernel, its servers are stopped too.
# Set `TOOLKIT_QUICK=1` in the environment before starting Jupyter for short measurements.
#
# **Exercises.** Some ask you to write code, some to *predict* a result before the cell that
# measures it (the measuring cell records your prediction when it starts). Each check cell
# prints ✅, or ❌ with a hint; it fails until your answer works. Under each exercise a
# collapsed *Solution* cell waits: open it after trying, not before.
#
# The clients here write their bytes themselves (`scripts/ws_helpers.py`, on plain sockets) so
# that every byte can be shown. The sample site refuses a WebSocket whose `Origin` header does
# not name one of its hosts (Channels' `AllowedHostsOriginValidator`, as a browser would send
# it): these clients send the server's own origin.

# %%
# Setup: work from the repository root, load the helpers as `nb` (notebooks/classroom.py).
import base64, hashlib, json, math, statistics, struct, time
import matplotlib.pyplot as plt
from classroom import setup
nb = setup()
from scripts import ws_helpers as wsh
from servers import websocket

# %% [markdown]
# ## 1. The opening handshake
#
# A WebSocket begins as an ordinary HTTP/1.1 `GET` carrying `Upgrade: websocket`, a random
# `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`. If the application accepts, the server
# answers `101 Switching Protocols`, and from then on the same TCP connection carries
# *frames*, in both directions, for as long as either side wants. We open one to the site's
# `/ws/echo` under the toy ASGI server with `--trace`, send `hello`, read the answer and close;
# then an ordinary HTTP request to the same server, for comparison.

# %%
with nb.server("asgi", extra=["--trace"]) as srv:
    mark = len(srv.output())
    client = wsh.RawWebSocket(srv, "/ws/echo")
    sent = client.send("hello")
    reply = client.receive()
    close_reply, after_close = client.close()
    ws_trace = nb.trace_blocks(nb.output_since(srv, mark))
    mark = len(srv.output())
    nb.fetch(srv.url, "/hello")
    http_trace = nb.trace_blocks(nb.output_since(srv, mark))
print("──── the client wrote (␍␊ marks each CRLF) ────")
print(wsh.show_crlf(client.request))
print("──── the server answered ────")
print(wsh.show_crlf(client.response))

# %% [markdown]
# The accept value proves the server read *this* handshake (a cache or a plain HTTP server
# could not produce it): SHA-1 of the key followed by a fixed GUID from RFC 6455 §4.2.2, in
# base64. Computed here, and by `servers/websocket.py`:

# %%
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
by_hand = base64.b64encode(hashlib.sha1(client.key + GUID).digest()).decode()
answered = client.header("Sec-WebSocket-Accept")
print("Sec-WebSocket-Key             :", client.key.decode())
print("computed here                 :", by_hand)
print("servers.websocket.accept_key  :", websocket.accept_key(client.key).decode())
print("the server's answer           :", answered)
print("The server's accept value", "matches" if answered == by_hand else "does NOT match", "the one computed here.")

# %% [markdown]
# ### What the application saw
#
# The server's `--trace`: the request head, the `scope`, then every message between the
# server and the application. The 101 leaves only when the application sends
# `websocket.accept`: until then the application may still refuse (`websocket.close`, which
# the client sees as a 403).

# %%
nb.show_trace(ws_trace)

# %%
ws_messages = [b.message_type() for b in ws_trace if b.message_type()]
print("messages in order:", " → ".join(ws_messages))
first_response = next(i for i, b in enumerate(ws_trace) if b.title == "response")
accept_at = next(i for i, b in enumerate(ws_trace) if b.message_type() == "websocket.accept")
print(f"The 101 response is block {first_response} of the trace, right after websocket.accept (block {accept_at}): "
      + ("the application decided." if first_response == accept_at + 1 else "look at the order above."))

# %% [markdown]
# The `websocket` scope beside the `http` scope of `GET /hello` on the same server:

# %%
ws_scope = next(b for b in ws_trace if b.title == "scope").mapping()
http_scope = next(b for b in http_trace if b.title == "scope").mapping()
nb.side_by_side({"websocket scope (/ws/echo)": ws_scope, "http scope (/hello)": http_scope})
only_ws = [key for key in ws_scope if key not in http_scope]
only_http = [key for key in http_scope if key not in ws_scope]
print(f"Only in the websocket scope: {only_ws}; only in the http scope: {only_http}.")
print(f"type {ws_scope['type']!r}, scheme {ws_scope['scheme']!r}: there is no method (a WebSocket is always a GET), "
      "and no response to send: the application answers the connect, then talks in messages.")

# %% [markdown]
# ## 2. Frames, decoded by hand
#
# After the 101, every message travels in one or more frames (RFC 6455 §5.2). The first byte
# holds FIN (last frame of the message?), three reserved bits and the opcode (1 text, 2 binary,
# 8 close, 9 ping, 10 pong); the second holds MASK and a 7-bit length (126 and 127 mean: the
# length follows in 2 or 8 bytes). A frame from the client carries a 4-byte masking key, and
# its payload is XORed with it; a frame from the server is never masked.
#
# The frame our client sent for `hello`:

# %%
def show_header(frame):
    b0, b1 = frame[0], frame[1]
    print(f"byte 0 = {b0:08b}: FIN={b0 >> 7}, RSV={(b0 >> 4) & 7:03b}, opcode={b0 & 0x0F} ({wsh.OPCODE_NAMES[b0 & 0x0F]})")
    print(f"byte 1 = {b1:08b}: MASK={b1 >> 7}, length={b1 & 0x7F}")

print("client → server:", sent.hex(" "))
show_header(sent)
mask, masked = sent[2:6], sent[6:]
unmasked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(masked))
print("masking key    :", mask.hex(" "))
print("masked payload :", masked.hex(" "))
print("XOR, byte by byte with key[i % 4]:", unmasked)

# %% [markdown]
# `servers/websocket.py` parses the same bytes, as the server did (bytes in, events out: no
# socket involved):

# %%
parsed = websocket.Connection().receive(sent)
print("servers.websocket.Connection().receive(...) →", parsed)
print("The parser", "agrees with" if parsed == [websocket.Message(unmasked.decode())] else "DISAGREES with", "the hand decoding.")
byte_by_byte = websocket.Connection()
events = [byte_by_byte.receive(sent[i:i + 1]) for i in range(len(sent))]
print(f"Fed one byte at a time (TCP may cut a frame anywhere): {sum(not e for e in events)} calls answered [] "
      f"while the frame was incomplete, the last one {events[-1]}.")

# %% [markdown]
# The parser's code, to read beside the hand decoding: the same bits of byte 0 and byte 1,
# then the refusals RFC 6455 requires (each quoted beside its check), then the unmasking.

# %%
nb.show_source(websocket.Connection._parse_frame)

# %% [markdown]
# And the server's answer, which came back unmasked:

# %%
print("server → client:", reply.wire.hex(" "))
show_header(reply.wire)
print("payload        :", reply.wire[2:])
built = websocket.Connection().send("hello")
print("servers.websocket.Connection().send('hello') →", built.hex(" "),
      "(the same bytes)" if built == reply.wire else "(different bytes!)")
for size in (300, 70_000):
    header = websocket.Connection().send("x" * size)[:10 if size >= 65536 else 4]
    print(f"a {size:,}-byte text message starts {header.hex(' ')}: length {header[1]}, then the real length "
          f"in {len(header) - 2} bytes: {int.from_bytes(header[2:], 'big'):,}")
print(f"On the wire: {len(sent)} bytes from the client for a 5-byte message (2 header + 4 mask + 5), "
      f"{len(reply.wire)} from the server (2 header + 5).")

# %% [markdown]
# The close: our client sent a Close frame with code 1000; the server echoed it, then closed
# the TCP connection first, as RFC 6455 §7.1.1 asks of servers.

# %%
print("server's Close frame:", close_reply.wire.hex(" "))
code = struct.unpack("!H", close_reply.payload[:2])[0]
print(f"opcode {close_reply.opcode} ({close_reply.kind}), code {code}"
      + (" (normal closure)" if code == 1000 else ""))
print("After it, the server", "closed TCP (recv() gave b'')." if after_close == b"" else f"sent more: {after_close!r}")

# %% [markdown]
# ## 3. Holding connections open: threads or one event loop?
#
# A chat, a live dashboard, a notification feed: each client keeps its connection open for
# minutes and is silent most of the time. Under WSGI, a request holds a thread from start to
# end, and a stream of server-sent events (`/events`) is one long request. Under ASGI, an open
# WebSocket is a task waiting on the event loop.
#
# **Predict first.** Next, the toy ASGI server holds hundreds of open WebSockets (2,000 in full
# mode), and the toy WSGI server holds as many `/events` streams. While they do, how many
# threads will each server process have: `"a few"` or `"one per connection"`? And how much
# memory will each open WebSocket add to the ASGI server, in KB: `1`, `10`, `100` or `1000`?
# (The server keeps a socket, a protocol object, a parser with its buffers, the application's
# task and its coroutine frames.)

# %%
prediction_holding = {"threads, toy ASGI server": ..., "threads, toy WSGI server": ..., "KB per WebSocket": ...}

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** The ASGI server waits for all its sockets in one event loop, in one thread; a
# WSGI thread runs one request from start to end, so each open stream holds one. A few Python
# objects, buffers and a suspended coroutine come to kilobytes, not hundreds of them.
#
# ```python
# prediction_holding = {"threads, toy ASGI server": "a few", "threads, toy WSGI server": "one per connection",
#                       "KB per WebSocket": 10}
# ```

# %% [markdown]
# First the ASGI side: open the WebSockets one after the other, then send a message on every
# one of them and read every answer (all are really served), and read the server's memory and
# threads with psutil, before and while it holds them.

# %%
nb.record_prediction("holding", prediction_holding)
HELD = nb.pick(2000, 300)
# --ws-ping-interval 0: no keep-alive pings, which these silent clients would not answer.
with nb.server("asgi", extra=["--ws-ping-interval", "0"]) as srv:
    warm = wsh.RawWebSocket(srv, "/ws/echo")                   # the first one loads Channels' code
    warm.send("warm up"); warm.receive(); warm.close()
    held, asgi_samples = wsh.hold_websockets(srv, "/ws/echo", HELD, desc="opening WebSockets", every=HELD // 10)
    asgi_before = asgi_samples[0][1]
    asgi_echoed = wsh.echo_on_each(held, desc="one echo on each")
    asgi_holding = wsh.process_memory(srv)
    wsh.release(held)
asgi_per_kb = (asgi_holding.rss - asgi_before.rss) / HELD / 1024
print(f"The toy ASGI server held {HELD:,} WebSockets; {asgi_echoed:,} of them answered an echo while all were open.")
print(f"Memory: {asgi_before.rss / 2**20:.1f} MB before, {asgi_holding.rss / 2**20:.1f} MB holding them: "
      f"{asgi_per_kb:.1f} KB per open WebSocket. Threads: {asgi_before.threads} before, {asgi_holding.threads} while holding them.")

# %% [markdown]
# Now the WSGI side, with the toy WSGI server as it is usually run: 8 threads. Eight clients
# open `/events` streams (each lasts a few seconds); while they last, a ninth client asks for
# `/hello`, a page that takes a millisecond. And, to be fair to the WSGI server, we ask it for
# a WebSocket too.

# %%
STREAM = {"count": nb.pick(11, 5), "interval_ms": 500}
STREAM_SECONDS = (STREAM["count"] - 1) * STREAM["interval_ms"] / 1000
events_path = f"/events?count={STREAM['count']}&interval_ms={STREAM['interval_ms']}"
with nb.server("wsgi", extra=["--threads", "8", "--graceful-timeout", "2"]) as srv:
    nb.fetch(srv.url, "/hello")                                # the first request warms Django up
    hello_alone = nb.fetch(srv.url, "/hello")
    wsgi_idle = wsh.process_memory(srv)
    try:
        wsh.RawWebSocket(srv, "/ws/echo").abandon()
        wsgi_websocket = "101: it accepted (unexpected)"
    except ConnectionRefusedError as refused:
        wsgi_websocket = str(refused)
    started = time.monotonic()
    eight, _ = wsh.hold_event_streams(srv, events_path, 8, desc="8 event streams")
    readers = wsh.read_all_in_threads(eight)
    ninth = nb.fetch(srv.url, "/hello")
    ninth_done = time.monotonic() - started
    for reader in readers:
        reader.join()
stream_ends = sorted(stream.ended - started for stream in eight)
ninth_sent = ninth_done - ninth.seconds
first_free = stream_ends[0] - ninth_sent          # how long after the 9th was sent the first stream ended
print(f"A WebSocket handshake to the WSGI server: {wsgi_websocket}. It reached Django as a plain GET: PEP 3333 gives "
      "the application no way to take over the socket, and /ws/echo is no Django URL.")
print(f"Alone, /hello took {hello_alone.seconds * 1000:.1f} ms. With 8 streams open (each about {STREAM_SECONDS:.1f} s "
      f"long), the 9th client's /hello took {ninth.seconds:.2f} s; the first stream ended {first_free:.2f} s after "
      "the 9th request was sent.")
print("The 9th request " + ("waited for a thread: it was answered only as a stream ended and freed one."
                            if ninth.seconds >= 0.8 * first_free else "did not wait for a stream to end: look at the chart."))

# %%
fig, ax = plt.subplots(figsize=(9, 3.2))
for row, stream in enumerate(eight):
    ax.barh(row, stream.ended - stream.opened, left=stream.opened - started, color="#4f81bd")
ax.barh(8, ninth.seconds, left=ninth_sent, color="#c0504d")
ax.text(ninth_sent + 0.05, 8, "sent, waiting for a free thread … answered", va="center",
        color="white", fontsize=8)
ax.set_yticks(range(9), [f"stream {n}" for n in range(1, 9)] + ["9th: /hello"])
ax.set_xlabel("seconds"); ax.set_title("Toy WSGI server, 8 threads: 8 open streams, then a 9th request")
plt.show()

# %% [markdown]
# To hold as many long-lived connections as the ASGI server just did, a WSGI server needs as
# many threads. We give the toy WSGI server `--threads` that many and hold as many `/events`
# streams, and measure it as we measured the ASGI server. The toy WSGI server starts all its
# threads when it starts: the number must be chosen before the first client comes.

# %%
with nb.server("wsgi", extra=["--threads", str(HELD), "--graceful-timeout", "2"]) as srv:
    nb.fetch(srv.url, "/hello")
    streams, wsgi_samples = wsh.hold_event_streams(srv, "/events?count=1000&interval_ms=1000", HELD,
                                                    desc="event streams", every=HELD // 10)
    wsgi_holding = wsh.process_memory(srv)
    wsh.release(streams)
wsgi_per_kb = (wsgi_holding.rss - wsgi_idle.rss) / HELD / 1024
nb.table([("toy ASGI server, WebSockets", HELD, asgi_holding.threads, asgi_holding.rss / 2**20, asgi_per_kb),
          (f"toy WSGI server --threads {HELD}, /events streams", HELD, wsgi_holding.threads, wsgi_holding.rss / 2**20, wsgi_per_kb),
          ("toy WSGI server --threads 8, idle", 0, wsgi_idle.threads, wsgi_idle.rss / 2**20, "")],
         ["server", "open connections", "threads", "memory MB", "KB per connection"])

# %%
fig, (memory_axis, thread_axis) = plt.subplots(1, 2, figsize=(11, 3.6))
for name, samples, colour in (("toy ASGI server, WebSockets", asgi_samples, "#9bbb59"),
                              (f"toy WSGI server --threads {HELD}, /events", wsgi_samples, "#4f81bd")):
    counts = [count for count, _ in samples]
    memory_axis.plot(counts, [m.rss / 2**20 for _, m in samples], marker="o", color=colour, label=name)
    thread_axis.plot(counts, [m.threads for _, m in samples], marker="o", color=colour, label=name)
memory_axis.plot([0], [wsgi_idle.rss / 2**20], "s", color="grey", label="toy WSGI server --threads 8, idle")
memory_axis.set_xlabel("open connections"); memory_axis.set_ylabel("resident memory MB"); memory_axis.set_ylim(bottom=0)
thread_axis.set_xlabel("open connections"); thread_axis.set_ylabel("threads in the server")
memory_axis.legend(fontsize=8); fig.suptitle("Holding long-lived connections: one event loop, or a thread each")
plt.show()

# %%
print(f"Holding {HELD:,} connections, the ASGI server ran {asgi_holding.threads} thread(s) and the WSGI server {wsgi_holding.threads}.")
print(f"Memory per connection: {asgi_per_kb:.1f} KB on the event loop, {wsgi_per_kb:.1f} KB with a thread each "
      f"(compared with the 8-thread server idle): "
      + (f"{wsgi_per_kb / asgi_per_kb:.1f}x as much." if asgi_per_kb > 0 and wsgi_per_kb > asgi_per_kb
         else "not more, on this machine: the thread's cost is not its memory here, but its scheduling and the "
              "limit it puts on the server (a fixed --threads, chosen in advance)."))
print(f"Virtual memory (address space reserved, mostly thread stacks): {asgi_holding.vms / 2**20:,.0f} MB for the "
      f"ASGI server, {wsgi_holding.vms / 2**20:,.0f} MB for the WSGI server with {wsgi_holding.threads} threads.")
print(f"With its usual 8 threads, the WSGI server held 8 streams, and the 9th client waited {ninth.seconds:.1f} s "
      "for a page that takes milliseconds: a WSGI server must be sized in threads for the connections it holds open, "
      "an ASGI server is not.")

# %% tags=["check"]
def how_many(threads):
    return "one per connection" if threads >= HELD else "a few"

nearest_power_of_ten = 10 ** round(math.log10(max(asgi_per_kb, 0.1)))
nb.check_prediction("holding", {"threads, toy ASGI server": how_many(asgi_holding.threads),
                                "threads, toy WSGI server": how_many(wsgi_holding.threads),
                                "KB per WebSocket": nearest_power_of_ten},
                    hint="Who waits for an idle connection: a thread blocked in the application, or the event loop? "
                         "And the memory: see the line printed after the ASGI measurement.");

# %% [markdown]
# ## 4. Server-sent events and WebSocket, side by side
#
# Both keep a connection open so the server can push. Server-sent events (`/events`,
# `Content-Type: text/event-stream`) are one long HTTP response: text lines `data: ...`, each
# event ended by a blank line, inside HTTP/1.1's chunked framing. They go one way; to talk
# back, the client makes new HTTP requests. A WebSocket carries frames both ways. Measured on
# the toy ASGI server: the bytes of each on the wire, then round trips.

# %%
EVENTS = 5
ROUNDS = nb.pick(500, 100)
with nb.server("asgi", extra=["--ws-ping-interval", "0"]) as srv:
    stream = wsh.EventStream(srv, f"/events?count={EVENTS}&interval_ms=50")
    sse_body = stream.read_to_end()

    client = wsh.RawWebSocket(srv, "/ws/echo")
    ws_up = client.send("1")
    ws_down = client.receive().wire
    ws_times = []
    for number in range(ROUNDS):
        began = time.perf_counter()
        client.send(f"message {number}")
        echoed = client.receive().payload
        ws_times.append(time.perf_counter() - began)
        assert echoed == f"message {number}".encode(), f"sent message {number}, got {echoed!r}"
    client.close()

    # Talking back over HTTP: a POST on a kept-alive connection (the view answers the body's size and hash).
    import socket
    post = (f"POST /echo HTTP/1.1\r\nHost: {srv.host}:{srv.port}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: 1\r\n\r\n1").encode()
    http_times = []
    with socket.create_connection((srv.host, srv.port)) as raw:
        for number in range(ROUNDS + 1):
            began = time.perf_counter()
            http_down = wsh.exchange(raw, post)
            if number:                                    # the first one warms Django up
                http_times.append(time.perf_counter() - began)

    fresh_times = []
    for number in range(ROUNDS // 5):
        began = time.perf_counter()
        fresh = wsh.RawWebSocket(srv, "/ws/echo")
        fresh.send("hello")
        fresh.receive()
        fresh_times.append(time.perf_counter() - began)
        fresh.abandon()
print(wsh.show_crlf(stream.head))
print(repr(sse_body))

# %%
chunks = [chunk for chunk in wsh.dechunk(sse_body) if chunk]
sse_per_event = (len(sse_body) - len(b"0\r\n\r\n")) / EVENTS
event_payload = statistics.mean(len(chunk) - len(b"data: \n\n") for chunk in chunks)
rows = [
    ("direction", "server → client only; the client talks back with new HTTP requests", "both ways, one connection"),
    ("framing", "text: 'data: …' lines, a blank line, inside chunked transfer coding",
     "binary: a 2 to 14-byte header per frame"),
    ("bytes on the wire, server → client, one 1-byte message",
     f"{sse_per_event:.0f} (chunk size line, 'data: ', payload, blank line, CRLF)", f"{len(ws_down)}"),
    ("bytes on the wire, client → server, one 1-byte message",
     f"{len(post)} + {len(http_down)} (a minimal POST, and its response)", f"{len(ws_up)} (header, mask, payload)"),
    ("round trip on an open connection, median ms", f"{statistics.median(http_times) * 1000:.2f} (POST /echo, kept alive)",
     f"{statistics.median(ws_times) * 1000:.2f} (echo)"),
]
nb.table(rows, ["", "server-sent events (/events)", "WebSocket (/ws/echo)"])

# %%
ws_ms, http_ms, fresh_ms = (statistics.median(t) * 1000 for t in (ws_times, http_times, fresh_times))
print(f"Pushing a 1-byte event cost {sse_per_event:.0f} bytes as an SSE event and {len(ws_down)} as a WebSocket frame: "
      f"{sse_per_event / len(ws_down):.1f}x. Each event carried {event_payload:.0f} byte(s) of data.")
print(f"Answering the server cost {len(post) + len(http_down)} bytes as an HTTP POST and its response, "
      f"{len(ws_up)} as a WebSocket frame.")
print(f"An echo on an open WebSocket took {ws_ms:.2f} ms (median of {ROUNDS}); a POST on a kept-alive HTTP connection "
      f"{http_ms:.2f} ms: " + ("the WebSocket was faster." if ws_ms < http_ms else "the POST was as fast or faster.")
      + " Both are one network round trip; the difference is the work on each side: a POST goes through Django's"
        " whole request handling (middleware, a sync view in a thread), an echo through Channels' router to a"
        " small async function.")
print(f"A new WebSocket for each message (TCP connect, handshake, then the message: three round trips) took "
      f"{fresh_ms:.2f} ms, {fresh_ms / ws_ms:.0f}x an echo on an open one: keep the socket open.")

# %% [markdown]
# The same two in ASGI messages, from `--trace`: to the application, each event of the stream is
# one more `http.response.body` with `more_body: True` in a response that never ends until the
# last one; a WebSocket message is one `websocket.send` (or `websocket.receive`), whole.

# %%
with nb.server("asgi", extra=["--trace"]) as srv:
    mark = len(srv.output())
    wsh.EventStream(srv, "/events?count=2&interval_ms=50").read_to_end()
    sse_messages = [b for b in nb.trace_blocks(nb.output_since(srv, mark)) if b.message_type()]
    mark = len(srv.output())
    client = wsh.RawWebSocket(srv, "/ws/echo")
    client.send("1"); client.receive(); client.close()
    ws_messages_2 = [b for b in nb.trace_blocks(nb.output_since(srv, mark)) if b.message_type()]
nb.side_by_side({"/events?count=2": "\n".join(f"{b.title}: {b.text}" for b in sse_messages),
                 "/ws/echo, one message": "\n".join(f"{b.title}: {b.text}" for b in ws_messages_2)})
bodies = [b for b in sse_messages if b.message_type() == "http.response.body"]
more = sum("'more_body': True" in b.text for b in bodies)
print(f"Two events took {len(bodies)} http.response.body messages: {more} with more_body True, and "
      f"{len(bodies) - more} that ended the response; "
      f"the WebSocket's one message went in {sum(b.message_type() == 'websocket.send' for b in ws_messages_2)} websocket.send.")

# %% [markdown]
# ## 5. The chat: two clients in one room
#
# `/ws/chat/<room>?name=...` is a Channels consumer (`sample_site/shop/consumers.py`): each
# member joins a channel-layer group, and a message sent to the group reaches every member's
# consumer, which sends it down its own WebSocket. Here Ann and Bob join the room `lesson`
# with the `websockets` library, and each prints what it receives. (In a browser: `make
# demo-asgi`, then open http://127.0.0.1:8000/chat in two tabs.)

# %%
from websockets.sync.client import connect

def member(srv, name):
    return connect(f"ws://{srv.host}:{srv.port}/ws/chat/lesson?name={name}", origin=wsh.origin_of(srv),
                   proxy=None, compression=None, open_timeout=30)

def receive_until(client, kind, log):
    while True:
        message = json.loads(client.recv(timeout=30))
        log.append(message)
        if message["type"] == kind:
            return message

heard = {"Ann": [], "Bob": []}
with nb.server("asgi") as srv:
    with member(srv, "Ann") as ann:
        receive_until(ann, "join", heard["Ann"])
        with member(srv, "Bob") as bob:
            receive_until(bob, "here", heard["Bob"])        # Ann answers Bob's join with "here"
            receive_until(ann, "join", heard["Ann"])        # Ann sees Bob join
            said = time.perf_counter()
            bob.send(json.dumps({"text": "Hello Ann, Bob here."}))
            got = receive_until(ann, "message", heard["Ann"])
            delivered_ms = (time.perf_counter() - said) * 1000
            receive_until(bob, "message", heard["Bob"])     # the sender gets the message too
        receive_until(ann, "leave", heard["Ann"])
nb.side_by_side({name: "\n".join(json.dumps(m) for m in log) for name, log in heard.items()})
print(f"Bob's message reached Ann {delivered_ms:.1f} ms after he sent it: {got['name']} said {got['text']!r}.")
print("Ann's list of who is connected once Bob has left, built from the join and leave messages:",
      sorted({m["name"] for m in heard["Ann"] if m["type"] == "join"} - {m["name"] for m in heard["Ann"] if m["type"] == "leave"}))

# %% [markdown]
# Nothing here polled: Ann's socket stayed open and silent, and the server wrote to it the
# moment Bob's message arrived. With the in-memory channel layer, the room lives in one server
# process; `CHANNEL_LAYER=redis` lets several processes share it.

# %% [markdown]
# ## Exercises
#
# **1. A WebSocket application on the bare ASGI messages.** Write `app`, which
# - accepts the connection (answer `websocket.connect` with `websocket.accept`);
# - answers every text message with the same text in upper case;
# - closes the connection with code 1003 (in RFC 6455 §7.4.1, a type of data the endpoint
#   cannot accept) when it gets a binary message;
# - returns when it receives `websocket.disconnect`.
#
# The next cell writes it to a file; the check serves it with the toy ASGI server inside the
# ASGI checker (`servers/asgi_checker.py`), which refuses any message out of order.

# %%
APPS = nb.workdir("apps")

# %%
# %%writefile var/notebooks/apps/shout_asgi.py
async def app(scope, receive, send):
    ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** One loop over `receive()`, one branch per message type.
#
# ```python
# (APPS / "shout_asgi.py").write_text('''async def app(scope, receive, send):
#     while True:
#         message = await receive()
#         if message["type"] == "websocket.connect":
#             await send({"type": "websocket.accept"})
#         elif message["type"] == "websocket.receive":
#             if message.get("text") is not None:
#                 await send({"type": "websocket.send", "text": message["text"].upper()})
#             else:
#                 await send({"type": "websocket.close", "code": 1003})
#         else:  # websocket.disconnect
#             return
# ''')
# ```

# %% tags=["check"]
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

def try_shout():
    (APPS / "shout_checked.py").write_text("from servers.asgi_checker import checked\n"
                                           "from shout_asgi import app as shout\n\napp = checked(shout)\n")
    with nb.server("asgi", app="shout_checked:app", pythonpath=APPS, extra=["--trace", "--lifespan", "off"]) as srv:
        with connect(f"ws://{srv.host}:{srv.port}/", proxy=None, compression=None, open_timeout=30) as shout:
            answers = []
            for text in ("hello", "café ☕"):
                shout.send(text)
                answers.append(shout.recv(timeout=10))
            assert answers == ["HELLO", "CAFÉ ☕"], f"sent 'hello' and 'café ☕', got back {answers}"
            shout.send(b"\x00\x01")
            try:
                shout.recv(timeout=10)
                raise AssertionError("a binary message was answered, not closed")
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
            assert code == 1003, f"after a binary message the close code was {code}, not 1003"
        # The server hands the app websocket.disconnect once the close handshake is over; wait for its trace.
        deadline = time.monotonic() + 20
        while "websocket.disconnect" not in srv.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        output = srv.output()
    assert "Traceback" not in output and "ASGIViolation" not in output, output[-600:]
    messages = [b.message_type() for b in nb.trace_blocks(output) if b.message_type()]
    assert "websocket.disconnect" in messages, f"the trace shows no websocket.disconnect: {messages}"
    return f"{answers} came back, and a binary message closed the socket with 1003."

nb.check_code(try_shout, hint="a `while True:` loop on `await receive()`: accept on websocket.connect; on "
              "websocket.receive send {'type': 'websocket.send', 'text': ....upper()} or close with code 1003 "
              "when the text is None; return on websocket.disconnect.");

# %% [markdown]
# **2. Decode a frame yourself.** Write `decode_client_frame(data)` answering `(fin, opcode,
# payload)` for *one* complete frame from a client: FIN and the opcode from byte 0, the length
# from byte 1 (126: the next 2 bytes, big-endian; 127: the next 8), then the 4-byte masking key,
# then the payload, unmasked. The check compares your decoder with `servers/websocket.py` on
# frames of several sizes and kinds.

# %%
def decode_client_frame(data):
    ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.**
#
# ```python
# def decode_client_frame(data):
#     fin, opcode = bool(data[0] & 0x80), data[0] & 0x0F
#     length, position = data[1] & 0x7F, 2
#     if length == 126:
#         (length,), position = struct.unpack("!H", data[2:4]), 4
#     elif length == 127:
#         (length,), position = struct.unpack("!Q", data[2:10]), 10
#     mask = data[position:position + 4]
#     payload = data[position + 4:position + 4 + length]
#     return fin, opcode, bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
# ```

# %% tags=["check"]
def try_decoder():
    cases = [(wsh.TEXT, "hi".encode()), (wsh.BINARY, bytes(range(200))), (wsh.TEXT, ("é" * 40_000).encode()),
             (wsh.PING, b"are you there?"), (wsh.BINARY, b"")]
    for opcode, payload in cases:
        frame = wsh.client_frame(opcode, payload)
        mine = decode_client_frame(frame)
        assert mine is not None, "decode_client_frame returned None"
        [event] = websocket.Connection().receive(frame)
        theirs = event.data if opcode in (wsh.TEXT, wsh.BINARY) else event.payload
        if opcode == wsh.TEXT:
            theirs = theirs.encode()
        assert tuple(mine) == (True, opcode, theirs), \
            f"a {len(payload)}-byte {wsh.OPCODE_NAMES[opcode]} frame: you decoded {str(tuple(mine))[:80]}"
    return f"{len(cases)} frames (up to {max(len(p) for _, p in cases):,} bytes) decoded as servers/websocket.py decodes them."

nb.check_code(try_decoder, hint="byte 0: FIN is 0x80, the opcode the low 4 bits; byte 1 & 0x7F is the length "
              "(126 → 2 more bytes, 127 → 8, big-endian, struct.unpack('!H' / '!Q')); then 4 mask bytes; "
              "payload byte i XOR mask[i % 4].");

# %% [markdown]
# **3.** How many bytes does the *server* put on the wire for one text message of 200 ASCII
# characters? (Section 2 has the frame layout.)

# %%
answer_3 = ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** 200 is more than 125, so the length takes 126 plus 2 bytes; no mask from a server.
#
# ```python
# answer_3 = 2 + 2 + 200
# ```

# %% tags=["check"]
nb.check(answer_3, len(websocket.Connection().send("x" * 200)),
         hint="2 header bytes, then the length: over 125 it moves to 2 extra bytes; a server does not mask.");
