"""``lab/fleet_status.py`` (behind ``scripts/fleet.sh status``) against a fake car's REST API.

The real fleet runs in ``scripts/swarm_ci.sh``; these check the judging itself: a mirror
equal to the phone's book is consistent, and a missing, extra or altered contact, an
unpaired phone or a car that is not running are reported as such.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("fleet_status", ROOT / "lab" / "fleet_status.py")
assert _spec and _spec.loader
fleet_status = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fleet_status)

N = 40


class FakeCar:
    """What a car's API would serve: phones and their contact items."""

    def __init__(self) -> None:
        self.phones: list[dict[str, Any]] = []
        self.items: dict[str, list[dict[str, Any]]] = {}

    def pair(self, name: str, items: list[dict[str, Any]]) -> None:
        pid = f"id-{len(self.phones)}"
        self.phones.append(
            {"id": pid, "name": name, "connected": True, "contacts": len(items), "last_sync": 1.0}
        )
        self.items[pid] = items


def items_of(name: str) -> list[dict[str, Any]]:
    """The contact items a car holding ``name``'s whole book serves."""
    return [
        {"uid": uid, "name": fn, "phones": [{"number": n, "type": ""} for n in nums],
         "emails": emails, "org": org}
        for uid, (fn, nums, emails, org) in fleet_status.book(name, N).items()
    ]


@pytest.fixture
def car() -> Iterator[tuple[FakeCar, int]]:
    fake = FakeCar()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            parts = url.path.strip("/").split("/")
            body: Any
            if url.path == "/api/status":
                body = {"id": "car-1", "name": "Car bay1"}
            elif url.path == "/api/phones":
                body = fake.phones
            elif len(parts) == 4 and parts[3] == "contacts":
                q = parse_qs(url.query)
                off, lim = int(q["offset"][0]), int(q["limit"][0])
                all_ = fake.items[parts[2]]
                body = {"total": len(all_), "items": all_[off : off + lim]}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield fake, server.server_address[1]
    finally:
        server.shutdown()


def swarm(port: int, phones: int, car_state: str = "running") -> dict[str, Any]:
    """fleet.sh's JSON for one bay: a car task on node n1, ``phones`` phone tasks."""
    ns = {"com.docker.stack.namespace": "bay1"}
    env = {"TaskTemplate": {"ContainerSpec": {"Env": [f"PHONE_CONTACTS={N}"]}}}
    return {
        "self": "n1",
        "nodes": [{"ID": "n1", "Description": {"Hostname": "host-a"}, "Spec": {"Role": "manager"},
                   "Status": {"State": "ready", "Addr": "127.0.0.1"}}],
        "services": [
            {"ID": "s-car", "Spec": {"Name": "bay1_carhub", "Labels": ns, **env},
             "Endpoint": {"Ports": [{"TargetPort": 8080, "PublishedPort": port}]}},
            {"ID": "s-phone", "Spec": {"Name": "bay1_phone", "Labels": ns, **env}},
        ],
        "tasks": [{"ServiceID": "s-car", "NodeID": "n1", "Slot": 1, "DesiredState": "running",
                   "Status": {"State": car_state}}]
        + [{"ServiceID": "s-phone", "NodeID": "n1", "Slot": i, "DesiredState": "running",
            "Status": {"State": "running"}} for i in range(1, phones + 1)],
    }


def report(tmp_path: Path, doc: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> Any:
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(doc))
    assert fleet_status.main(["fleet_status.py", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_whole_books_are_consistent(
    car: tuple[FakeCar, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, port = car
    fake.pair("bay1_phone-1", items_of("bay1_phone-1"))
    fake.pair("bay1_phone-2", items_of("bay1_phone-2"))
    out = report(tmp_path, swarm(port, 2), capsys)
    bay = out["bays"][0]
    assert (bay["car_id"], bay["reachable"], bay["node"]) == ("car-1", True, "host-a")
    assert [(p["name"], p["contacts"], p["consistent"]) for p in bay["phones"]] == [
        ("bay1_phone-1", N, True), ("bay1_phone-2", N, True)
    ]
    assert out["summary"]["consistent"] == 2


def test_differences_and_unpaired_phones_are_reported(
    car: tuple[FakeCar, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, port = car
    short = items_of("bay1_phone-1")[1:]  # one contact missing on the car
    short[0] = {**short[0], "name": "Someone Else"}  # and one altered
    fake.pair("bay1_phone-1", short)
    fake.pair("bay1_phone-2", items_of("bay1_phone-1"))  # another phone's book
    out = report(tmp_path, swarm(port, 3), capsys)
    p1, p2, p3 = out["bays"][0]["phones"]
    assert not p1["consistent"] and p1["detail"] == "1 missing, 1 differ"
    assert not p2["consistent"] and "not on the phone" in p2["detail"]
    assert (p3["paired"], p3["consistent"], p3["detail"]) == (False, False, "not paired")
    assert out["summary"] == {"bays": 1, "cars_reachable": 1, "phones": 3, "paired": 2,
                              "consistent": 0}


def test_a_car_not_running_is_not_reachable(
    car: tuple[FakeCar, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, port = car
    bay = report(tmp_path, swarm(port, 1, car_state="pending"), capsys)["bays"][0]
    assert (bay["reachable"], bay["error"]) == (False, "car task pending")
    assert not bay["phones"][0]["consistent"]
