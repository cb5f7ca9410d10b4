#!/usr/bin/env python3
"""Make real Linux-kernel TCP teardown captures inside throw-away network namespaces.

    sudo python3 captures/make_captures.py            # all scenarios
    sudo python3 captures/make_captures.py --only client_close refused
    sudo python3 captures/make_captures.py --list

Each scenario gets fresh namespaces (``tfa-c`` client, ``tfa-s`` server and,
when the scenario needs a "network" in between, ``tfa-m`` running relay.py),
a veth pair per hop, real sockets on both ends (peer.py), optional nftables
fault injection and sysctls inside the namespaces, and a capture taken with
tcpdump (or dumpcap for pcapng).  Nothing touches the root namespace's
networking: every interface is created inside a tfa-* namespace, and all
addresses are 10.0.0.0/8 or fd00::/8 living only there.

After writing a capture the script reads it back with ``tcpdump -nr`` and
checks the shape the scenario must have; a scenario whose capture does not
check out is run again (bounded).  Ground truth (what the scenario did) and
what was verified go to captures/MANIFEST.json.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import queue
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEER = HERE / "peer.py"
RELAY = HERE / "relay.py"
MANIFEST = HERE / "MANIFEST.json"
PREFIX = "tfa-"
NS_C, NS_S, NS_M = "tfa-c", "tfa-s", "tfa-m"
SPORT = 5000

PROCS: list[subprocess.Popen[bytes]] = []
HAVE_ETHTOOL = bool(subprocess.run(["sh", "-c", "command -v ethtool"],
                                   capture_output=True).stdout.strip())


# --------------------------------------------------------------------------- plumbing

def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(cmd: list[str], check: bool = True, input: str | None = None,
        timeout: float = 20) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr.strip()}")
    return p


def nsx(ns: str, *cmd: str, check: bool = True, input: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    return run(["ip", "netns", "exec", ns, *cmd], check=check, input=input)


def sysctl(ns: str, **kv: Any) -> None:
    for k, v in kv.items():
        nsx(ns, "sysctl", "-qw", f"{k.replace('__', '.')}={v}")


def kill_proc(p: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, sig)
        try:
            p.wait(3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
            p.wait(3)


def our_namespaces(prefix: str = PREFIX) -> list[str]:
    """Network namespaces whose names start with ``prefix`` (other scripts pass their own)."""
    out = run(["ip", "netns", "list"], check=False).stdout
    names = [ln.split()[0] for ln in out.splitlines() if ln.split()]
    return [n for n in names if n.startswith(prefix)]


def delete_namespaces(stale: bool = False, prefix: str = PREFIX) -> None:
    for ns in our_namespaces(prefix):
        if stale:  # processes left in one of our namespaces by an earlier, interrupted run
            for pid in run(["ip", "netns", "pids", ns], check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        run(["ip", "netns", "del", ns], check=False)


def cleanup(prefix: str = PREFIX) -> None:
    while PROCS:
        kill_proc(PROCS.pop())
    delete_namespaces(prefix=prefix)


def _on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


class Proc:
    """A child process started inside a namespace, with its JSON-lines stdout collected."""

    def __init__(self, ns: str, argv: list[str], name: str) -> None:
        self.name = name
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        PROCS.append(self.p)
        self.events: list[dict[str, Any]] = []
        self.q: queue.Queue[dict[str, Any]] = queue.Queue()
        self.err = b""
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout
        for line in self.p.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"ev": "text", "line": line.decode(errors="replace").strip()}
            self.events.append(ev)
            self.q.put(ev)

    def _read_err(self) -> None:
        assert self.p.stderr
        self.err = self.p.stderr.read()

    def wait_event(self, name: str, timeout: float = 10) -> dict[str, Any]:
        end = time.time() + timeout
        while time.time() < end:
            try:
                ev = self.q.get(timeout=max(0.01, end - time.time()))
            except queue.Empty:
                break
            if ev.get("ev") == name:
                return ev
            if ev.get("ev") == "exception":
                raise RuntimeError(f"{self.name}: {ev}")
        raise RuntimeError(f"{self.name}: no '{name}' within {timeout}s; "
                           f"events={self.events} stderr={self.err[-500:]!r}")

    def release(self) -> None:
        if self.p.stdin and not self.p.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.p.stdin.write(b"go\n")
                self.p.stdin.flush()

    def wait(self, timeout: float = 20) -> int:
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_proc(self.p)
            raise RuntimeError(f"{self.name} did not finish in {timeout}s: {self.events}") from None
        time.sleep(0.05)  # let the reader thread drain
        if any(e.get("ev") == "exception" for e in self.events):
            raise RuntimeError(f"{self.name}: {self.events} {self.err[-500:]!r}")
        return rc

    def ev(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("ev") == name]

    def stop(self) -> None:
        kill_proc(self.p)


class Capture:
    """tcpdump (pcap) or dumpcap (pcapng) on interfaces inside one namespace."""

    def __init__(self, ns: str, ifaces: list[str], path: Path, pcapng: bool = False) -> None:
        self.path = path
        self.pcapng = pcapng
        path.unlink(missing_ok=True)
        if pcapng:
            argv = ["dumpcap", "-q", "-s", "0", "-w", str(path)]
            for i in ifaces:
                argv += ["-i", i]
            ready = b"Capturing on"
        else:
            argv = ["tcpdump", "-i", ifaces[0], "-w", str(path), "-s", "0", "-U", "-n",
                    "-Z", "root", "-B", "1024", "--immediate-mode"]
            ready = b"listening on"
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, *argv],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        PROCS.append(self.p)
        buf = b""
        end = time.time() + 5
        assert self.p.stderr
        fd = self.p.stderr.fileno()
        while ready not in buf and time.time() < end:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
        if ready not in buf:
            kill_proc(self.p)
            raise RuntimeError(f"capture did not start: {buf!r}")
        self.banner = buf
        time.sleep(0.25)

    def stop(self, settle: float = 0.3) -> str:
        # dumpcap has no immediate mode: give libpcap's TPACKET_V3 block timeout time to
        # hand over the last packets before SIGINT
        time.sleep(max(settle, 1.2) if self.pcapng else settle)
        self.p.send_signal(signal.SIGINT)
        try:
            _, err = self.p.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            kill_proc(self.p)
            err = b""
        with contextlib.suppress(ValueError):
            PROCS.remove(self.p)
        if self.path.exists():
            os.chmod(self.path, 0o644)
        text = (self.banner + err).decode(errors="replace")
        m = re.search(r"(\d+) packets? dropped by kernel", text)
        if m and int(m.group(1)):
            raise RuntimeError(f"capture dropped packets: {text}")
        mc = re.search(r"(\d+) packets? captured", text)
        mr = re.search(r"(\d+) packets? received by filter", text)
        if mc and mr and mc.group(1) != mr.group(1):
            raise RuntimeError(f"capture incomplete: {text}")
        return text


# --------------------------------------------------------------------------- topology

@dataclass
class Topo:
    idx: int
    v6: bool = False
    relay: str | None = None          # None | "plain" | "vlan"
    caddr: str = ""
    saddr: str = ""
    relay_proc: Proc | None = None
    cap_ns: str = NS_C
    cap_if: str = "c0"
    notes: list[str] = field(default_factory=list)

    def conf(self, cports: list[int], **opt: Any) -> dict[str, Any]:
        return {"family": 6 if self.v6 else 4, "saddr": self.saddr, "sport": SPORT,
                "caddr": self.caddr, "cports": cports, "opt": opt,
                "life": opt.get("life", 30)}

    def ep(self, addr: str, port: int) -> str:
        return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def mac(a: int, b: int) -> str:
    return f"02:54:46:41:{a:02x}:{b:02x}"


def offloads_off(ns: str, dev: str) -> None:
    if HAVE_ETHTOOL:
        nsx(ns, "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
            check=False)


def make_ns(ns: str, v6: bool) -> None:
    run(["ip", "netns", "add", ns])
    nsx(ns, "ip", "link", "set", "lo", "up")
    if v6:
        # no DAD, no router solicitations: keep the capture to the scenario's traffic
        sysctl(ns, net__ipv6__conf__default__accept_dad=0,
               net__ipv6__conf__default__dad_transmits=0,
               net__ipv6__conf__default__router_solicitations=0,
               net__ipv6__conf__all__accept_dad=0)
        nsx(ns, "nft", "-f", "-", input="""table inet tfa_quiet {
  chain out { type filter hook output priority 0; policy accept;
    icmpv6 type { mld-listener-report, mld2-listener-report, nd-router-solicit } drop
  }
}""")
    else:
        sysctl(ns, net__ipv6__conf__all__disable_ipv6=1, net__ipv6__conf__default__disable_ipv6=1)


def veth(ns1: str, if1: str, mac1: str, ns2: str, if2: str, mac2: str) -> None:
    nsx(ns1, "ip", "link", "add", if1, "address", mac1, "type", "veth",
        "peer", "name", if2, "address", mac2, "netns", ns2)
    for ns, dev in ((ns1, if1), (ns2, if2)):
        offloads_off(ns, dev)


def setup(idx: int, v6: bool = False, relay: str | None = None,
          hold: dict[str, str] | None = None, pair_fin: bool = False) -> Topo:
    delete_namespaces()
    t = Topo(idx, v6=v6, relay=relay)
    make_ns(NS_C, v6)
    make_ns(NS_S, v6)
    if relay is None:
        veth(NS_C, "c0", mac(idx, 1), NS_S, "s0", mac(idx, 2))
    else:
        make_ns(NS_M, False)
        veth(NS_C, "c0", mac(idx, 1), NS_M, "m0", mac(idx, 0x11))
        veth(NS_S, "s0", mac(idx, 2), NS_M, "m1", mac(idx, 0x12))
        links: list[list[Any]] = []
        mids = ["m0", "m1"]
        if relay == "vlan":
            veth(NS_M, "t0", mac(idx, 0x21), NS_M, "t1", mac(idx, 0x22))
            links = [["m0", "t0", 100], ["m1", "t1", 100]]
            mids += ["t0", "t1"]
        else:
            links = [["m0", "m1", None]]
        for dev in mids:
            nsx(NS_M, "ip", "link", "set", dev, "promisc", "on", "up")
    if v6:
        t.caddr, t.saddr = f"fd00:1:{idx:x}::1", f"fd00:1:{idx:x}::2"
        nsx(NS_C, "ip", "addr", "add", f"{t.caddr}/64", "dev", "c0", "nodad")
        nsx(NS_S, "ip", "addr", "add", f"{t.saddr}/64", "dev", "s0", "nodad")
    else:
        t.caddr, t.saddr = f"10.1.{idx}.1", f"10.1.{idx}.2"
        nsx(NS_C, "ip", "addr", "add", f"{t.caddr}/24", "dev", "c0")
        nsx(NS_S, "ip", "addr", "add", f"{t.saddr}/24", "dev", "s0")
    nsx(NS_C, "ip", "link", "set", "c0", "up")
    nsx(NS_S, "ip", "link", "set", "s0", "up")
    if relay is not None:
        rconf = {"links": links, "life": 40, "hold": hold, "pair_fin": pair_fin}
        t.relay_proc = Proc(NS_M, ["python3", str(RELAY), json.dumps(rconf)], "relay")
        t.relay_proc.wait_event("ready", 5)
    time.sleep(0.3)  # links up
    return t


def teardown(t: Topo | None) -> None:
    cleanup()


# --------------------------------------------------------------------------- reading captures back

PKT_RE = re.compile(r"(\S+)\.(\d+) > (\S+)\.(\d+): Flags \[([^\]]*)\](.*)$")


@dataclass
class Pkt:
    t: float
    src: str
    sport: int
    dst: str
    dport: int
    flags: str
    seq: int | None
    end: int | None
    ack: int | None
    length: int
    raw: str

    @property
    def a(self) -> tuple[str, int]:
        return (self.src, self.sport)

    def has(self, f: str) -> bool:
        return f in self.flags


def read_pcap(path: Path, extra: list[str] | None = None) -> tuple[list[Pkt], str]:
    out = run(["tcpdump", "-tt", "-nn", "-S", "-r", str(path), *(extra or [])]).stdout
    pkts = []
    for line in out.splitlines():
        m = PKT_RE.search(line)
        if not m:
            continue
        rest = m.group(6)
        seq = end = ack = None
        ms = re.search(r"seq (\d+)(?::(\d+))?", rest)
        if ms:
            seq = int(ms.group(1))
            end = int(ms.group(2)) if ms.group(2) else seq
        ma = re.search(r"ack (\d+)", rest)
        if ma:
            ack = int(ma.group(1))
        ml = re.search(r"length (\d+)", rest)
        pkts.append(Pkt(float(line.split()[0]), m.group(1), int(m.group(2)), m.group(3),
                        int(m.group(4)), m.group(5), seq, end, ack,
                        int(ml.group(1)) if ml else 0, line))
    return pkts, out


class Check:
    """Collects verified facts (for the description) and failures (to retry)."""

    def __init__(self, pkts: list[Pkt], clients: list[tuple[str, int]]) -> None:
        self.pkts = pkts
        self.clients = set(clients)
        self.facts: list[str] = []
        self.fail: list[str] = []

    def role(self, p: Pkt) -> str:
        return "C" if p.a in self.clients else "S"

    def that(self, cond: bool, fact: str) -> bool:
        (self.facts if cond else self.fail).append(fact)
        return cond

    def conns(self) -> list[list[Pkt]]:
        """Group by 4-tuple, and split a 4-tuple into incarnations at each client SYN."""
        out: list[list[Pkt]] = []
        cur: dict[frozenset[tuple[str, int]], list[Pkt]] = {}
        for p in self.pkts:
            k = frozenset([p.a, (p.dst, p.dport)])
            if (p.flags == "S" and k in cur and any(q.flags == "S" and q.seq != p.seq
                                                     for q in cur[k])) or k not in cur:
                cur[k] = []
                out.append(cur[k])
            cur[k].append(p)
        return out

    def wire(self) -> str:
        idx: dict[int, int] = {}
        toks = []
        for n, c in enumerate(self.conns(), 1):
            for p in c:
                idx[id(p)] = n
        for p in self.pkts:
            tok = f"{idx[id(p)]}{self.role(p)}:{p.flags}"
            if p.length:
                tok += f"/{p.length}"
            toks.append(tok)
        return " ".join(toks)


def close_shape(c: list[Pkt], role_of: Callable[[Pkt], str]) -> tuple[str, list[str]]:
    """Who sent the first FIN, and the tokens from that FIN to the end."""
    first = next((i for i, p in enumerate(c) if p.has("F")), None)
    if first is None:
        return "", []
    return role_of(c[first]), [f"{role_of(p)}:{p.flags}" for p in c[first:]]


def handshake_of(c: list[Pkt]) -> str:
    syn = [p for p in c if p.flags == "S"]
    synack = [p for p in c if p.has("S") and p.has(".")]
    if not syn:
        return "none"
    if synack and len(c) > len(syn) + len(synack):
        return "complete"
    return "partial"


# --------------------------------------------------------------------------- scenarios

@dataclass
class Result:
    description: str
    connections: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)


def conn(t: Topo, cport: int, inc: int, active: str, ctype: str, cst: str, sst: str,
         hs: str, server: str | None = None, **facts: Any) -> dict[str, Any]:
    return {"client": t.ep(t.caddr, cport), "server": server or t.ep(t.saddr, SPORT),
            "incarnation": inc, "active_closer": active, "close_type": ctype,
            "client_state_at_end": cst, "server_state_at_end": sst, "handshake": hs, **facts}


def standard(t: Topo, path: Path, cports: list[int], sopt: dict[str, Any],
             copt: dict[str, Any], settle: float = 0.3, hold_server: float | None = None,
             after_client: float = 0.0) -> tuple[Proc, Proc, str]:
    """Server up, capture on, client runs, wait, capture off."""
    srv = Proc(NS_S, ["python3", str(PEER), "server", path.stem,
                      json.dumps(t.conf(cports, **sopt))], "server")
    srv.wait_event("ready", 10)
    cap = Capture(t.cap_ns, [t.cap_if], path)
    cli = Proc(NS_C, ["python3", str(PEER), "client", path.stem,
                      json.dumps(t.conf(cports, **copt))], "client")
    cli.wait(25)
    if after_client:
        time.sleep(after_client)
    if hold_server is None:
        srv.wait(25)
    text = cap.stop(settle)
    if hold_server is not None:
        srv.release()
        srv.wait(25)
    return srv, cli, text


def pkts_of(path: Path, t: Topo, cports: list[int]) -> Check:
    pkts, _ = read_pcap(path)
    return Check(pkts, [(t.caddr, p) for p in cports])


# drop the first pure ACK a host sends/receives on a 4-tuple after that 4-tuple's client FIN
NFT_DROP_FINAL_ACK = """table inet tfa {{
  set finsent {{ type ipv4_addr . inet_service; flags dynamic; }}
  set ackdropped {{ type ipv4_addr . inet_service; flags dynamic; }}
  chain {chain} {{ type filter hook {hook} priority 0; policy accept;
    ip {cdir} {caddr} tcp flags & (fin|syn|rst) == fin add @finsent {{ ip {cdir} . tcp {pdir} }}
    ip {cdir} . tcp {pdir} @finsent ip {cdir} . tcp {pdir} != @ackdropped \\
      tcp flags & (fin|syn|rst|psh|ack) == ack \\
      add @ackdropped {{ ip {cdir} . tcp {pdir} }} counter drop
  }}
}}
"""


def nft_final_ack(where: str, caddr: str) -> str:
    if where == "server_input":
        return NFT_DROP_FINAL_ACK.format(chain="input", hook="input", cdir="saddr",
                                         pdir="sport", caddr=caddr)
    return NFT_DROP_FINAL_ACK.format(chain="output", hook="output", cdir="saddr",
                                     pdir="sport", caddr=caddr)


def nft_counters(ns: str) -> str:
    out = nsx(ns, "nft", "list", "ruleset", check=False).stdout
    return ", ".join(re.findall(r"counter (packets \d+) bytes \d+", out))


# Each scenario: (index, name, file, function).  The function gets (topo-less) index and path,
# sets up its own topology, returns (Check, Result).

Scenario = Callable[[int, Path], tuple[Check, Result]]
SCENARIOS: dict[str, tuple[int, str, Scenario]] = {}


def scenario(idx: int, name: str, fname: str | None = None) -> Callable[[Scenario], Scenario]:
    def deco(fn: Scenario) -> Scenario:
        SCENARIOS[name] = (idx, fname or f"{name}.pcap", fn)
        return fn
    return deco


def port(idx: int, k: int = 0) -> int:
    return 41000 + idx * 10 + k


def simple_client_close(idx: int, path: Path, t: Topo, close_delay: float = 0.3,
                        copt: dict[str, Any] | None = None, sopt: dict[str, Any] | None = None,
                        **kw: Any) -> tuple[Proc, Proc, Check]:
    cp = port(idx)
    srv, cli, _ = standard(t, path, [cp], {"mode": "passive", "close_delay": close_delay,
                                           **(sopt or {})},
                           {"mode": "active", **(copt or {})}, **kw)
    return srv, cli, pkts_of(path, t, [cp])


def check_four_way(ck: Check, closer: str) -> None:
    cs = ck.conns()
    ck.that(len(cs) == 1, "1 TCP connection")
    c = cs[0]
    ck.that(handshake_of(c) == "complete", "full 3-way handshake (S, S., .)")
    who, shape = close_shape(c, ck.role)
    other = "S" if closer == "C" else "C"
    ck.that(who == closer, f"first FIN from the {'client' if closer == 'C' else 'server'}")
    ck.that(shape == [f"{closer}:F.", f"{other}:.", f"{other}:F.", f"{closer}:."],
            f"four-segment close {' '.join(shape)}")
    ck.that(not any(p.has("R") for p in c), "no RST")


@scenario(1, "client_close")
def s_client_close(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    _, _, ck = simple_client_close(idx, path, t)
    check_four_way(ck, "C")
    return ck, Result(
        "Client sends 'hello', server answers 'world'; the client close()s first; the server "
        "reads EOF, waits 300 ms (its delayed ACK of the FIN goes out alone) and close()s. "
        "Capture point: client-side veth (c0 in tfa-c). No fault injected.",
        [conn(t, cp, 1, "client", "fin", "TIME_WAIT", "CLOSED", "complete",
              close_segments=4)])


@scenario(2, "server_close_3seg")
def s_server_close_3seg(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    standard(t, path, [cp], {"mode": "active"}, {"mode": "passive", "close_delay": 0})
    ck = pkts_of(path, t, [cp])
    c = ck.conns()[0]
    who, shape = close_shape(c, ck.role)
    ck.that(who == "S", "first FIN from the server")
    ck.that(shape == ["S:F.", "C:F.", "S:."], f"three-segment close {' '.join(shape)}")
    fins = [p for p in c if p.has("F")]
    if len(fins) == 2 and fins[1].ack is not None and fins[0].seq is not None:
        ck.that(fins[1].ack == fins[0].seq + 1, "client's FIN carries the ACK of the server's FIN")
    return ck, Result(
        "Server answers the request, waits 100 ms and close()s first; the client blocks in "
        "recv(), gets EOF and close()s at once, before its delayed ACK fires, so its ACK of "
        "the server FIN rides on its own FIN (FIN+ACK, three-segment close). Capture point: "
        "client-side veth (c0). No fault injected.",
        [conn(t, cp, 1, "server", "fin", "CLOSED", "TIME_WAIT", "complete", close_segments=3)])


@scenario(3, "server_close_4seg")
def s_server_close_4seg(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    standard(t, path, [cp], {"mode": "active"}, {"mode": "passive", "close_delay": 0.3})
    ck = pkts_of(path, t, [cp])
    check_four_way(ck, "S")
    return ck, Result(
        "Server answers and close()s first; the client reads EOF, waits 300 ms and then "
        "close()s, so its ACK of the server FIN and its own FIN are separate segments. "
        "Capture point: client-side veth (c0). No fault injected.",
        [conn(t, cp, 1, "server", "fin", "CLOSED", "TIME_WAIT", "complete", close_segments=4)])


@scenario(4, "half_close")
def s_half_close(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    standard(t, path, [cp], {"mode": "half_close", "chunks": 5}, {"mode": "half_close"})
    ck = pkts_of(path, t, [cp])
    c = ck.conns()[0]
    who, _ = close_shape(c, ck.role)
    ck.that(who == "C", "client FIN first (shutdown(SHUT_WR))")
    fi = next(i for i, p in enumerate(c) if p.has("F"))
    after = [p for p in c[fi + 1:] if ck.role(p) == "S" and p.length > 0]
    ck.that(len(after) == 5, f"{len(after)} server data segments after the client's FIN")
    sf = [p for p in c if ck.role(p) == "S" and p.has("F")]
    ck.that(len(sf) == 1 and c.index(sf[0]) > c.index(after[-1]) if after and sf else False,
            "server FIN after its data")
    ck.that(ck.role(c[-1]) == "C" and c[-1].flags == ".", "client ACKs the server FIN last")
    return ck, Result(
        "Client sends 'request' and calls shutdown(SHUT_WR) (FIN); the server reads EOF, then "
        "sends 5 data segments 50 ms apart into the half-closed connection (client in "
        "FIN_WAIT_2 keeps ACKing them), then close()s. Capture point: client-side veth (c0). "
        "No fault injected.",
        [conn(t, cp, 1, "client", "fin", "TIME_WAIT", "CLOSED", "complete",
              data_segments_after_fin=5)])


@scenario(5, "simultaneous_close")
def s_simultaneous(idx: int, path: Path) -> tuple[Check, Result]:
    # Two FINs only cross if both are in flight at once. On a veth (microsecond latency) that
    # needs the "network" to hold them: the relay keeps the first FIN of each side until it
    # has both, then sends both back to back.
    t = setup(idx, relay="plain", pair_fin=True)
    cp = port(idx)
    standard(t, path, [cp], {"mode": "simultaneous"}, {"mode": "simultaneous"})
    assert t.relay_proc
    rel = t.relay_proc.ev("fin_held") + t.relay_proc.ev("fins_released")
    ck = pkts_of(path, t, [cp])
    c = ck.conns()[0]
    cf = [p for p in c if ck.role(p) == "C" and p.has("F")]
    sf = [p for p in c if ck.role(p) == "S" and p.has("F")]
    ck.that(len(cf) == 1 and len(sf) == 1, f"{len(cf)} client FIN, {len(sf)} server FIN "
            "(no retransmission)")
    if cf and sf and sf[0].seq is not None and cf[0].seq is not None:
        ck.that(cf[0].ack == sf[0].seq,
                "client FIN's ack does not cover the server FIN (sent before receiving it)")
        ck.that(sf[0].ack == cf[0].seq,
                "server FIN's ack does not cover the client FIN (sent before receiving it)")
        acks = [p for p in c if p.flags == "." and p.t > max(cf[0].t, sf[0].t)]
        ck.that(sorted(ck.role(p) for p in acks) == ["C", "S"] and all(
            p.ack == (sf[0].seq + 1 if ck.role(p) == "C" else cf[0].seq + 1) and
            p.seq in (None,) for p in acks),
            "then each side ACKs the other's FIN once (CLOSING -> TIME_WAIT)")
        ck.facts.append(f"FINs {abs(sf[0].t - cf[0].t) * 1e6:.0f} us apart at the capture "
                        "point")
    ck.that(not any(p.has("R") for p in c), "no RST")
    return ck, Result(
        "Both apps call shutdown(SHUT_WR) at the same agreed instant, 300 ms after the "
        "exchange. Path: client c0 -- m0 [relay in tfa-m] m1 -- s0 server. The relay holds "
        "the first FIN of each side until it has both, then forwards both back to back, so "
        "the FINs cross: each side receives the peer's FIN while in FIN_WAIT_1 (its own FIN "
        "unacknowledged), goes CLOSING, ACKs, and enters TIME_WAIT on the peer's ACK. "
        "(Dropping the first FINs with nftables and letting the retransmissions cross was "
        "tried first: the two sides' retransmission timers fire ~4 ms (one jiffy) apart, so "
        "the earlier retransmission always arrived first and only one side went CLOSING.) "
        "Capture point: client-side veth (c0), between the client and the relay: the client "
        "FIN leaves, then the server FIN arrives with an ack that does not cover the client "
        "FIN.",
        [conn(t, cp, 1, "both", "closing", "TIME_WAIT", "TIME_WAIT", "complete")],
        {"relay_events": rel})


@scenario(6, "refused")
def s_refused(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cps = [port(idx), port(idx, 1)]
    cap = Capture(NS_C, ["c0"], path)
    cli = Proc(NS_C, ["python3", str(PEER), "client", "refused",
                      json.dumps(t.conf(cps, mode="refused", dport=SPORT))], "client")
    cli.wait(15)
    cap.stop()
    errs = cli.ev("error")
    ck = pkts_of(path, t, cps)
    ck.that([e["err"] for e in errs] == ["ConnectionRefusedError"] * 2,
            "both connect() calls failed with ECONNREFUSED")
    ck.that([f"{ck.role(p)}:{p.flags}" for p in ck.pkts] == ["C:S", "S:R.", "C:S", "S:R."],
            "wire: SYN, RST/ACK twice")
    return ck, Result(
        f"Client connects twice (source ports {cps[0]}, {cps[1]}) to port {SPORT} where "
        "nothing listens; the server's kernel answers each SYN with RST/ACK. Capture point: "
        "client-side veth (c0). No fault injected.",
        [conn(t, p, 1, "none", "refused", "CLOSED", "CLOSED", "partial", rst_sender="server")
         for p in cps])


@scenario(7, "rst_abort")
def s_rst_abort(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    srv, _, _ = standard(t, path, [cp], {"mode": "wait_rst"}, {"mode": "abort"})
    ck = pkts_of(path, t, [cp])
    c = ck.conns()[0]
    ck.that(handshake_of(c) == "complete", "full handshake")
    ck.that([f"{ck.role(p)}:{p.flags}" for p in c][-1:] == ["C:R."], "ends with client RST/ACK")
    ck.that(not any(p.has("F") for p in c), "no FIN")
    err = [e.get("err") for e in srv.ev("error")]
    ck.that(err == ["ConnectionResetError"], "server's recv() got ECONNRESET")
    return ck, Result(
        "After a request/response the client sets SO_LINGER {1, 0} and close()s: the kernel "
        "aborts with RST (no FIN). The server's blocked recv() fails with ECONNRESET. Capture "
        "point: client-side veth (c0). No fault injected.",
        [conn(t, cp, 1, "client", "rst", "CLOSED", "CLOSED", "complete", rst_sender="client",
              rst_reason="so_linger_0")])


@scenario(8, "unread_data_rst")
def s_unread(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    _, cli, _ = standard(t, path, [cp], {"mode": "partial_read", "read": 10},
                         {"mode": "big_request", "size": 300})
    ck = pkts_of(path, t, [cp])
    c = ck.conns()[0]
    ck.that(any(ck.role(p) == "S" and p.has("R") for p in c), "server sends RST")
    ck.that(not any(p.has("F") for p in c), "no FIN at all")
    err = [e.get("err") for e in cli.ev("error")]
    ck.that(err == ["ConnectionResetError"], "client's recv() got ECONNRESET")
    return ck, Result(
        "Client sends a 306-byte request; the server recv()s only 10 bytes, waits 200 ms and "
        "close()s with 296 bytes unread: Linux sends RST instead of FIN. Capture point: "
        "client-side veth (c0). No fault injected.",
        [conn(t, cp, 1, "server", "rst", "CLOSED", "CLOSED", "complete", rst_sender="server",
              rst_reason="close_with_unread_data", unread_bytes=296)])


def isn_after_time_wait(ck: Check, cs: list[list[Pkt]], side: str) -> None:
    """Linux picks the ISN of a connection that replaces a TIME_WAIT socket as the TIME_WAIT
    socket's snd_nxt + 65537 (tcp_twsk_unique on connect, TCP_TW_SYN on accept)."""
    for a, b in pairwise(cs):
        fin = next((p for p in a if ck.role(p) == side and p.has("F")), None)
        syn = next((p for p in b if ck.role(p) == side and p.has("S")), None)
        if fin and syn and fin.seq is not None and syn.seq is not None:
            d = (syn.seq - (fin.seq + 1)) % 2**32
            ck.that(d == 65537, f"{'client' if side == 'C' else 'server'} ISN of the next "
                    f"incarnation = old FIN seq + 1 + {d}")


@scenario(9, "tuple_reuse")
def s_tuple_reuse(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    _, cli, _ = standard(t, path, [cp], {"mode": "passive", "close_delay": 0.05,
                                         "incarnations": 3},
                         {"mode": "reuse", "closer": "client", "incarnations": 3, "gap": 0.3})
    ck = pkts_of(path, t, [cp])
    cs = ck.conns()
    ck.that(len(cs) == 3, f"{len(cs)} incarnations of the same 4-tuple")
    ck.that(all(close_shape(c, ck.role)[0] == "C" for c in cs), "client closes first in each")
    ck.that(all(sum(p.flags == "S" for p in c) == 1 for c in cs), "one SYN each (no retry)")
    if len(cs) == 3:
        gaps = [round(cs[i + 1][0].t - cs[i][-1].t, 2) for i in range(2)]
        ck.facts.append(f"each new SYN {gaps} s after the previous incarnation's last "
                        "segment, with the client in TIME_WAIT")
    isn_after_time_wait(ck, cs, "C")
    errs = cli.ev("connect_error")
    ck.that(not errs, f"connect() errors: {len(errs)}")
    return ck, Result(
        "Client pins its source port (bind() with SO_REUSEADDR) and connects 3 times on the "
        "same 4-tuple; each time it close()s first (client in TIME_WAIT), waits 300 ms and "
        "reconnects. Default sysctls: Linux lets connect() from an explicitly bound port "
        "take over a TIME_WAIT socket of the same 4-tuple when that TIME_WAIT socket has "
        "seen TCP timestamps (tcp_twsk_unique; the new ISN is set past the old snd_nxt), "
        "and the new connection replaces the TIME_WAIT socket. Capture point: client-side "
        "veth (c0). No fault injected.",
        [conn(t, cp, i, "client", "fin", "TIME_WAIT" if i == 3 else "CLOSED", "CLOSED",
              "complete", client_time_wait_reused=(i < 3))
         for i in (1, 2, 3)])


@scenario(10, "mid_connection")
def s_mid(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    srv = Proc(NS_S, ["python3", str(PEER), "server", "mid",
                      json.dumps(t.conf([cp], mode="echo", close_delay=0.3))], "server")
    srv.wait_event("ready")
    cli = Proc(NS_C, ["python3", str(PEER), "client", "mid",
                      json.dumps(t.conf([cp], mode="echo_mid"))], "client")
    cli.wait_event("mid")
    cap = Capture(NS_C, ["c0"], path)
    cli.release()
    cli.wait(15)
    srv.wait(15)
    cap.stop()
    ck = pkts_of(path, t, [cp])
    c = ck.conns()[0]
    ck.that(not any(p.has("S") for p in c), "no SYN in the capture")
    ck.that(sum(1 for p in c if ck.role(p) == "C" and p.length) == 3,
            "3 client data segments")
    check_shape = close_shape(c, ck.role)
    ck.that(check_shape[1] == ["C:F.", "S:.", "S:F.", "C:."],
            f"client-first four-segment close {' '.join(check_shape[1])}")
    return ck, Result(
        "Connection established and 3 request/response rounds exchanged before tcpdump "
        "starts; then 3 more rounds and a client-first close (server waits 300 ms after EOF). "
        "Capture point: client-side veth (c0), started mid-connection.",
        [conn(t, cp, 1, "client", "fin", "TIME_WAIT", "CLOSED", "none",
              rounds_before_capture=3, rounds_in_capture=3)])


@scenario(11, "ipv6_client_close")
def s_ipv6(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx, v6=True)
    cp = port(idx)
    _, _, ck = simple_client_close(idx, path, t)
    check_four_way(ck, "C")
    ck.that(all("IP6" in p.raw for p in ck.pkts), "all TCP packets are IPv6")
    return ck, Result(
        "As client_close, over IPv6 (fd00::/8 ULA addresses, nodad). Capture point: "
        "client-side veth (c0). Neighbour discovery frames may precede the handshake.",
        [conn(t, cp, 1, "client", "fin", "TIME_WAIT", "CLOSED", "complete", close_segments=4)])


@scenario(12, "vlan_client_close")
def s_vlan(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx, relay="vlan")
    t.cap_ns, t.cap_if = NS_M, "t0"
    cp = port(idx)
    _, _, ck = simple_client_close(idx, path, t)
    check_four_way(ck, "C")
    _, eout = read_pcap(path, ["-e"])
    tcp_lines = [ln for ln in eout.splitlines() if "Flags [" in ln]
    ck.that(all("vlan 100" in ln for ln in tcp_lines) and bool(tcp_lines),
            f"all {len(tcp_lines)} TCP frames carry 802.1Q tag VLAN 100 (tcpdump -e)")
    return ck, Result(
        "As client_close, over an 802.1Q trunk tagged with VLAN ID 100. This kernel has no "
        "8021q module, so the VLAN is done by the relay in namespace tfa-m: client c0 -- m0 "
        "[relay pushes/pops tag] t0 == t1 [relay] m1 -- s0 server; both directions are "
        "tagged on the t0/t1 trunk. Capture point: trunk veth t0 (in tfa-m).",
        [conn(t, cp, 1, "client", "fin", "TIME_WAIT", "CLOSED", "complete", vlan_id=100)])


@scenario(13, "pcapng_two_ifaces", "pcapng_two_ifaces.pcapng")
def s_pcapng(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    lo_addr = f"10.1.{idx}.254"
    nsx(NS_C, "ip", "addr", "add", f"{lo_addr}/32", "dev", "lo")
    cp1, cp2 = port(idx), port(idx, 1)
    srv1 = Proc(NS_S, ["python3", str(PEER), "server", "p1",
                       json.dumps(t.conf([cp1], mode="passive", close_delay=0.3))], "server1")
    c2 = t.conf([cp2], mode="passive", close_delay=0.3)
    c2["saddr"] = lo_addr
    srv2 = Proc(NS_C, ["python3", str(PEER), "server", "p2", json.dumps(c2)], "server2")
    srv1.wait_event("ready")
    srv2.wait_event("ready")
    cap = Capture(NS_C, ["c0", "lo"], path, pcapng=True)
    # the two connections overlap in time, so frames of both interfaces interleave
    cli1 = Proc(NS_C, ["python3", str(PEER), "client", "p1",
                       json.dumps(t.conf([cp1], mode="active", pre_close=0.2))], "client1")
    time.sleep(0.1)
    c2c = t.conf([cp2], mode="active", pre_close=0.2)
    c2c["saddr"] = lo_addr
    cli2 = Proc(NS_C, ["python3", str(PEER), "client", "p2", json.dumps(c2c)], "client2")
    cli1.wait(10)
    cli2.wait(10)
    srv1.wait(10)
    srv2.wait(10)
    cap.stop()
    ck = pkts_of(path, t, [cp1, cp2])
    tsh = run(["tshark", "-r", str(path), "-Y", "tcp", "-T", "fields", "-e",
               "frame.interface_name", "-e", "tcp.srcport", "-e", "tcp.dstport"]).stdout
    by_if: dict[str, int] = {}
    for ln in tsh.splitlines():
        parts = ln.split("\t")
        by_if[parts[0]] = by_if.get(parts[0], 0) + 1
    ck.that(set(by_if) == {"c0", "lo"}, f"tshark: TCP frames per interface {by_if}")
    cs = ck.conns()
    ck.that(len(cs) == 2, "2 connections")
    for c in cs:
        ck.that(close_shape(c, ck.role)[1] == ["C:F.", "S:.", "S:F.", "C:."],
                f"clean client-first four-segment close on {c[0].dst}")
    return ck, Result(
        "pcapng written by dumpcap capturing two interfaces of the client namespace at once: "
        f"the veth c0 (connection to the server {t.saddr}) and loopback lo (connection to a "
        f"second server in the client namespace on {lo_addr}, an address on lo). Each "
        "connection: request/response, client close()s first, server closes 300 ms after "
        "EOF; the two connections overlap in time. Interface 0 = c0, interface 1 = lo (both "
        "Ethernet link type).",
        [conn(t, cp1, 1, "client", "fin", "TIME_WAIT", "CLOSED", "complete", interface="c0"),
         conn(t, cp2, 1, "client", "fin", "TIME_WAIT", "CLOSED", "complete", interface="lo",
              server=t.ep(lo_addr, SPORT))])


def check_final_ack_lost(ck: Check, seen_first: bool) -> None:
    c = ck.conns()[0]
    sf = [p for p in c if ck.role(p) == "S" and p.has("F")]
    ck.that(len(sf) == 2 and sf[0].seq == sf[1].seq,
            f"server FIN seen {len(sf)} times with the same sequence number")
    if sf:
        fa = [p for p in c
              if ck.role(p) == "C" and p.flags == "." and p.ack == (sf[0].seq or 0) + 1]
        if seen_first:
            ck.that(len(fa) == 2 and c.index(fa[0]) < c.index(sf[1]) < c.index(fa[1]),
                    "client's final ACK seen, then the retransmitted server FIN, then the "
                    "client (TIME_WAIT) ACKs again")
        else:
            ck.that(len(fa) == 1 and c.index(fa[0]) > c.index(sf[1]),
                    "client's first final ACK absent (dropped before the capture point); one "
                    "ACK after the retransmitted FIN")
        if len(sf) == 2:
            ck.facts.append(f"FIN retransmitted after {sf[1].t - sf[0].t:.3f} s")
    ck.that(not any(p.has("R") for p in c), "no RST")


@scenario(14, "final_ack_lost_after_capture")
def s_fal_after(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    nsx(NS_S, "nft", "-f", "-", input=nft_final_ack("server_input", t.caddr))
    simple_client_close(idx, path, t, close_delay=0.3)
    ck = pkts_of(path, t, [cp])
    check_final_ack_lost(ck, True)
    ck.facts.append(f"server nft drop counter: {nft_counters(NS_S)}")
    return ck, Result(
        "Client close()s first; server closes 300 ms after EOF. nftables in the server's "
        "INPUT drops the first pure ACK from the client after the client's FIN, i.e. the "
        "client's final ACK of the server's FIN. The capture point (client-side veth c0) is "
        "before the loss, so the lost ACK is in the capture. The server (LAST_ACK) "
        "retransmits its FIN after its RTO; the client, in TIME_WAIT, ACKs it again and the "
        "server goes CLOSED.",
        [conn(t, cp, 1, "client", "fin", "TIME_WAIT", "CLOSED", "complete", final_ack_seen=True,
              final_ack_lost=True, loss_position="after_capture_point", fin_retransmits=1)])


@scenario(15, "final_ack_lost_before_capture")
def s_fal_before(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    nsx(NS_C, "nft", "-f", "-", input=nft_final_ack("client_output", t.caddr))
    simple_client_close(idx, path, t, close_delay=0.3)
    ck = pkts_of(path, t, [cp])
    check_final_ack_lost(ck, False)
    ck.facts.append(f"client nft drop counter: {nft_counters(NS_C)}")
    return ck, Result(
        "As final_ack_lost_after_capture, but the client's final ACK is dropped in the "
        "client's own OUTPUT hook, before the capture point (client-side veth c0): the "
        "capture shows the server FIN twice and only the second final ACK.",
        [conn(t, cp, 1, "client", "fin", "TIME_WAIT", "CLOSED", "complete", final_ack_seen=False,
              final_ack_lost=True, loss_position="before_capture_point", fin_retransmits=1)])


@scenario(16, "fin_never_acked")
def s_fin_never_acked(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    sysctl(NS_C, net__ipv4__tcp_orphan_retries=2)
    nsx(NS_S, "nft", "-f", "-", input=f"""table inet tfa {{
  set dead {{ type ipv4_addr . inet_service; flags dynamic; }}
  chain input {{ type filter hook input priority 0; policy accept;
    ip saddr {t.caddr} tcp flags & fin == fin add @dead {{ ip saddr . tcp sport }}
    ip saddr . tcp sport @dead counter drop
  }}
}}
""")
    srv, _, _ = standard(t, path, [cp], {"mode": "never_close", "hold": 20},
                         {"mode": "active"}, hold_server=20, after_client=4.5)
    ck = pkts_of(path, t, [cp])
    c = ck.conns()[0]
    cf = [p for p in c if ck.role(p) == "C" and p.has("F")]
    ck.that(len(cf) >= 3 and len({p.seq for p in cf}) == 1,
            f"client FIN sent {len(cf)} times, same sequence number")
    gaps = [round(b.t - a.t, 2) for a, b in pairwise(cf)]
    ck.that(len(gaps) >= 3 and all(b > a * 1.5 for a, b in pairwise(gaps[1:])),
            f"retransmission gaps {gaps} s (a tail-loss probe, then RTO doubling)")
    first_fin = c.index(cf[0]) if cf else 0
    ck.that(not any(ck.role(p) == "S" for p in c[first_fin:]), "nothing from the server after "
            "the client's FIN")
    st = srv.ev("state_at_release")
    return ck, Result(
        "Client close()s after a request/response; nftables in the server's INPUT drops "
        "every segment from the client from its FIN on, so the server never sees the FIN and "
        "never answers (server app keeps the socket ESTABLISHED). The orphaned client "
        "retransmits its FIN with exponential backoff; net.ipv4.tcp_orphan_retries=2 in the "
        "client namespace makes it give up silently (no RST) after the last retransmission. "
        f"Capture point: client-side veth (c0); capture ends ~4.5 s after close(). Server "
        f"socket state when released after the capture: {st[0]['state'] if st else '?'}.",
        [conn(t, cp, 1, "client", "unanswered", "FIN_WAIT_1", "ESTABLISHED", "complete",
              fin_retransmits=len(cf) - 1, client_gives_up_silently=True,
              client_state_after_give_up="CLOSED")],
        {"sysctl": {"client": {"net.ipv4.tcp_orphan_retries": 2}}})


@scenario(17, "data_after_close")
def s_data_after_close(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    _, cli, _ = standard(t, path, [cp], {"mode": "close_then_ignore"}, {"mode": "keep_sending"})
    ck = pkts_of(path, t, [cp])
    c = ck.conns()[0]
    who, _ = close_shape(c, ck.role)
    ck.that(who == "S", "server FIN first")
    sf = next((i for i, p in enumerate(c) if p.has("F")), 0)
    cd = [p for p in c[sf:] if ck.role(p) == "C" and p.length > 0]
    ck.that(len(cd) >= 1, "client sends data after the server's FIN")
    rs = [p for p in c if ck.role(p) == "S" and p.has("R")]
    ck.that(len(rs) == 1 and bool(cd) and c.index(rs[0]) > c.index(cd[0]),
            "server answers the data with RST")
    errs = [e.get("err") for e in cli.ev("error")]
    return ck, Result(
        "Server answers the request and close()s (full close, nothing unread). The client "
        "reads EOF but keeps sending: the server's closed socket answers the data with RST. "
        f"Client send() results after the RST: {errs}. Capture point: client-side veth (c0). "
        "No fault injected.",
        [conn(t, cp, 1, "server", "fin_rst", "CLOSED", "CLOSED", "complete",
              rst_sender="server", rst_reason="data_after_close")])


@scenario(18, "rst_no_state")
def s_rst_no_state(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    sysctl(NS_C, net__ipv4__tcp_max_tw_buckets=0)
    nsx(NS_S, "nft", "-f", "-", input=nft_final_ack("server_input", t.caddr))
    _, cli, ck = simple_client_close(idx, path, t, close_delay=0.3,
                                     copt={"shutdown_then_wait": True, "hold": 0.6})
    c = ck.conns()[0]
    sf = [p for p in c if ck.role(p) == "S" and p.has("F")]
    ck.that(len(sf) == 2, f"server FIN seen {len(sf)} times")
    rs = [p for p in c if ck.role(p) == "C" and p.has("R")]
    ck.that(len(rs) == 1 and len(sf) == 2 and c.index(rs[0]) > c.index(sf[1]),
            "client answers the retransmitted FIN with RST")
    fa = [p for p in c if ck.role(p) == "C" and p.flags == "." and sf and
          p.ack == (sf[0].seq or 0) + 1]
    ck.that(len(fa) == 1, "client's (lost) final ACK is in the capture once")
    st = cli.ev("state")
    return ck, Result(
        "Client shutdown(SHUT_WR)s first and waits for EOF; the server closes 300 ms after "
        "EOF. net.ipv4.tcp_max_tw_buckets=0 in the client namespace: when the client ACKs "
        "the server's FIN it cannot enter TIME_WAIT and drops its state at once "
        f"(TCP_INFO state right after: {st[0]['state'] if st else '?'}). The final ACK is "
        "dropped in the server's INPUT (after the capture point, client-side veth c0), the "
        "server retransmits its FIN, and the stateless client answers with RST.",
        [conn(t, cp, 1, "client", "fin_rst", "CLOSED", "CLOSED", "complete",
              rst_sender="client", rst_reason="no_state_time_wait_skipped",
              final_ack_seen=True, final_ack_lost=True, fin_retransmits=1)],
        {"sysctl": {"client": {"net.ipv4.tcp_max_tw_buckets": 0}}})


@scenario(19, "close_wait_long")
def s_close_wait_long(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    _, _, ck = simple_client_close(idx, path, t, close_delay=3.0)
    check_four_way(ck, "C")
    c = ck.conns()[0]
    fins = [p for p in c if p.has("F")]
    if len(fins) == 2:
        ck.that(fins[1].t - fins[0].t > 2.9,
                f"server FIN {fins[1].t - fins[0].t:.2f} s after the client's FIN")
    return ck, Result(
        "Client close()s first; the server app reads EOF and keeps the socket in CLOSE_WAIT "
        "for 3 s before close(). Capture point: client-side veth (c0). No fault injected.",
        [conn(t, cp, 1, "client", "fin", "TIME_WAIT", "CLOSED", "complete",
              server_close_wait_s=3.0)])


@scenario(20, "fin_wait_2_timeout")
def s_fw2_timeout(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    sysctl(NS_C, net__ipv4__tcp_fin_timeout=2)
    _, _, ck = simple_client_close(idx, path, t, close_delay=5.0)
    c = ck.conns()[0]
    _, shape = close_shape(c, ck.role)
    ck.that(shape == ["C:F.", "S:.", "S:F.", "C:R"],
            f"client FIN, server ACK, server FIN ~5 s later, client RST: {' '.join(shape)}")
    fins = [p for p in c if p.has("F")]
    if len(fins) == 2:
        ck.facts.append(f"server FIN {fins[1].t - fins[0].t:.2f} s after the client's")
    return ck, Result(
        "net.ipv4.tcp_fin_timeout=2 in the client namespace. Client close()s first (orphaned "
        "socket), the server ACKs the FIN but its app waits 5 s before close(). The client's "
        "FIN_WAIT_2 expires after 2 s; the server's FIN then finds no state and draws an RST. "
        "Capture point: client-side veth (c0).",
        [conn(t, cp, 1, "client", "fin_rst", "CLOSED", "CLOSED", "complete",
              rst_sender="client", rst_reason="no_state_fin_wait_2_timeout",
              fin_wait_2_timeout_s=2, server_close_delay_s=5.0)],
        {"sysctl": {"client": {"net.ipv4.tcp_fin_timeout": 2}}})


@scenario(21, "syn_backlog_drop")
def s_backlog(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cps = [port(idx, k) for k in range(4)]
    _, cli, _ = standard(t, path, cps, {"backlog": 1, "hold": 15},
                           {"mode": "backlog", "connect_timeout": 4.0, "hold": 1.2},
                           hold_server=15)
    ck = pkts_of(path, t, cps)
    res = {e["port"]: "connected" for e in cli.ev("connected")}
    res.update({e["port"]: e["err"] for e in cli.ev("error")})
    ok_ports = [p for p in cps if res.get(p) == "connected"]
    bad_ports = [p for p in cps if res.get(p) != "connected"]
    ck.that(len(ok_ports) == 2, f"connect() results: {res}")
    conns_out = []
    for c in ck.conns():
        cport = c[0].sport if ck.role(c[0]) == "C" else c[0].dport
        syns = sum(p.flags == "S" for p in c)
        if cport in ok_ports:
            ck.that(handshake_of(c) == "complete" and close_shape(c, ck.role)[1] == ["C:F.", "S:."],
                    f"port {cport}: handshake, client FIN ACKed by the server kernel, no "
                    "server FIN (never accepted)")
            conns_out.append(conn(t, cport, 1, "client", "fin", "FIN_WAIT_2", "CLOSE_WAIT",
                                  "complete", accepted_by_app=False, close_complete=False))
        else:
            ck.that(syns >= 3 and all(p.flags == "S" for p in c),
                    f"port {cport}: {syns} SYNs, no answer")
            gaps = [round(b.t - a.t, 1) for a, b in pairwise(c)]
            ck.facts.append(f"port {cport} SYN retransmission gaps {gaps} s")
            conns_out.append(conn(t, cport, 1, "none", "unanswered", "SYN_SENT", "CLOSED",
                                  "partial", syn_retransmits=syns - 1,
                                  client_state_after_give_up="CLOSED"))
    linear = nsx(NS_C, "sysctl", "-n", "net.ipv4.tcp_syn_linear_timeouts",
                 check=False).stdout.strip()
    return ck, Result(
        "Server listen(1)s and never accept()s. 4 clients connect 100 ms apart: the first two "
        "complete the handshake into the accept queue (Linux admits backlog+1); the accept "
        "queue is then full and the SYNs of the other two are dropped and retransmitted "
        f"(every 1 s here: this kernel's net.ipv4.tcp_syn_linear_timeouts={linear or '?'} "
        "makes the first SYN retransmissions linear instead of 1 s, 2 s, 4 s); the clients "
        "give up after 4 s (no packet). The two connected clients close() after 1.2 s: the "
        "server kernel ACKs their FINs (CLOSE_WAIT, never seen by the app). Capture point: "
        "client-side veth (c0); ends before the server process exits. Unconnected ports: "
        f"{bad_ports}.",
        conns_out)


@scenario(22, "stale_duplicate")
def s_stale(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx, relay="plain", hold={"marker": b"OLD-2".hex(),
                                        "release_after": b"NEW-1".hex()})
    t.cap_ns, t.cap_if = NS_S, "s0"
    cp = port(idx)
    standard(t, path, [cp], {"mode": "echo_active", "lines": 2, "incarnations": 2},
             {"mode": "stale"})
    assert t.relay_proc
    held = t.relay_proc.ev("held")
    rel = t.relay_proc.ev("released")
    ck = pkts_of(path, t, [cp])
    cs = ck.conns()
    ck.that(len(cs) == 2, f"{len(cs)} incarnations of one 4-tuple")
    shapes = [" ".join(close_shape(c, ck.role)[1]) for c in cs]
    ck.that(all(sh in ("S:F. C:F. S:.", "S:F. C:. C:F. S:.") for sh in shapes),
            f"server-first close in each incarnation: {shapes}")
    ck.that(bool(held) and bool(rel), "relay held the first copy of OLD-2 and released it "
            "after NEW-1")
    # find the OLD-2 copies by payload (tcpdump -A)
    a_out = run(["tcpdump", "-tt", "-nn", "-S", "-A", "-r", str(path)]).stdout
    blocks = re.split(r"\n(?=\d+\.\d+ IP)", a_out)
    old2_t = [float(b.split()[0]) for b in blocks if "OLD-2" in b and "echo" not in b]
    old2 = [p for p in ck.pkts if any(abs(p.t - x) < 1e-6 for x in old2_t)]
    ck.that(len(old2) == 2 and old2[0].seq == old2[1].seq,
            f"OLD-2 data segment seen {len(old2)} times with the same sequence number")
    if len(cs) == 2 and len(old2) == 2:
        inc2_syn = cs[1][0]
        isn_after_time_wait(ck, cs, "S")
        ck.that(old2[0].t < cs[0][-1].t and old2[1].t > inc2_syn.t,
                "first copy (the retransmission) inside incarnation 1, the delayed original "
                "after incarnation 2's SYN")
        after = [p for p in ck.pkts if p.t > old2[1].t and ck.role(p) == "S"]
        if after:
            m = re.search(r"sack 1 \{(\d+):(\d+)\}", after[0].raw)
            dsack = (m is not None and old2[1].seq is not None
                     and int(m.group(1)) == old2[1].seq)
            ck.facts.append(f"server answers the stale segment with [{after[0].flags}] ack "
                            f"{after[0].ack} (incarnation 2's rcv_nxt)"
                            + (", carrying a D-SACK block for the stale range" if dsack else ""))
    return ck, Result(
        "Two incarnations of one 4-tuple through a user-space relay (namespace tfa-m: "
        "c0 -- m0 [relay] m1 -- s0). Incarnation 1: client sends OLD-1 and OLD-2; the relay "
        "holds the first transmission of OLD-2 (the client's retransmission gets through), "
        "the server closes first (TIME_WAIT) and the client closes on EOF. 200 ms later the "
        "client reconnects from the same port (SO_REUSEADDR); the server's TIME_WAIT accepts "
        "the SYN (incarnation 2). Right after forwarding NEW-1, the relay delivers the held "
        "original OLD-2 segment: a stale duplicate of incarnation 1 arriving inside "
        "incarnation 2 (old sequence/ack numbers and an older TSval). Capture point: "
        "server-side veth (s0 in tfa-s), after the relay, so the stale segment is captured "
        "at its late arrival.",
        [conn(t, cp, 1, "server", "fin", "CLOSED", "CLOSED", "complete",
              server_time_wait_reused=True),
         conn(t, cp, 2, "server", "fin", "CLOSED", "TIME_WAIT", "complete",
              stale_segment_from_incarnation=1, stale_payload="OLD-2 incarnation 1")],
        {"relay_events": held + rel})


@scenario(23, "tuple_reuse_server_tw")
def s_reuse_srv(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    standard(t, path, [cp], {"mode": "active", "incarnations": 3},
             {"mode": "reuse", "closer": "server", "incarnations": 3, "gap": 0.2})
    ck = pkts_of(path, t, [cp])
    cs = ck.conns()
    ck.that(len(cs) == 3, f"{len(cs)} incarnations of the same 4-tuple")
    ck.that(all(close_shape(c, ck.role)[0] == "S" for c in cs), "server closes first in each")
    ck.that(all(sum(p.flags == "S" for p in c) == 1 for c in cs), "one SYN each")
    isn_after_time_wait(ck, cs, "S")
    return ck, Result(
        "Server closes first each time (server holds TIME_WAIT); the client closes on EOF, "
        "waits 200 ms and reconnects from the same port (SO_REUSEADDR). The server accepts the "
        "new SYN in TIME_WAIT (its ISN/timestamp is newer), 3 incarnations within ~1 s. "
        "Capture point: client-side veth (c0).",
        [conn(t, cp, i, "server", "fin", "CLOSED", "TIME_WAIT" if i == 3 else "CLOSED",
              "complete", server_time_wait_reused=(i < 3)) for i in (1, 2, 3)])


@scenario(24, "fin_with_data")
def s_fin_data(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    _, _, ck = simple_client_close(idx, path, t, copt={"mode": "fin_on_data"})
    c = ck.conns()[0]
    cf = [p for p in c if ck.role(p) == "C" and p.has("F")]
    ck.that(len(cf) == 1 and cf[0].length == 4, "client FIN carried on its 4-byte data segment")
    ck.that(close_shape(c, ck.role)[1] == ["C:FP./4", "S:.", "S:F.", "C:."]
            or close_shape(c, ck.role)[1] == ["C:FP.", "S:.", "S:F.", "C:."],
            f"close {' '.join(close_shape(c, ck.role)[1])}")
    return ck, Result(
        "Client corks the socket (TCP_CORK), writes 'bye\\n' and close()s: the FIN rides on "
        "the data segment (flags FIN+PSH+ACK, 4 bytes). The server reads data+EOF and "
        "closes 300 ms later. Capture point: client-side veth (c0).",
        [conn(t, cp, 1, "client", "fin", "TIME_WAIT", "CLOSED", "complete",
              fin_on_data_segment=True)])


@scenario(25, "client_close_3seg")
def s_cc3(idx: int, path: Path) -> tuple[Check, Result]:
    t = setup(idx)
    cp = port(idx)
    _, _, ck = simple_client_close(idx, path, t, close_delay=0.0)
    c = ck.conns()[0]
    ck.that(close_shape(c, ck.role)[1] == ["C:F.", "S:F.", "C:."],
            f"three-segment close {' '.join(close_shape(c, ck.role)[1])}")
    return ck, Result(
        "Client close()s first; the server close()s immediately on EOF, before its delayed "
        "ACK fires, so its FIN carries the ACK of the client's FIN (three segments). Capture "
        "point: client-side veth (c0).",
        [conn(t, cp, 1, "client", "fin", "TIME_WAIT", "CLOSED", "complete", close_segments=3)])


# --------------------------------------------------------------------------- driver

RETRIES: dict[str, int] = {}


def run_one(name: str) -> dict[str, Any]:
    idx, fname, fn = SCENARIOS[name]
    # capture into a scratch file; only a finished, checked capture replaces captures/NAME
    tmpdir = HERE / ".tmp"
    tmpdir.mkdir(exist_ok=True)
    path = tmpdir / fname
    last_err = ""
    attempts = RETRIES.get(name, 3)
    for attempt in range(1, attempts + 1):
        t0 = time.time()
        try:
            ck, res = fn(idx, path)
        except Exception as e:  # setup/peer failure: retry
            last_err = f"{e.__class__.__name__}: {e}"
            log(f"  {name}: attempt {attempt} error: {last_err}")
            if os.environ.get("TFA_DEBUG"):
                import traceback
                traceback.print_exc()
            cleanup()
            continue
        finally:
            cleanup()
        ok = not ck.fail
        log(f"  {name}: attempt {attempt} {'OK' if ok else 'FAILED ' + '; '.join(ck.fail)} "
            f"({time.time() - t0:.1f} s)")
        if ok or attempt == attempts:
            conns = res.connections
            size = path.stat().st_size
            os.replace(path, HERE / fname)
            with contextlib.suppress(OSError):
                tmpdir.rmdir()
            return {
                "file": fname,
                "scenario": name,
                "description": res.description + " Verified with tcpdump -nr: "
                + "; ".join(ck.facts) + "." + ("" if ok else " NOT verified: "
                                                + "; ".join(ck.fail) + "."),
                "connections": len(conns),
                "per_connection": conns,
                "verified": {"ok": ok, "attempts": attempt, "tcp_packets": len(ck.pkts),
                             "bytes": size, "wire": ck.wire()},
                **res.extra,
            }
    raise RuntimeError(f"{name}: all attempts failed: {last_err}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these scenarios")
    ap.add_argument("--list", action="store_true", help="list scenarios and exit")
    args = ap.parse_args()
    order = sorted(SCENARIOS, key=lambda n: SCENARIOS[n][0])
    if args.list:
        for n in order:
            print(f"{SCENARIOS[n][0]:3d}  {n:32s} {SCENARIOS[n][1]}")
        return 0
    if os.geteuid() != 0:
        log("must run as root (network namespaces, nftables, tcpdump)")
        return 2
    names = args.only or order
    bad = [n for n in names if n not in SCENARIOS]
    if bad:
        log(f"unknown scenario(s): {bad}; see --list")
        return 2
    atexit.register(cleanup)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    delete_namespaces(stale=True)
    if not HAVE_ETHTOOL:
        log("note: ethtool not found; offloads stay on (payloads are small, so segments on the "
            "wire still match)")
    manifest: list[dict[str, Any]] = []
    if MANIFEST.exists():
        manifest = json.loads(MANIFEST.read_text())
    by_file = {m["file"]: m for m in manifest}
    failed = []
    t_start = time.time()
    try:
        for n in sorted(names, key=lambda n: SCENARIOS[n][0]):
            log(f"[{SCENARIOS[n][0]}] {n}")
            try:
                entry = run_one(n)
            except RuntimeError as e:
                log(f"  giving up: {e}")
                failed.append(n)
                continue
            by_file[entry["file"]] = entry
            if not entry["verified"]["ok"]:
                failed.append(n)
    finally:
        cleanup()
        shutil.rmtree(HERE / ".tmp", ignore_errors=True)  # partial captures of an interrupted run
        ordered = sorted(by_file.values(),
                         key=lambda m: SCENARIOS[m["scenario"]][0] if m["scenario"] in SCENARIOS
                         else 999)
        MANIFEST.write_text(json.dumps(ordered, indent=2) + "\n")
    log(f"done in {time.time() - t_start:.0f} s; failed/unverified: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
