"""The player keeps other web pages out: Host checks (DNS rebinding) on every request, Origin checks
(cross-site WebSocket hijacking) on the socket, idle sessions closed, a warning for open interfaces.

The rules are tested as tables on `play.access.AccessPolicy`, then against a running `run.py play`
with a real WebSocket client (the `websockets` package uvicorn serves with) and plain HTTP requests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from play.access import AccessPolicy
from play.browser import serving
from play.cli import unauthenticated_warning

REPO_DPATH = Path(__file__).resolve().parents[1]
PORT = 8765
LOOPBACK = AccessPolicy.for_address("127.0.0.1", PORT)
EVERY_INTERFACE = AccessPolicy.for_address("0.0.0.0", PORT)


@pytest.mark.parametrize(
    ("policy", "host", "allowed"),
    [
        (LOOPBACK, f"127.0.0.1:{PORT}", True),
        (LOOPBACK, f"localhost:{PORT}", True),
        (LOOPBACK, f"LOCALHOST:{PORT}", True),
        (LOOPBACK, f"[::1]:{PORT}", True),
        (LOOPBACK, "localhost:9000", True),  # an ssh tunnel from another local port
        (LOOPBACK, f"evil.example:{PORT}", False),  # DNS rebinding: the attacker's name, our address
        (LOOPBACK, f"127.0.0.1.evil.example:{PORT}", False),
        (LOOPBACK, f"localhost.evil.example:{PORT}", False),
        (LOOPBACK, f"192.168.1.20:{PORT}", False),
        (LOOPBACK, "", False),
        (LOOPBACK, None, False),
        (LOOPBACK, "127.0.0.1:notaport", False),
        (AccessPolicy.for_address("192.168.1.20", PORT), f"192.168.1.20:{PORT}", True),
        (AccessPolicy.for_address("192.168.1.20", PORT), f"evil.example:{PORT}", False),
        (AccessPolicy.for_address("player.lan", PORT), f"Player.LAN:{PORT}", True),
        (EVERY_INTERFACE, f"10.1.2.3:{PORT}", True),  # an IP literal cannot be rebound
        (EVERY_INTERFACE, f"[fe80::1]:{PORT}", True),
        (EVERY_INTERFACE, f"evil.example:{PORT}", False),
    ],
)
def test_the_host_must_be_the_bound_one_or_a_loopback_name(policy, host, allowed):
    assert policy.allows_host(host) is allowed


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        (f"http://127.0.0.1:{PORT}", f"127.0.0.1:{PORT}", True),  # the player's own page
        (f"http://localhost:{PORT}", f"localhost:{PORT}", True),
        (f"http://localhost:{PORT}", f"127.0.0.1:{PORT}", True),  # a loopback name at the bound port
        ("http://localhost:9000", "localhost:9000", True),  # the page through an ssh tunnel
        ("http://evil.example", f"127.0.0.1:{PORT}", False),
        (f"http://evil.example:{PORT}", f"evil.example:{PORT}", False),  # rebinding: same-origin, bad Host
        ("null", f"127.0.0.1:{PORT}", False),  # a sandboxed iframe or a file:// page
        (f"http://127.0.0.1.evil.example:{PORT}", f"127.0.0.1:{PORT}", False),
        (f"http://127.0.0.1:{PORT + 1}", f"127.0.0.1:{PORT}", False),  # another service on this machine
        (f"https://127.0.0.1:{PORT}", f"127.0.0.1:{PORT}", False),
        (f"http://127.0.0.1:{PORT}/path", f"127.0.0.1:{PORT}", False),
        (None, f"127.0.0.1:{PORT}", False),  # not a browser: refused too
        ("", f"127.0.0.1:{PORT}", False),
    ],
)
def test_a_socket_is_accepted_only_from_the_players_own_page(origin, host, allowed):
    assert LOOPBACK.allows_origin(origin, host) is allowed


@pytest.mark.parametrize(
    ("bound_ip", "warns"),
    [("127.0.0.1", False), ("127.0.0.2", False), ("::1", False), ("0.0.0.0", True), ("192.168.1.20", True)],
)
def test_only_a_non_loopback_address_warns_that_there_is_no_login(bound_ip, warns):
    warning = unauthenticated_warning(bound_ip, PORT)
    assert (warning is not None) is warns
    if warns:
        assert "\n" not in warning and "no authentication" in warning and "host=127.0.0.1" in warning


def http_status(url: str, host: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Host": host}), timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def player(tiny_world_model_dpath, tiny_play_store):
    """A running player with one slot and a 1.5 s idle timeout: (page url, socket url, port)."""
    overrides = [f"model_dpath={tiny_world_model_dpath}", f"dataset_dpath={tiny_play_store}", "threads=1"]
    with serving(*overrides, "max_sessions=1", "idle_timeout_s=1.5") as url:
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        yield url, url.replace("http://", "ws://") + "ws", port


def hello_or_refusal(ws_url: str, origin: str | None) -> str:
    """'hello' when the socket is served, else the HTTP status of the refused handshake."""
    try:
        with connect(ws_url, origin=origin, open_timeout=10) as socket:
            return json.loads(socket.recv(timeout=10))["type"]
    except InvalidStatus as error:
        return str(error.response.status_code)


def test_the_running_player_serves_its_own_page_and_refuses_others(player):
    url, ws_url, port = player
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert http_status(url, host) == 200
        assert http_status(url + "static/player.js", host) == 200
    for host in (f"evil.example:{port}", f"127.0.0.1.evil.example:{port}"):
        assert http_status(url, host) == 403  # DNS rebinding gets neither the page nor its files
        assert http_status(url + "static/player.js", host) == 403
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        assert hello_or_refusal(ws_url, origin) == "hello"
        time.sleep(0.2)  # let the server see the close before the next connection asks for the slot
    for origin in ("http://evil.example", "null", f"http://127.0.0.1.evil.example:{port}", None):
        assert hello_or_refusal(ws_url, origin) == "403"  # no game list, no frames: nothing sent


def test_an_idle_session_is_closed_with_a_message_and_frees_its_slot(player):
    _, ws_url, port = player
    origin = f"http://127.0.0.1:{port}"
    with connect(ws_url, origin=origin, open_timeout=10) as silent:
        opened = time.monotonic()
        messages = []
        with pytest.raises(ConnectionClosed):
            while True:  # hello, started, the first frame, then nothing is sent: the server must close
                messages.append(silent.recv(timeout=20))
        waited = time.monotonic() - opened
        assert 1.5 <= waited < 10, waited
        assert silent.close_code == 1000 and "idle" in silent.close_reason
        assert json.loads(messages[-1]) == {
            "type": "error",
            "message": "closed after 1.5 s without input: reload the page to play",
        }
    with connect(ws_url, origin=origin, open_timeout=10) as tab:  # max_sessions=1: the slot is free again
        assert json.loads(tab.recv(timeout=10))["type"] == "hello"
        assert json.loads(tab.recv(timeout=10))["type"] == "started"


def test_binding_every_interface_warns_in_one_line(tiny_world_model_dpath, tiny_play_store):
    env = {**os.environ, "GENIE_REDUX_NO_BOOTSTRAP": "1", "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, str(REPO_DPATH / "run.py"), "play", f"model_dpath={tiny_world_model_dpath}",
            f"dataset_dpath={tiny_play_store}", "host=0.0.0.0"]  # fmt: skip
    server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout.readline().startswith("player: http://0.0.0.0:")
        warning = server.stderr.readline()
        assert (
            warning.startswith("warning: the player listens on every interface")
            and "no authentication" in warning
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
