"""The site's WebSocket side: /ws/echo, /ws/chat/<room> and the /chat page.

Four levels: the consumers in-process through Channels' WebsocketCommunicator (the
whole `sample_site.asgi.application`, origin check included); the same endpoints
over real servers with the `websockets` client; the chat page in a real browser
(headless Debian chromium driven by Playwright), under an ASGI server and under
the toy WSGI server; and one chat shared by two server processes through Redis.
"""

import json
from contextlib import ExitStack

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from sample_site.asgi import application
from sample_site.shop.consumers import UNSUPPORTED_DATA
from scripts.launch import ServerProcess, free_port, server_command

# The server kinds that serve the site's WebSocket endpoints. uvicorn (its default
# WebSocket implementation), daphne (Channels' own server, on Twisted) and granian's
# ASGI interface all do. The lead adds "asgi", the toy server, when its WebSocket
# support is merged.
WS_SERVER_KINDS = ("asgi", "uvicorn", "daphne", "granian-asgi")

ORIGIN = "http://127.0.0.1"
WAIT = 20  # seconds: generous, as the machine is shared; no test depends on it being short


def run(coroutine_function):
    """Run an async test body (the consumers are async; pytest here is not) on an empty
    in-memory channel layer, so that no group is left over from another test."""
    async def on_an_empty_layer():
        await get_channel_layer().flush()
        return await coroutine_function()

    return async_to_sync(on_an_empty_layer)()


@pytest.fixture
def connection_checks(django_db_blocker):
    """Let Channels check this thread's database connection; the tests make no query.

    Before every message a consumer closes stale database connections
    (channels.db.aclose_old_connections). When an earlier test of the session left
    this thread's connection open, that check asks it for its autocommit state,
    which pytest-django's guard would refuse."""
    with django_db_blocker.unblock():
        yield


def communicator(path, origin=ORIGIN):
    headers = [(b"origin", origin.encode())] if origin else []
    return WebsocketCommunicator(application, path, headers=headers)


# --- the consumers in-process -------------------------------------------------------


@pytest.mark.usefixtures("connection_checks")
def test_echo_sends_text_back_as_text_and_bytes_as_bytes():
    async def body():
        client = communicator("/ws/echo")
        assert await client.connect(timeout=WAIT) == (True, None)
        for message in ("hello", "caf\u00e9 \u2615", "x" * 100_000):
            await client.send_to(text_data=message)
            assert await client.receive_from(timeout=WAIT) == message
        for message in (b"\x00\x01\xff", bytes(range(256)) * 400):
            await client.send_to(bytes_data=message)
            assert await client.receive_from(timeout=WAIT) == message
        await client.disconnect(timeout=WAIT)

    run(body)


@pytest.mark.usefixtures("connection_checks")
@pytest.mark.parametrize("origin", [None, "http://evil.example", "http://127.0.0.1.evil.example"])
def test_a_handshake_from_another_origin_or_none_is_refused(origin):
    async def body():
        for path in ("/ws/echo", "/ws/chat/lobby?name=Ann"):
            client = communicator(path, origin=origin)
            connected, _ = await client.connect(timeout=WAIT)
            assert not connected, (path, origin)
            await client.disconnect(code=1006, timeout=WAIT)  # as a server does after the 403

    run(body)


async def join(room, name):
    """A chat member who has connected and read its welcome."""
    client = communicator(f"/ws/chat/{room}?name={name}")
    assert await client.connect(timeout=WAIT) == (True, None)
    welcome = await client.receive_json_from(timeout=WAIT)
    assert welcome["type"] == "welcome" and welcome["room"] == room and welcome["name"] == name
    client.id = welcome["id"]
    return client


async def next_of_type(client, kind):
    """The next message of type `kind` (skipping the presence messages before it)."""
    while (message := await client.receive_json_from(timeout=WAIT))["type"] != kind:
        pass
    return message


@pytest.mark.usefixtures("connection_checks")
def test_two_members_see_each_other_join_talk_and_leave():
    async def body():
        ann = await join("lobby", "Ann")
        assert await ann.receive_json_from(timeout=WAIT) == {"type": "join", "id": ann.id, "name": "Ann"}
        bob = await join("lobby", "Bob")
        # Bob learns who was there before him from their answers to his join.
        bob_sees = [await bob.receive_json_from(timeout=WAIT) for _ in range(2)]
        assert {"type": "join", "id": bob.id, "name": "Bob"} in bob_sees
        assert {"type": "here", "id": ann.id, "name": "Ann"} in bob_sees
        assert await ann.receive_json_from(timeout=WAIT) == {"type": "join", "id": bob.id, "name": "Bob"}

        await bob.send_json_to({"text": "hello, Ann"})
        said = {"type": "message", "id": bob.id, "name": "Bob", "text": "hello, Ann"}
        assert await ann.receive_json_from(timeout=WAIT) == said
        assert await bob.receive_json_from(timeout=WAIT) == said
        await ann.send_json_to({"text": "caf\u00e9 <b>not bold</b>"})
        assert (await bob.receive_json_from(timeout=WAIT))["text"] == "caf\u00e9 <b>not bold</b>"

        await bob.disconnect(timeout=WAIT)
        assert await next_of_type(ann, "leave") == {"type": "leave", "id": bob.id, "name": "Bob"}
        await ann.disconnect(timeout=WAIT)

    run(body)


@pytest.mark.usefixtures("connection_checks")
def test_rooms_are_separate():
    async def body():
        ann = await join("red", "Ann")
        bob = await join("blue", "Bob")
        await bob.send_json_to({"text": "only blue"})
        assert (await next_of_type(bob, "message"))["text"] == "only blue"
        await ann.send_json_to({"text": "only red"})
        # Ann's own messages are all she sees: her join, then her message.
        assert (await ann.receive_json_from(timeout=WAIT))["type"] == "join"
        assert (await ann.receive_json_from(timeout=WAIT))["text"] == "only red"
        await ann.disconnect(timeout=WAIT)
        await bob.disconnect(timeout=WAIT)

    run(body)


@pytest.mark.usefixtures("connection_checks")
@pytest.mark.parametrize("path", [
    "/ws/chat/bad.room?name=Ann",
    "/ws/chat/caf%C3%A9?name=Ann",
    "/ws/chat/" + "r" * 41 + "?name=Ann",
    "/ws/chat/lobby",                          # no name
    "/ws/chat/lobby?name=%20%20",              # a blank name
    "/ws/chat/lobby?name=" + "n" * 33,         # too long
    "/ws/chat/lobby?name=a%0Ab",               # unprintable
])
def test_bad_room_or_name_is_refused_before_the_handshake_completes(path):
    async def body():
        client = communicator(path)
        connected, _ = await client.connect(timeout=WAIT)
        assert not connected
        await client.disconnect(code=1006, timeout=WAIT)  # as a server does after the 403

    run(body)


@pytest.mark.usefixtures("connection_checks")
def test_bad_messages_get_a_reason_and_binary_closes_with_1003():
    async def body():
        ann = await join("lobby", "Ann")
        await next_of_type(ann, "join")
        for bad in ("not json", "[1, 2]", '{"txt": "x"}', '{"text": 5}', '{"text": "  "}',
                    json.dumps({"text": "x" * 2001})):
            await ann.send_to(text_data=bad)
            error = await ann.receive_json_from(timeout=WAIT)
            assert error["type"] == "error" and error["reason"], bad
        await ann.send_to(bytes_data=b"\x00")
        closed = await ann.receive_output(timeout=WAIT)
        assert closed == {"type": "websocket.close", "code": UNSUPPORTED_DATA}
        await ann.disconnect(code=UNSUPPORTED_DATA, timeout=WAIT)

    run(body)


# --- over real servers -------------------------------------------------------------


@pytest.fixture(scope="module", params=WS_SERVER_KINDS)
def ws_server(request):
    port = free_port()
    with ServerProcess(server_command(request.param, port=port), port=port) as server:
        yield request.param, server


def ws_connect(server, path, origin=True):
    """A `websockets` client: no proxy from the environment, no compression, big messages allowed."""
    return connect(f"ws://127.0.0.1:{server.port}{path}",
                   origin=f"{ORIGIN}:{server.port}" if origin else None,
                   proxy=None, compression=None, max_size=2**22, open_timeout=WAIT)


def test_echo_over_a_real_server(ws_server):
    kind, server = ws_server
    with ws_connect(server, "/ws/echo") as websocket:
        for message in ("hello", "caf\u00e9", "t" * 300_000, b"\x00\xff", bytes(range(256)) * 4000):
            websocket.send(message)
            assert websocket.recv(timeout=WAIT) == message, kind


def test_chat_between_two_clients_over_a_real_server(ws_server):
    kind, server = ws_server
    with ws_connect(server, "/ws/chat/real?name=Ann") as ann, \
            ws_connect(server, "/ws/chat/real?name=Bob") as bob:
        ann_id = json.loads(ann.recv(timeout=WAIT))["id"]
        bob_id = json.loads(bob.recv(timeout=WAIT))["id"]
        assert receive_until(bob, "here") == {"type": "here", "id": ann_id, "name": "Ann"}, kind
        bob.send(json.dumps({"text": f"hello over {kind}"}))
        assert receive_until(ann, "message") == {
            "type": "message", "id": bob_id, "name": "Bob", "text": f"hello over {kind}"}


def receive_until(websocket, kind):
    while (message := json.loads(websocket.recv(timeout=WAIT)))["type"] != kind:
        pass
    return message


def test_a_real_server_refuses_a_handshake_without_origin_or_with_a_bad_room(ws_server):
    kind, server = ws_server
    for path, origin in (("/ws/echo", False), ("/ws/chat/bad.room?name=Ann", True)):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(server, path, origin=origin)
        assert refused.value.response.status_code == 403, (kind, path)


# --- the /chat page in a real browser --------------------------------------------


@pytest.fixture(scope="module")
def asgi_site():
    """The toy ASGI server, as `make demo-asgi` serves the chat."""
    port = free_port()
    with ServerProcess(server_command("asgi", port=port), port=port) as server:
        yield server


@pytest.fixture(scope="module")
def wsgi_site():
    port = free_port()
    with ServerProcess(server_command("wsgi", port=port), port=port) as server:
        yield server


def watch_errors(page):
    """The page's uncaught JavaScript errors, as they happen."""
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def open_chat(page, server, room, name):
    from playwright.sync_api import expect

    page.goto(f"{server.url}/chat?room={room}&name={name}")
    page.click("#join-button")
    expect(page.locator("#status")).to_have_attribute("data-state", "open", timeout=WAIT * 1000)


def test_chat_page_two_browsers_in_one_room(browser, page, asgi_site):
    from playwright.sync_api import expect

    other_context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        other = other_context.new_page()
        errors, other_errors = watch_errors(page), watch_errors(other)
        open_chat(page, asgi_site, "browsers", "Ann")
        expect(page.locator(".interface")).to_contain_text("ASGI")
        expect(page.locator("#why-not")).to_have_count(0)
        open_chat(other, asgi_site, "browsers", "Bob")
        for each, me in ((page, "Ann"), (other, "Bob")):
            expect(each.locator("#members li")).to_have_text(
                sorted([f"{me} (you)", ({"Ann", "Bob"} - {me}).pop()]), timeout=WAIT * 1000)

        other.fill("#text", "Hello from Bob <b>as text</b>")
        other.press("#text", "Enter")
        expect(page.locator("#messages li").last).to_have_text(
            "Bob: Hello from Bob <b>as text</b>", timeout=WAIT * 1000)
        expect(page.locator("#messages b")).to_have_count(0)  # shown as text, never as HTML

        other.close()
        expect(page.locator("#messages li").last).to_have_text("Bob left.", timeout=WAIT * 1000)
        expect(page.locator("#members li")).to_have_text(["Ann (you)"])
        assert errors == other_errors == []
    finally:
        other_context.close()


def test_a_wsgi_server_answers_the_handshake_as_plain_http_with_djangos_404(wsgi_site):
    # What the page under WSGI tells the student happens to the browser's handshake.
    for path in ("/ws/echo", "/ws/chat/lobby?name=Ann"):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(wsgi_site, path)
        assert refused.value.response.status_code == 404, path


def test_chat_page_under_wsgi_says_why_it_cannot_connect(page, wsgi_site):
    from playwright.sync_api import expect

    errors = watch_errors(page)
    page.goto(f"{wsgi_site.url}/chat")
    why = page.locator("#why-not")
    expect(why).to_be_visible()
    expect(why).to_contain_text("WSGI")
    expect(why).to_contain_text("once per request")
    expect(why).to_contain_text("make demo-asgi")
    expect(page.locator("#join-button")).to_be_disabled()
    expect(page.locator("#text")).to_be_disabled()
    # One attempt on request, to see the failure; it ends, and nothing retries.
    page.click("#try")
    expect(page.locator("#try-result")).to_contain_text("failed", timeout=WAIT * 1000)
    expect(page.locator("#try")).to_be_enabled()
    assert errors == []


# --- one chat, two server processes, through Redis -------------------------------------


def test_two_processes_share_one_chat_through_redis(redis_url):
    environ = {"CHANNEL_LAYER": "redis", "REDIS_URL": redis_url}
    with ExitStack() as stack:
        servers = []
        for _ in range(2):
            port = free_port()
            servers.append(stack.enter_context(
                ServerProcess(server_command("uvicorn", port=port), port=port, env=environ)))
        assert servers[0].pid != servers[1].pid
        ann = stack.enter_context(ws_connect(servers[0], "/ws/chat/shared?name=Ann"))
        ann_id = json.loads(ann.recv(timeout=WAIT))["id"]
        receive_until(ann, "join")  # her own: she is in the group
        bob = stack.enter_context(ws_connect(servers[1], "/ws/chat/shared?name=Bob"))
        bob_id = json.loads(bob.recv(timeout=WAIT))["id"]
        # Ann's answer to Bob's join crossed from one process to the other.
        assert receive_until(bob, "here") == {"type": "here", "id": ann_id, "name": "Ann"}
        bob.send(json.dumps({"text": "from the second process"}))
        assert receive_until(ann, "message") == {
            "type": "message", "id": bob_id, "name": "Bob", "text": "from the second process"}
