#!/usr/bin/env python3
"""Real Linux-kernel captures for issue 4: a crawler + its ss output, a batch, a series.

    sudo python3 captures/make_issue4_captures.py                  # all three, ~1 min
    sudo python3 captures/make_issue4_captures.py --only crawler series

- ``crawler``: a client namespace makes 300 short HTTP-like connections (6 workers
  at once) to a server namespace; the client closes first, so it holds TIME_WAIT.
  tcpdump on the client-side veth; right after tcpdump stops, ``ss -tan state
  time-wait`` and ``ss -tan`` run in the client namespace. Writes
  ``crawler/crawler.pcap``, ``crawler/ss_time_wait.txt``, ``crawler/ss_all.txt`` and
  ``crawler/NOTE.json``.
- ``batch``: 100 captures, each its own tcpdump run over 2-4 connections of varied
  kinds (client close, server close, refused, client RST abort, server RST abort),
  made by 4 namespace pairs in parallel; plus ``batch/corrupt.pcap`` (seeded random
  bytes, no capture at all). ``batch/NOTE.json`` lists what each file holds.
- ``series``: one capture of 20 overlapping keep-alive connections (3 requests each)
  over ~5 s, kept as ``series/whole.pcap`` and split by ``editcap -c`` into
  ``series/part-NN.pcap`` (lexical order = time order); several connections span
  the split points. ``series/NOTE.json`` says which.

Plumbing (namespaces, veth with offloads off, tcpdump with ``--immediate-mode``,
bounded child processes) comes from make_captures.py. Namespaces here are
``tfa-i4*`` only, addresses ``10.4.N.0/24``; this script removes only its own
namespaces and the processes it started, on every exit path.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import make_captures as mc  # noqa: E402

PREFIX = "tfa-i4"
HTTP_PORT = 80
BATCH_PORT = 5000
SEED = 4
STOP = threading.Event()  # set on a signal, or when one batch lane fails: the others stop

# One endpoint, run as `ip netns exec NS python3 -c AGENT ROLE CONF_JSON`. It prints
# JSON lines ("ev" key); every wait is bounded and SIGALRM ends it after conf["life"] s.
AGENT = r'''
import json, random, signal, socket, struct, sys, threading, time

role, conf = sys.argv[1], json.loads(sys.argv[2])
signal.alarm(int(conf.get("life", 60)))
LOCK = threading.Lock()


def emit(ev, **kw):
    with LOCK:
        print(json.dumps({"ev": ev, "t": time.time(), **kw}), flush=True)


def linger0(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def read_msg(s, buf):
    """One header block and its Content-Length body: (head, rest), or (None, buf) at EOF."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            return None, buf
        buf += d
        if len(buf) > 65536:
            raise ValueError("header too long")
    head, _, buf = buf.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(buf) < n:
        d = s.recv(4096)
        if not d:
            raise ValueError("EOF inside a body")
        buf += d
    return head, buf[n:]


def serve_conn(c, peer, rng):
    c.settimeout(15)
    kind, how, n, buf = "?", "", 0, b""
    try:
        while True:
            head, buf = read_msg(c, buf)
            if head is None:
                how = "eof"  # the client closed first
                break
            kind = head.split(b" ")[1].decode().split("/")[1]
            n += 1
            if kind == "sa":  # server aborts: RST instead of an answer
                linger0(c)
                how = "abort"
                break
            lo, hi = conf.get("think", (0, 0))
            if hi:
                time.sleep(rng.uniform(lo, hi))
            body = b"<html>ok %d</html>\n" % n
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d"
                      b"\r\n\r\n%s" % (len(body), body))
            if kind == "sc":  # server closes first
                how = "server_close"
                break
    except ConnectionResetError:
        how = "reset"
    except Exception as e:
        how = "error " + repr(e)
    finally:
        c.close()
    emit("closed", peer="%s:%d" % peer, kind=kind, how=how, requests=n)


def server():
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((conf["saddr"], conf["sport"]))
    ls.listen(512)
    ls.settimeout(1.0)
    rng = random.Random(conf.get("seed", 0))
    emit("ready")
    while True:
        try:
            c, peer = ls.accept()
        except socket.timeout:
            continue
        seed = rng.random()
        threading.Thread(target=serve_conn, args=(c, peer, random.Random(seed)),
                         daemon=True).start()


def request(kind, i):
    return ("GET /%s/%d HTTP/1.1\r\nHost: %s\r\nUser-Agent: tfa-crawler/1.0\r\n"
            "Accept: */*\r\n\r\n" % (kind, i, conf["saddr"])).encode()


def session(i, kinds, gap=0.0):
    """One connection: a request per kind; the last kind says how it ends."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    port = conf["sport"] + (1 if kinds == ["refused"] else 0)
    try:
        s.connect((conf["saddr"], port))
    except ConnectionRefusedError:
        s.close()
        return {"kind": "refused", "result": "ConnectionRefusedError"}
    local = s.getsockname()[1]
    buf = b""
    result = ""
    try:
        for j, kind in enumerate(kinds):
            if j and gap:
                time.sleep(gap)
            s.sendall(request("cc" if kind == "ca" else kind, i))
            if kind == "sa":
                try:
                    result = "eof" if not s.recv(4096) else "data"
                except ConnectionResetError:
                    result = "ConnectionResetError"
                break
            head, buf = read_msg(s, buf)
            if head is None:
                raise ValueError("EOF before the response")
        last = kinds[-1]
        if last == "sc":
            for _ in range(100):  # until the server's FIN
                if not s.recv(4096):
                    break
            result = "server_close"
        elif last == "ca":
            linger0(s)
            result = "client_abort"
        elif last == "cc":
            result = "client_close"
    finally:
        s.close()
    return {"kind": kinds[-1], "port": local, "result": result, "requests": len(kinds)}


def crawler():
    n, workers = conf["n"], conf["workers"]
    lo, hi = conf["gap"]
    nxt = iter(range(n))
    results, errors = [], []

    def work(w):
        rng = random.Random(conf.get("seed", 0) * 100 + w)
        for i in nxt:
            try:
                results.append({"i": i, **session(i, ["cc"])})
            except Exception as e:
                errors.append("%d: %r" % (i, e))
            time.sleep(rng.uniform(lo, hi))

    ts = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    emit("done", results=sorted(results, key=lambda r: r["i"]), errors=errors)


def series():
    results, errors = [], []
    t0 = time.time()

    def one(i):
        time.sleep(max(0.0, t0 + i * conf["stagger"] - time.time()))
        kinds = ["cc"] * (conf["requests"] - 1) + [conf["ends"][i]]
        try:
            results.append({"i": i, **session(i, kinds, conf["gap"])})
        except Exception as e:
            errors.append("%d: %r" % (i, e))

    ts = [threading.Thread(target=one, args=(i,)) for i in range(conf["n"])]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    emit("done", results=sorted(results, key=lambda r: r["i"]), errors=errors)


def batch():
    """One line of JSON kinds on stdin per capture; the connections run one after another."""
    emit("ready")
    i = 0
    for line in sys.stdin:
        kinds = json.loads(line)
        out = []
        for kind in kinds:
            out.append(session(i, [kind]))
            i += 1
        emit("did", results=out)


try:
    {"server": server, "crawler": crawler, "series": series, "batch": batch}[role]()
except Exception as e:
    emit("exception", err=repr(e))
    raise
'''


def log(msg: str) -> None:
    mc.log(msg)


# --------------------------------------------------------------------------- plumbing


def delete_mine(stale: bool = False) -> None:
    """Delete this script's namespaces (and, when stale, kill what runs in them)."""
    mc.delete_namespaces(stale, prefix=PREFIX)


def cleanup() -> None:
    mc.cleanup(PREFIX)


def pair(cns: str, sns: str, idx: int) -> tuple[str, str]:
    """Client and server namespaces joined by one veth (c0 -- s0), offloads off."""
    for ns in (cns, sns):
        mc.run(["ip", "netns", "del", ns], check=False)
        mc.make_ns(ns, False)
    mc.veth(cns, "c0", mc.mac(0x40 + idx, 1), sns, "s0", mc.mac(0x40 + idx, 2))
    caddr, saddr = f"10.4.{idx}.1", f"10.4.{idx}.2"
    mc.nsx(cns, "ip", "addr", "add", f"{caddr}/24", "dev", "c0")
    mc.nsx(sns, "ip", "addr", "add", f"{saddr}/24", "dev", "s0")
    mc.nsx(cns, "ip", "link", "set", "c0", "up")
    mc.nsx(sns, "ip", "link", "set", "s0", "up")
    time.sleep(0.3)  # links up
    return caddr, saddr


def agent(ns: str, role: str, name: str, **conf: Any) -> mc.Proc:
    return mc.Proc(ns, ["python3", "-c", AGENT, role, json.dumps(conf)], name)


def wait_closed(srv: mc.Proc, count: int, timeout: float = 10) -> None:
    end = time.time() + timeout
    while len(srv.ev("closed")) < count:
        if time.time() > end:
            raise RuntimeError(f"server closed {len(srv.ev('closed'))} of {count} connections")
        time.sleep(0.01)


def conns_of(pkts: list[mc.Pkt], caddr: str) -> dict[int, list[mc.Pkt]]:
    """TCP segments by client port (no 4-tuple is reused within one of these captures)."""
    out: dict[int, list[mc.Pkt]] = {}
    for p in pkts:
        out.setdefault(p.sport if p.src == caddr else p.dport, []).append(p)
    return out


def pcap_span(path: Path) -> tuple[float, float, int]:
    lines = mc.run(["tcpdump", "-tt", "-nn", "-r", str(path)]).stdout.splitlines()
    return float(lines[0].split()[0]), float(lines[-1].split()[0]), len(lines)


def sysctls(ns: str, *names: str) -> dict[str, str]:
    out = {}
    for n in names:
        out[n] = mc.nsx(ns, "sysctl", "-n", n).stdout.strip().replace("\t", " ")
    return out


def ss_states(text: str) -> dict[str, int]:
    return dict(Counter(ln.split()[0] for ln in text.splitlines()[1:] if ln.split()))


def attempts(name: str, fn: Any, tries: int = 3) -> Any:
    last = ""
    for attempt in range(1, tries + 1):
        t0 = time.time()
        try:
            out = fn()
        except Exception as e:  # setup/peer/check failure: clean up and try again
            last = f"{type(e).__name__}: {e}"
            log(f"  {name}: attempt {attempt} failed: {last}")
            continue
        finally:
            cleanup()
        log(f"  {name}: attempt {attempt} OK ({time.time() - t0:.1f} s)")
        return out
    raise RuntimeError(f"{name}: all {tries} attempts failed: {last}")


def install(tmp: Path, dest: Path, pattern: str) -> None:
    """Replace dest's files matching pattern by tmp's files, then drop tmp."""
    for old in dest.glob(pattern):
        if old.is_file():
            old.unlink()
    for f in sorted(tmp.iterdir()):
        os.chmod(f, 0o644)
        os.replace(f, dest / f.name)
    tmp.rmdir()


# --------------------------------------------------------------------------- crawler

CRAWLER_N, CRAWLER_WORKERS = 300, 6


def crawler_once(tmp: Path) -> dict[str, Any]:
    cns, sns = "tfa-i4c", "tfa-i4s"
    caddr, saddr = pair(cns, sns, 1)
    srv = agent(
        sns,
        "server",
        "server",
        saddr=saddr,
        sport=HTTP_PORT,
        life=60,
        think=[0.005, 0.04],
        seed=SEED,
    )
    srv.wait_event("ready", 10)
    pcap = tmp / "crawler.pcap"
    cap = mc.Capture(cns, ["c0"], pcap)
    t_cap = time.time()
    cli = agent(
        cns,
        "crawler",
        "crawler",
        saddr=saddr,
        sport=HTTP_PORT,
        life=60,
        n=CRAWLER_N,
        workers=CRAWLER_WORKERS,
        gap=[0.05, 0.15],
        seed=SEED,
    )
    cli.wait(50)
    done = cli.ev("done")[0]
    if done["errors"] or len(done["results"]) != CRAWLER_N:
        raise RuntimeError(f"crawler: {len(done['results'])} ok, errors {done['errors'][:5]}")
    wait_closed(srv, CRAWLER_N)
    time.sleep(0.2)  # the last server FIN and the client's final ACK are on the wire
    stop_text = cap.stop(settle=0.05)
    t_stopped = time.time()
    # Right after the capture, nothing sent in between (TIME_WAIT sockets are silent).
    ss_time = time.time()
    tw = mc.nsx(cns, "ss", "-tan", "state", "time-wait").stdout
    ss_done = time.time()
    ss_all = mc.nsx(cns, "ss", "-tan").stdout
    ss_srv = mc.nsx(sns, "ss", "-tan").stdout
    info = sysctls(
        cns,
        "net.ipv4.tcp_max_tw_buckets",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_tw_reuse",
        "net.ipv4.tcp_fin_timeout",
    )
    (tmp / "ss_time_wait.txt").write_text(tw)
    (tmp / "ss_all.txt").write_text(ss_all)

    # Read back: 300 connections, each a handshake, one request/response, client FIN first.
    pkts, _ = mc.read_pcap(pcap)
    by_port = conns_of(pkts, caddr)
    facts, fail = [], []

    def that(cond: bool, fact: str) -> None:
        (facts if cond else fail).append(fact)

    that(len(by_port) == CRAWLER_N, f"{CRAWLER_N} distinct client ports")
    that({r["port"] for r in done["results"]} == set(by_port), "client ports as the crawler saw")
    syns = [p for p in pkts if p.flags == "S"]
    that(len(syns) == CRAWLER_N, f"{CRAWLER_N} SYNs, none retransmitted")
    that(not any(p.has("R") for p in pkts), "no RST")
    first_fin_client = all(next(p for p in c if p.has("F")).src == caddr for c in by_port.values())
    that(first_fin_client, "every first FIN from the client")
    last_client_ack = all(
        c[-1].src == caddr and c[-1].flags == "." and any(p.has("F") and p.src == saddr for p in c)
        for c in by_port.values()
    )
    that(last_client_ack, "every connection ends with the client's ACK of the server FIN")
    how = Counter(e["how"] for e in srv.ev("closed"))
    that(how == Counter(eof=CRAWLER_N), f"server saw EOF first on all: {dict(how)}")
    if fail:
        raise RuntimeError("; ".join(fail))

    tw_lines = [ln for ln in tw.splitlines()[1:] if ln.strip()]
    first, last, frames = pcap_span(pcap)
    per_sec: Counter[int] = Counter(int(p.t - first) for p in syns)
    return {
        "file": "crawler.pcap",
        "description": (
            f"A crawler in namespace tfa-i4c ({caddr}) makes {CRAWLER_N} HTTP/1.1-like "
            f"connections to a server in tfa-i4s ({saddr}:{HTTP_PORT}), {CRAWLER_WORKERS} "
            "workers at once, each pausing 50-150 ms between connections; the server "
            "thinks 5-40 ms before answering. Each connection: handshake, one GET, one "
            "small 200 response, then the client close()s first (four-segment close; the "
            "server close()s on EOF), so the client holds TIME_WAIT. Ephemeral client "
            "ports. Capture point: client-side veth c0 in tfa-i4c (tcpdump -s 0 -U "
            "--immediate-mode, offloads off). tcpdump was stopped after the last "
            "connection's final ACK, then `ip netns exec tfa-i4c ss -tan state time-wait` "
            "(ss_time_wait.txt) and `ss -tan` (ss_all.txt) ran at once; nothing was sent "
            "in between. Verified with tcpdump -nr: " + "; ".join(facts) + "."
        ),
        "client_ip": caddr,
        "server_ip": saddr,
        "server_port": HTTP_PORT,
        "connections": CRAWLER_N,
        "workers": CRAWLER_WORKERS,
        "active_closer": "client",
        "client_state_at_end": "TIME_WAIT",
        "server_state_at_end": "CLOSED",
        "capture_point": "c0 in tfa-i4c (client side)",
        "capture_started": t_cap,
        "capture_stopped": t_stopped,
        "first_packet_ts": first,
        "last_packet_ts": last,
        "frames": frames,
        "tcp_packets": len(pkts),
        "bytes": pcap.stat().st_size,
        "connections_started_per_second": [per_sec[s] for s in range(max(per_sec) + 1)],
        "ss_time": ss_time,
        "ss_time_done": ss_done,
        "ss_command": "ip netns exec tfa-i4c ss -tan state time-wait",
        "ss_time_wait_count": len(tw_lines),
        "ss_all_states": ss_states(ss_all),
        "ss_server_states": ss_states(ss_srv),
        "seconds_from_last_packet_to_ss": round(ss_time - last, 4),
        "linux_time_wait_seconds": 60,
        "kernel": os.uname().release,
        "client_sysctls": info,
        "tcpdump": stop_text.strip().splitlines()[-3:],
    }


def make_crawler() -> None:
    out = HERE / "crawler"
    tmp = out / ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    note = attempts("crawler", lambda: crawler_once(tmp))
    (tmp / "NOTE.json").write_text(json.dumps(note, indent=2) + "\n")
    install(tmp, out, "*")
    log(
        f"  crawler: {note['bytes']} bytes, ss TIME_WAIT {note['ss_time_wait_count']}, "
        f"ss {note['seconds_from_last_packet_to_ss']} s after the last packet"
    )


# --------------------------------------------------------------------------- batch

BATCH_FILES, BATCH_LANES = 100, 4
KINDS = {
    "cc": "client close()s first after the response (FIN; client TIME_WAIT)",
    "sc": "server close()s first after the response (FIN; server TIME_WAIT)",
    "refused": "connect() to a port nobody listens on (SYN, RST/ACK)",
    "ca": "client aborts after the response with SO_LINGER {1,0} (RST from the client)",
    "sa": "server aborts without answering, SO_LINGER {1,0} (RST from the server)",
}


def batch_plan() -> list[list[str]]:
    rng = random.Random(SEED)
    names, weights = list(KINDS), [5, 4, 1, 1, 1]
    plan = []
    for i in range(BATCH_FILES):
        kinds = rng.choices(names, weights, k=rng.randint(2, 4))
        if i < len(names):  # every kind early on, whatever the draw
            kinds[0] = names[i]
        plan.append(kinds)
    return plan


def check_batch_file(
    path: Path, caddr: str, saddr: str, results: list[dict[str, Any]]
) -> tuple[int, list[int]]:
    """Check one batch capture against what the client did; (TCP segments, client ports)."""
    pkts, _ = mc.read_pcap(path)
    by_port = conns_of(pkts, caddr)
    fail = []
    if len(by_port) != len(results):
        fail.append(f"{len(by_port)} connections on the wire, {len(results)} made")
    for c in by_port.values():
        if c[0].flags != "S" or c[0].src != caddr:
            fail.append(f"connection starts with {c[0].raw}")
    for r, c in zip(results, by_port.values(), strict=False):
        kind = r["kind"]
        rst_from = {p.src for p in c if p.has("R")}
        fin_first = next((p.src for p in c if p.has("F")), None)
        want: dict[str, tuple[set[str], str | None]] = {
            "cc": (set(), caddr),
            "sc": (set(), saddr),
            "refused": ({saddr}, None),
            "ca": ({caddr}, None),
            "sa": ({saddr}, None),
        }
        if (rst_from, fin_first) != want[kind]:
            fail.append(f"{kind}: RST from {rst_from}, first FIN from {fin_first}")
    if fail:
        raise RuntimeError(f"{path.name}: " + "; ".join(fail))
    return len(pkts), list(by_port)


def batch_lane(lane: int, files: list[int], plan: list[list[str]], tmp: Path) -> list[Any]:
    cns, sns = f"tfa-i4b{lane}c", f"tfa-i4b{lane}s"
    caddr, saddr = pair(cns, sns, 10 + lane)
    srv = agent(sns, "server", f"server{lane}", saddr=saddr, sport=BATCH_PORT, life=120)
    srv.wait_event("ready", 10)
    cli = agent(cns, "batch", f"client{lane}", saddr=saddr, sport=BATCH_PORT, life=120)
    cli.wait_event("ready", 10)
    notes = []
    for i in files:
        if STOP.is_set():
            raise RuntimeError(f"lane {lane} stopped")
        kinds = plan[i]
        path = tmp / f"cap-{i:03d}.pcap"
        for attempt in range(1, 4):
            base = len(srv.ev("closed"))
            cap = mc.Capture(cns, ["c0"], path)
            try:
                assert cli.p.stdin
                cli.p.stdin.write((json.dumps(kinds) + "\n").encode())
                cli.p.stdin.flush()
                results = cli.wait_event("did", 10)["results"]
                wait_closed(srv, base + sum(k != "refused" for k in kinds))
                time.sleep(0.05)
            finally:
                cap.stop(settle=0.05)
            try:
                tcp, ports = check_batch_file(path, caddr, saddr, results)
            except RuntimeError as e:
                log(f"  batch: {e} (attempt {attempt})")
                if attempt == 3:
                    raise
                continue
            break
        notes.append(
            {
                "file": path.name,
                "client_ip": caddr,
                "server": f"{saddr}:{BATCH_PORT}",
                "connections": [
                    {"kind": r["kind"], "client_port": port}
                    for r, port in zip(results, ports, strict=True)
                ],
                "tcp_packets": tcp,
                "bytes": path.stat().st_size,
            }
        )
    return notes


def make_batch() -> None:
    out = HERE / "batch"
    tmp = out / ".tmp"
    plan = batch_plan()

    def once() -> list[Any]:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        lanes = [list(range(k, BATCH_FILES, BATCH_LANES)) for k in range(BATCH_LANES)]
        out: dict[int, Any] = {}

        def lane(k: int) -> None:
            try:
                out[k] = batch_lane(k, lanes[k], plan, tmp)
            except BaseException as e:
                out[k] = e
                STOP.set()

        # Daemon threads, joined by polling: a signal reaches the main thread at once, and
        # cleanup() (main's finally, atexit) kills the lanes' processes and namespaces.
        STOP.clear()
        threads = [
            threading.Thread(target=lane, args=(k,), daemon=True) for k in range(BATCH_LANES)
        ]
        for t in threads:
            t.start()
        deadline = time.time() + 120
        while any(t.is_alive() for t in threads):
            if time.time() > deadline:
                STOP.set()
                raise RuntimeError("batch lanes did not finish in 120 s")
            time.sleep(0.05)
        errors = [f"lane {k}: {e}" for k, e in sorted(out.items()) if isinstance(e, BaseException)]
        if errors:
            raise RuntimeError("; ".join(errors))
        return sorted((n for k in sorted(out) for n in out[k]), key=lambda n: n["file"])

    notes = attempts("batch", once, tries=2)
    rng = random.Random(SEED)
    garbage = rng.randbytes(3000)
    assert garbage[:4] not in (
        b"\xd4\xc3\xb2\xa1",
        b"\xa1\xb2\xc3\xd4",
        b"\x4d\x3c\xb2\xa1",
        b"\xa1\xb2\x3c\x4d",
        b"\x0a\x0d\x0d\x0a",
        b"\x1f\x8b\x08\x00",
    )
    (tmp / "corrupt.pcap").write_bytes(garbage)
    kinds = Counter(c["kind"] for n in notes for c in n["connections"])
    note = {
        "description": (
            f"{BATCH_FILES} captures, each its own tcpdump run (-s 0 -U --immediate-mode) "
            "on the client-side veth c0 of one of 4 namespace pairs tfa-i4b{0..3}c/s that "
            "ran in parallel (client 10.4.1K.1, server 10.4.1K.2, port 5000; refused "
            "connects go to port 5001). Each capture holds 2-4 connections made one after "
            "another with ephemeral client ports; the capture was stopped after the server "
            "had closed every accepted connection. Verified with tcpdump -nr per file: "
            "connection count, every connection starts with the client SYN, and RST sender "
            "/ first FIN sender as the kind says. corrupt.pcap is 3000 random bytes "
            f"(random.Random({SEED}).randbytes), not a capture."
        ),
        "kinds": KINDS,
        "connections_by_kind": dict(kinds),
        "corrupt": "corrupt.pcap",
        "files": notes,
    }
    (tmp / "NOTE.json").write_text(json.dumps(note, indent=2) + "\n")
    install(tmp, out, "*")
    size = sum(f.stat().st_size for f in out.glob("*.pcap"))
    log(f"  batch: {len(notes)} captures + corrupt.pcap, {size} bytes, {dict(kinds)}")


# --------------------------------------------------------------------------- series

SERIES_N, SERIES_PARTS = 20, 4


def series_once(tmp: Path) -> dict[str, Any]:
    cns, sns = "tfa-i4c", "tfa-i4s"
    caddr, saddr = pair(cns, sns, 2)
    srv = agent(sns, "server", "server", saddr=saddr, sport=HTTP_PORT, life=60)
    srv.wait_event("ready", 10)
    whole = tmp / "whole.pcap"
    cap = mc.Capture(cns, ["c0"], whole)
    ends = ["sc" if i % 4 == 3 else "cc" for i in range(SERIES_N)]
    cli = agent(
        cns,
        "series",
        "client",
        saddr=saddr,
        sport=HTTP_PORT,
        life=60,
        n=SERIES_N,
        stagger=0.2,
        requests=3,
        gap=0.5,
        ends=ends,
    )
    cli.wait(30)
    done = cli.ev("done")[0]
    if done["errors"] or len(done["results"]) != SERIES_N:
        raise RuntimeError(f"series: {done['errors'][:5]}")
    wait_closed(srv, SERIES_N)
    time.sleep(0.2)
    cap.stop(settle=0.05)

    pkts, _ = mc.read_pcap(whole)
    by_port = conns_of(pkts, caddr)
    if len(by_port) != SERIES_N or any(p.has("R") for p in pkts):
        raise RuntimeError(
            f"series: {len(by_port)} connections, RST: {any(p.has('R') for p in pkts)}"
        )
    first, last, frames = pcap_span(whole)
    per = math.ceil(frames / SERIES_PARTS)
    split = tmp / "split"
    split.mkdir()
    mc.run(["editcap", "-F", "pcap", "-c", str(per), str(whole), str(split / "part.pcap")])

    def index(p: Path) -> int:  # editcap names them part_NNNNN_<time>.pcap
        m = re.search(r"_(\d{5})_", p.name)
        assert m, p.name
        return int(m.group(1))

    made = sorted(split.iterdir(), key=index)
    parts = []
    seen: dict[int, list[str]] = {}
    for k, f in enumerate(made):
        name = f"part-{k:02d}.pcap"
        os.replace(f, tmp / name)
        ppkts, _ = mc.read_pcap(tmp / name)
        p_first, p_last, p_frames = pcap_span(tmp / name)
        ports = sorted(conns_of(ppkts, caddr))
        for port in ports:
            seen.setdefault(port, []).append(name)
        parts.append(
            {
                "file": name,
                "frames": p_frames,
                "first_ts": p_first,
                "last_ts": p_last,
                "client_ports": ports,
            }
        )
    split.rmdir()
    if sum(p["frames"] for p in parts) != frames:
        raise RuntimeError("parts do not add up to the whole capture")
    spanning = {str(p): f for p, f in sorted(seen.items()) if len(f) > 1}
    if len(spanning) < 3:
        raise RuntimeError(f"only {len(spanning)} connections span a split point")
    return {
        "description": (
            f"{SERIES_N} keep-alive connections from {caddr} (tfa-i4c) to {saddr}:{HTTP_PORT} "
            "(tfa-i4s), started 200 ms apart; each makes 3 GET requests 500 ms apart, then "
            "the client close()s first, except every 4th connection (i % 4 == 3) where the "
            "server close()s after answering the third request. One tcpdump run on c0 "
            "(client side) gave whole.pcap; `editcap -F pcap -c "
            f"{per}` split it into {len(parts)} parts, as size/count rotation splits a live "
            "stream: part-NN order is time order, and the connections in `spanning` have "
            "segments in more than one part."
        ),
        "client_ip": caddr,
        "server": f"{saddr}:{HTTP_PORT}",
        "connections": SERIES_N,
        "ends": {str(r["port"]): r["kind"] for r in done["results"]},
        "whole": {
            "file": "whole.pcap",
            "frames": frames,
            "first_ts": first,
            "last_ts": last,
            "bytes": whole.stat().st_size,
        },
        "packets_per_part": per,
        "parts": parts,
        "spanning": spanning,
    }


def make_series() -> None:
    out = HERE / "series"
    tmp = out / ".tmp"

    def once() -> dict[str, Any]:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        return series_once(tmp)

    note = attempts("series", once)
    (tmp / "NOTE.json").write_text(json.dumps(note, indent=2) + "\n")
    install(tmp, out, "*")
    log(f"  series: {len(note['parts'])} parts, {len(note['spanning'])} connections span them")


# --------------------------------------------------------------------------- main

STEPS = {"crawler": make_crawler, "batch": make_batch, "series": make_series}


def _on_signal(signum: int, _frame: Any) -> None:
    STOP.set()
    raise SystemExit(128 + signum)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--only",
        nargs="+",
        choices=list(STEPS),
        metavar="NAME",
        help=f"make only these: {', '.join(STEPS)}",
    )
    args = ap.parse_args()
    if os.geteuid() != 0:
        log("must run as root (network namespaces, tcpdump)")
        return 2
    atexit.register(cleanup)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    delete_mine(stale=True)
    t0 = time.time()
    failed = []
    try:
        for name in args.only or list(STEPS):
            log(f"[{name}]")
            try:
                STEPS[name]()
            except RuntimeError as e:
                log(f"  giving up: {e}")
                failed.append(name)
    finally:
        cleanup()
        for d in STEPS:
            shutil.rmtree(HERE / d / ".tmp", ignore_errors=True)
    log(f"done in {time.time() - t0:.0f} s; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
