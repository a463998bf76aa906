"""The shared simulator framework: routing, TLS, instrumentation and every fault kind."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.base import SimulatorServer
from simulators.clocks import ManualClock
from simulators.faults import Fault, refusing_port
from simulators.messages import Request, Response
from simulators.tls import persistent_ca, test_ca


class EchoSimulator(SimulatorServer):
    def __init__(self) -> None:
        super().__init__()
        self.items = ["a", "b", "c"]
        self.add_route("GET", "/items", self.list_items, name="items.list")
        self.add_route("GET", "/items/{item_id}", self.get_item, name="items.get")
        self.add_route("POST", "/items", self.add_item, name="items.add")

    def list_items(self, request: Request) -> Response:
        return Response.json(
            self.items,
            headers=[("Link", "<https://x/items>; rel=\"self\""), ("Link", "<https://x/items?after=c>; rel=\"next\"")],
        )

    def get_item(self, request: Request) -> Response:
        return Response.json({"id": request.params["item_id"], "q": request.arg("q")})

    def add_item(self, request: Request) -> Response:
        self.items.append(request.json()["name"])
        return Response.json({"ok": True}, status=201)

    def throttle_headers(self, request: Request) -> list[tuple[str, str]]:
        return [("X-Reset", "123")]

    def vendor_fault(self, request: Request, response: Response, detail: object) -> Response:
        if detail == "reverse-links":
            links = [h for h in response.headers if h[0] == "Link"]
            others = [h for h in response.headers if h[0] != "Link"]
            return Response(response.status, others + links[::-1], response.body)
        return response


@pytest.fixture()
def sim() -> Iterator[EchoSimulator]:
    with EchoSimulator() as server:
        yield server  # type: ignore[misc]


def fetch(sim: SimulatorServer, method: str, target: str, body: object = None, timeout: float = 5.0) -> http.client.HTTPResponse:
    context = ssl.create_default_context(cafile=sim.ca_path)
    conn = http.client.HTTPSConnection("127.0.0.1", sim.port, context=context, timeout=timeout)
    payload = json.dumps(body).encode() if body is not None else None
    conn.request(method, target, body=payload, headers={"Authorization": "Bearer t"})
    response = conn.getresponse()
    response.read()
    return response


def read(sim: SimulatorServer, target: str) -> tuple[int, bytes, list[tuple[str, str]]]:
    context = ssl.create_default_context(cafile=sim.ca_path)
    conn = http.client.HTTPSConnection("127.0.0.1", sim.port, context=context, timeout=5)
    conn.request("GET", target)
    response = conn.getresponse()
    return response.status, response.read(), response.getheaders()


def test_routes_answer_over_tls_trusted_by_the_test_ca(sim: EchoSimulator) -> None:
    status, body, headers = read(sim, "/items/42?q=x")
    assert status == 200
    assert json.loads(body) == {"id": "42", "q": "x"}
    assert any(k == "Date" for k, _ in headers)


def test_repeated_headers_are_sent_in_order(sim: EchoSimulator) -> None:
    _, _, headers = read(sim, "/items")
    links = [v for k, v in headers if k == "Link"]
    assert links == ['<https://x/items>; rel="self"', '<https://x/items?after=c>; rel="next"']


def test_counts_and_log_record_every_request(sim: EchoSimulator) -> None:
    read(sim, "/items")
    read(sim, "/items/1")
    fetch(sim, "POST", "/items", {"name": "d"})
    read(sim, "/nowhere")
    assert sim.counts() == {"items.list": 1, "items.get": 1, "items.add": 1, "unmatched": 1}
    log = sim.requests()
    assert [r.index for r in log] == [1, 2, 3, 4]
    assert log[2].headers["authorization"] == "Bearer t"
    assert log[3].status == 404
    assert sim.items[-1] == "d"
    sim.reset_counts()
    assert sim.counts() == {}


def test_fault_at_kth_request_counts_from_now(sim: EchoSimulator) -> None:
    read(sim, "/items")
    sim.inject(Fault.HTTP_500, at=2)
    assert read(sim, "/items/1")[0] == 200
    assert read(sim, "/items/2")[0] == 500
    assert read(sim, "/items/3")[0] == 200


def test_fault_on_endpoint_hits_the_next_n_requests_there(sim: EchoSimulator) -> None:
    sim.inject(Fault.HTTP_503, endpoint="items.get", times=2)
    assert read(sim, "/items")[0] == 200
    assert [read(sim, "/items/1")[0] for _ in range(3)] == [503, 503, 200]
    assert sim.pending_faults() == 0


def test_429_carries_vendor_reset_headers_and_bare_429_none(sim: EchoSimulator) -> None:
    sim.inject(Fault.HTTP_429, at=1)
    sim.inject(Fault.HTTP_429_BARE, at=2)
    status, _, headers = read(sim, "/items")
    assert status == 429 and ("X-Reset", "123") in headers
    status, _, headers = read(sim, "/items")
    assert status == 429 and not any(k in ("X-Reset", "Retry-After") for k, _ in headers)


def test_malformed_and_truncated_bodies_keep_status_and_links(sim: EchoSimulator) -> None:
    sim.inject(Fault.MALFORMED_JSON, at=1)
    sim.inject(Fault.TRUNCATED, at=2)
    for _ in range(2):
        status, body, headers = read(sim, "/items")
        assert status == 200
        assert len([k for k, _ in headers if k == "Link"]) == 2
        with pytest.raises(ValueError):
            json.loads(body)


def test_reset_drops_the_connection_without_an_answer(sim: EchoSimulator) -> None:
    sim.inject(Fault.RESET, at=1)
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected, ssl.SSLError, OSError)):
        read(sim, "/items")
    assert read(sim, "/items")[0] == 200
    assert sim.requests()[0].status is None and sim.requests()[0].fault is Fault.RESET


def test_timeout_holds_longer_than_the_client_waits(sim: EchoSimulator) -> None:
    sim.inject(Fault.TIMEOUT, at=1, seconds=1.0)
    with pytest.raises(TimeoutError):
        fetch(sim, "GET", "/items", timeout=0.3)
    assert read(sim, "/items")[0] == 200


def test_a_hanging_simulator_accepts_every_request_and_answers_none(sim: EchoSimulator) -> None:
    sim.hang()
    for _ in range(2):
        with pytest.raises(TimeoutError):
            fetch(sim, "GET", "/items", timeout=0.3)
    assert sim.counts() == {"items.list": 2}


def test_a_hang_injected_once_holds_one_request_only(sim: EchoSimulator) -> None:
    sim.inject(Fault.HANG, endpoint="items.list")
    with pytest.raises(TimeoutError):
        fetch(sim, "GET", "/items", timeout=0.3)
    assert read(sim, "/items")[0] == 200


def test_a_hanging_request_is_logged_without_an_answer(sim: EchoSimulator) -> None:
    sim.hang()
    with pytest.raises(TimeoutError):
        fetch(sim, "GET", "/items", timeout=0.3)
    assert [(r.fault, r.status) for r in sim.requests()] == [(Fault.HANG, None)]


def test_a_refusing_port_refuses_connections() -> None:
    import socket

    with refusing_port() as port:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_vendor_fault_rewrites_the_normal_answer(sim: EchoSimulator) -> None:
    sim.inject(Fault.VENDOR, at=1, detail="reverse-links")
    _, _, headers = read(sim, "/items")
    assert [v for k, v in headers if k == "Link"][0].endswith('rel="next"')


def test_latency_delays_each_request(sim: EchoSimulator) -> None:
    sim.latency(0.2)
    started = time.monotonic()
    read(sim, "/items")
    assert time.monotonic() - started >= 0.2


def test_manual_clock_drives_the_date_header() -> None:
    clock = ManualClock()
    with SimulatorServer(clock=clock) as server:
        _, _, headers = read(server, "/anything")
    assert dict(headers)["Date"] == "Mon, 05 Jan 2026 09:00:00 GMT"


def test_stop_cuts_idle_keep_alive_connections() -> None:
    """Stopping does not wait for clients: a connection kept open after one answer gets no
    second answer once the server has stopped."""
    sim = EchoSimulator().start()
    context = ssl.create_default_context(cafile=sim.ca_path)
    conn = http.client.HTTPSConnection("127.0.0.1", sim.port, context=context, timeout=30)
    conn.request("GET", "/items")
    assert conn.getresponse().read()
    sim.stop()
    with pytest.raises((ConnectionError, ssl.SSLError, http.client.HTTPException, OSError)):
        conn.request("GET", "/items")
        conn.getresponse()
    conn.close()


def test_a_server_started_with_a_persistent_ca_is_trusted_through_its_file(tmp_path: Path) -> None:
    sim = EchoSimulator()
    sim.use_ca(persistent_ca(tmp_path))
    with sim:
        assert sim.ca_path == str(tmp_path / "ca.pem")
        assert read(sim, "/items/1")[0] == 200


def _make_own_ca(conn: multiprocessing.connection.Connection) -> None:
    test_ca.cache_clear()  # a forked child would reuse its parent's
    conn.send(test_ca().ca_path)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_child_process_removes_its_test_ca_when_it_ends(method: str) -> None:
    own = Path(test_ca().ca_path)
    context = multiprocessing.get_context(method)
    receiver, sender = context.Pipe()
    child = context.Process(target=_make_own_ca, args=(sender,))
    child.start()
    path = Path(receiver.recv())
    child.join(60)

    assert child.exitcode == 0 and path != own
    assert not path.parent.exists()
    assert own.exists()  # the parent's CA stays
