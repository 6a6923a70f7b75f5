"""Report a CarHub fleet: per bay the car, its paired phones, and whether each mirror is right.

``scripts/fleet.sh status`` gathers the swarm's nodes, services and running tasks
(``docker node/service/inspect``) into one JSON file, then runs this script with the lab
image's Python on the manager's host network. For every bay (stack ``bayN``):

- the car: the node that runs its task, its dashboard ``http://NODE_ADDR:PORT`` (the
  host-mode port), its id and name from ``GET /api/status``;
- every phone task ``bayN_phone-SLOT`` (its hostname, and the name it gives the car): the
  car's entry of that name (paired, connected, contacts), and whether the car's mirror
  (``GET /api/phones/{id}/contacts``, every page: uid, name, numbers, e-mails, org) equals
  the book that phone holds. A phone's book is ``generate_vcards(N, seed=crc32(name))``
  (``lab/stack.yml``), imported as the phone imports it, so it is rebuilt here exactly.

Run: ``python fleet_status.py FLEET_JSON [--json]``; prints a table (or the JSON document)
and exits 0 whatever it finds: deciding what is good enough is the caller's business.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
import zlib
from typing import Any

__all__ = ["main"]

TIMEOUT = 5.0
PAGE = 1000


def get(url: str) -> Any:
    """GET a JSON document."""
    with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
        return json.load(r)


def book(name: str, n: int) -> dict[str, tuple[Any, ...]]:
    """The book phone ``name`` holds: uid -> (name, numbers, e-mails, org)."""
    from phone_bridge.sample_data import generate_vcards
    from protocol.vcard import import_vcards

    result = import_vcards(generate_vcards(n, seed=zlib.crc32(name.encode())))
    return {
        c.uid: (c.fn, [p.number for p in c.phones], [e.address for e in c.emails], c.org)
        for c in result.contacts
    }


def mirror(base: str, phone_id: str) -> dict[str, tuple[Any, ...]]:
    """The car's copy of one phone's book, every page, in the same shape as ``book``."""
    out: dict[str, tuple[Any, ...]] = {}
    offset = 0
    while True:
        page = get(f"{base}/api/phones/{phone_id}/contacts?limit={PAGE}&offset={offset}")
        for c in page["items"]:
            out[c["uid"]] = (c["name"], [p["number"] for p in c["phones"]], c["emails"], c["org"])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return out


def compare(want: dict[str, tuple[Any, ...]], have: dict[str, tuple[Any, ...]]) -> str:
    """'' when equal, else what differs (one line)."""
    missing = want.keys() - have.keys()
    extra = have.keys() - want.keys()
    differ = [u for u in want.keys() & have.keys() if want[u] != have[u]]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing")
    if extra:
        parts.append(f"{len(extra)} not on the phone")
    if differ:
        parts.append(f"{len(differ)} differ")
    return ", ".join(parts)


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict."""
    env = service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") or []
    return dict(e.split("=", 1) for e in env if "=" in e)


def bay_report(
    bay: str, services: dict[str, dict[str, Any]], tasks: list[dict[str, Any]],
    nodes: dict[str, dict[str, Any]], self_id: str,
) -> dict[str, Any]:
    """Everything about one bay; never raises for a car that does not answer."""
    car_svc = services.get("carhub")
    phone_svc = services.get("phone")
    report: dict[str, Any] = {
        "bay": bay, "node": None, "node_role": None, "node_state": None,
        "dashboard": None, "reachable": False, "car_id": None, "car_name": None,
        "error": None, "phones": [], "stale": [],
    }
    car_tasks = [t for t in tasks if car_svc and t["ServiceID"] == car_svc["ID"]]
    ports = (car_svc or {}).get("Endpoint", {}).get("Ports") or (
        (car_svc or {}).get("Spec", {}).get("EndpointSpec", {}).get("Ports") or []
    )
    port = next((p["PublishedPort"] for p in ports if p.get("TargetPort") == 8080), None)
    car_task = car_tasks[0] if car_tasks else {}
    state = car_task.get("Status", {}).get("State")
    if state == "running" and port:
        node = nodes.get(car_task.get("NodeID", ""), {})
        addr = node.get("Status", {}).get("Addr") or "127.0.0.1"
        if addr in ("0.0.0.0", "") or node.get("ID") == self_id:
            addr = node.get("ManagerStatus", {}).get("Addr", "").rsplit(":", 1)[0] or addr
        report["node"] = node.get("Description", {}).get("Hostname")
        report["node_role"] = node.get("Spec", {}).get("Role")
        report["node_state"] = node.get("Status", {}).get("State")
        report["dashboard"] = f"http://{addr}:{port}"
    else:
        report["error"] = f"car task {state or 'missing'}" if port else "car has no host port"
    cars_phones: list[dict[str, Any]] = []
    if report["dashboard"]:
        try:
            status = get(report["dashboard"] + "/api/status")
            cars_phones = get(report["dashboard"] + "/api/phones")
            report.update(reachable=True, car_id=status["id"], car_name=status["name"])
        except (OSError, ValueError, KeyError) as exc:
            report["error"] = f"car not answering: {exc}"
    n = int(env_of(phone_svc).get("PHONE_CONTACTS", "0")) if phone_svc else 0
    named = set()
    for t in sorted(
        (t for t in tasks if phone_svc and t["ServiceID"] == phone_svc["ID"]),
        key=lambda t: t.get("Slot", 0),
    ):
        name = f"{bay}_phone-{t.get('Slot')}"
        named.add(name)
        report["phones"].append(phone_report(report, name, t, nodes, cars_phones, n))
    report["stale"] = [
        p["name"] for p in cars_phones if p["name"] not in named or not p["connected"]
    ]
    return report


def phone_report(
    bay: dict[str, Any], name: str, task: dict[str, Any], nodes: dict[str, dict[str, Any]],
    cars_phones: list[dict[str, Any]], n: int,
) -> dict[str, Any]:
    """One phone task: what the car has of it, and whether that equals its book."""
    node = nodes.get(task.get("NodeID", ""), {})
    mine = [p for p in cars_phones if p["name"] == name]
    # A replaced task (same slot, same name, a fresh identity) leaves its old entry behind:
    # the connected one, else the latest synced, is this task's.
    mine.sort(key=lambda p: (p["connected"], p["last_sync"] or 0), reverse=True)
    entry = mine[0] if mine else None
    out: dict[str, Any] = {
        "name": name, "node": node.get("Description", {}).get("Hostname"),
        "task_state": task.get("Status", {}).get("State"), "paired": entry is not None,
        "connected": bool(entry and entry["connected"]),
        "contacts": entry["contacts"] if entry else 0, "expected": n,
        "consistent": False, "detail": "not paired" if entry is None else "",
    }
    if entry is not None and bay["reachable"]:
        try:
            diff = compare(book(name, n), mirror(bay["dashboard"], entry["id"]))
        except (OSError, ValueError, KeyError) as exc:
            diff = f"mirror not readable: {exc}"
        out.update(consistent=not diff, detail=diff)
    return out


def main(argv: list[str]) -> int:
    """Read fleet.sh's JSON, print the report."""
    with open(argv[1]) as f:
        doc = json.load(f)
    nodes = {n["ID"]: n for n in doc["nodes"]}
    by_bay: dict[str, dict[str, dict[str, Any]]] = {}
    for s in doc["services"]:
        bay = s["Spec"].get("Labels", {}).get("com.docker.stack.namespace", "")
        if bay.startswith("bay"):
            by_bay.setdefault(bay, {})[s["Spec"]["Name"][len(bay) + 1 :]] = s
    tasks = [t for t in doc["tasks"] if t.get("DesiredState") == "running"]
    order = sorted(by_bay, key=lambda b: int(b[3:]) if b[3:].isdigit() else 0)
    bays = [bay_report(b, by_bay[b], tasks, nodes, doc["self"]) for b in order]
    phones = [p for b in bays for p in b["phones"]]
    summary = {
        "bays": len(bays), "cars_reachable": sum(b["reachable"] for b in bays),
        "phones": len(phones), "paired": sum(p["paired"] for p in phones),
        "consistent": sum(p["consistent"] for p in phones),
    }
    if "--json" in argv:
        print(json.dumps({"bays": bays, "summary": summary}, indent=1))
        return 0
    fmt = "{:<7} {:<10} {:<9} {:<24} {:<16} {:<10} {:<7} {:>9} {}"
    print(fmt.format("BAY", "CAR NODE", "CAR ID", "DASHBOARD", "PHONE", "NODE", "PAIRED",
                     "CONTACTS", "MIRROR"))
    for b in bays:
        car = (b["car_id"] or "-")[:8]
        if not b["phones"]:
            print(fmt.format(b["bay"], b["node"] or "-", car, b["dashboard"] or "-", "-", "-",
                             "-", "-", b["error"] or "no phones"))
        for p in b["phones"]:
            state = "consistent" if p["consistent"] else (p["detail"] or "differs")
            if not b["reachable"]:
                state = b["error"] or "car unreachable"
            print(fmt.format(b["bay"], b["node"] or "-", car, b["dashboard"] or "-", p["name"],
                             p["node"] or "-", "yes" if p["paired"] else "no",
                             f"{p['contacts']}/{p['expected']}", state))
    print("{bays} bays, {cars_reachable} cars answering, {phones} phones, {paired} paired, "
          "{consistent} mirrors consistent".format(**summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
