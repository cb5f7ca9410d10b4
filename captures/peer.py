#!/usr/bin/env python3
"""One endpoint of a capture scenario; run inside a network namespace by make_captures.py.

    ip netns exec NS python3 captures/peer.py ROLE SCENARIO CONF_JSON

ROLE is ``client`` or ``server``.  CONF_JSON carries the addresses and ports
(keys: family, saddr, sport, caddr, cports, plus scenario options).  The peer
prints one JSON object per line on stdout ("ev" key) so the orchestrator can
synchronise ("ready", "mid") and record what the sockets saw (errors, TCP
states polled with TCP_INFO).  A server waits for its stdin to close (or a
bounded timeout) before exiting when the scenario needs its sockets kept open.

Every wait is bounded; the whole process never lives longer than conf["life"]
seconds (SIGALRM).
"""

from __future__ import annotations

import json
import select
import signal
import socket
import sys
import threading
import time
from typing import Any

TCP_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECEIVED", 4: "FIN_WAIT_1", 5: "FIN_WAIT_2",
    6: "TIME_WAIT", 7: "CLOSED", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
}

T0 = time.time()
_lock = threading.Lock()


def emit(ev: str, **kw: Any) -> None:
    kw = {"ev": ev, "t": round(time.time() - T0, 4), **kw}
    with _lock:
        print(json.dumps(kw), flush=True)


def tcp_state(s: socket.socket) -> str:
    try:
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    except OSError:
        return "?"
    return TCP_STATES.get(info[0], str(info[0]))


def poll_states(s: socket.socket, until: set[str], limit: float) -> list[str]:
    """Sample the socket's TCP state every 0.5 ms; return the distinct sequence."""
    seq: list[str] = []
    end = time.time() + limit
    while time.time() < end:
        st = tcp_state(s)
        if not seq or seq[-1] != st:
            seq.append(st)
        if st in until:
            break
        time.sleep(0.0005)
    return seq


def family(conf: dict[str, Any]) -> socket.AddressFamily:
    return socket.AF_INET6 if conf.get("family") == 6 else socket.AF_INET


def listener(conf: dict[str, Any], backlog: int = 8) -> socket.socket:
    ls = socket.socket(family(conf), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((conf["saddr"], conf["sport"]))
    ls.listen(backlog)
    ls.settimeout(conf.get("accept_timeout", 15))
    return ls


def accept(ls: socket.socket) -> socket.socket:
    c, _ = ls.accept()
    c.settimeout(15)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def connect(conf: dict[str, Any], port: int, reuse: bool = False,
            timeout: float = 5.0, dport: int | None = None) -> socket.socket:
    s = socket.socket(family(conf), socket.SOCK_STREAM)
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.bind((conf["caddr"], port))
    s.settimeout(timeout)
    s.connect((conf["saddr"], dport or conf["sport"]))
    s.settimeout(15)
    return s


def recv_line(s: socket.socket, limit: int = 4096) -> bytes:
    buf = b""
    while not buf.endswith(b"\n") and len(buf) < limit:
        d = s.recv(limit)
        if not d:
            break
        buf += d
    return buf


def recv_eof(s: socket.socket, max_reads: int = 1000) -> bytes:
    buf = b""
    for _ in range(max_reads):
        d = s.recv(65536)
        if not d:
            return buf
        buf += d
    raise RuntimeError("no EOF")


def wait_release(limit: float) -> None:
    """Block until stdin closes or gets a line (the orchestrator's release), bounded."""
    r, _, _ = select.select([sys.stdin], [], [], limit)
    if r:
        sys.stdin.readline()


def sleep_until(t: float) -> None:
    while True:
        d = t - time.time()
        if d <= 0:
            return
        time.sleep(d - 0.002 if d > 0.003 else 0)


def linger0(s: socket.socket) -> None:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


# --------------------------------------------------------------------------- servers

def srv_request_response(c: socket.socket, reply: bytes = b"world\n") -> bytes:
    req = recv_line(c)
    c.sendall(reply)
    return req


def server(scen: str, conf: dict[str, Any]) -> None:
    o = conf.get("opt", {})
    backlog = o.get("backlog", 8)
    ls = listener(conf, backlog)
    emit("ready")
    if scen == "syn_backlog_drop":
        # never accept(); keep the listener until released
        wait_release(o.get("hold", 12))
        return
    for inc in range(o.get("incarnations", 1)):
        c = accept(ls)
        emit("accepted", inc=inc + 1, peer=str(c.getpeername()[:2]))
        server_conn(scen, conf, o, c, inc + 1)
    if o.get("hold_after"):
        wait_release(o["hold_after"])


def server_conn(scen: str, conf: dict[str, Any], o: dict[str, Any],
                c: socket.socket, inc: int) -> None:
    mode = o.get("mode", "passive")
    if mode == "passive":
        # client closes first; read EOF, optionally wait, then close
        srv_request_response(c)
        rest = recv_eof(c)
        emit("eof", extra=len(rest), state=tcp_state(c))
        time.sleep(o.get("close_delay", 0.3))
        c.close()
        emit("closed")
    elif mode == "half_close":
        req = recv_eof(c)
        emit("eof", req=req.decode(errors="replace"), state=tcp_state(c))
        for i in range(o.get("chunks", 5)):
            c.sendall(b"chunk %d after your FIN\n" % i)
            time.sleep(0.05)
        c.close()
        emit("closed")
    elif mode == "active":
        # server closes first
        srv_request_response(c)
        time.sleep(0.1)
        c.close()
        emit("closed")
    elif mode == "simultaneous":
        recv_line(c)
        t = time.time() + 0.3
        c.sendall(b"%.6f\n" % t)
        sleep_until(t)
        c.shutdown(socket.SHUT_WR)
        emit("fin_sent", at=time.time())
        states = poll_states(c, {"CLOSED", "TIME_WAIT"}, 2.0)
        emit("states", states=states)
        c.close()
    elif mode == "wait_rst":
        # peer aborts; we just observe
        srv_request_response(c)
        try:
            d = c.recv(100)
            emit("recv", data=len(d))
        except OSError as e:
            emit("error", err=e.__class__.__name__, errno=e.errno)
        c.close()
    elif mode == "partial_read":
        d = c.recv(o.get("read", 10))
        emit("read", n=len(d))
        time.sleep(0.2)  # let the rest of the request arrive and sit unread
        c.close()
        emit("closed")
    elif mode == "echo":
        for _ in range(1000):
            d = recv_line(c)
            if not d:
                break
            c.sendall(b"echo " + d)
        emit("eof", state=tcp_state(c))
        time.sleep(o.get("close_delay", 0.3))
        c.close()
        emit("closed")
    elif mode == "close_then_ignore":
        # data_after_close: answer, close() with an empty receive queue
        srv_request_response(c)
        time.sleep(0.1)
        c.close()
        emit("closed")
    elif mode == "never_close":
        srv_request_response(c)
        wait_release(o.get("hold", 10))
        emit("state_at_release", state=tcp_state(c))
        linger0(c)  # capture has stopped by now; don't let the close leak into it
        c.close()
    elif mode == "echo_active":
        # stale_duplicate: echo N lines, then the server closes first
        for _ in range(o.get("lines", 2)):
            d = recv_line(c)
            if not d:
                break
            c.sendall(b"echo " + d)
        time.sleep(0.05)
        c.close()
        emit("closed")
    else:
        raise SystemExit(f"unknown server mode {mode}")


# --------------------------------------------------------------------------- clients

def client(scen: str, conf: dict[str, Any]) -> None:
    o = conf.get("opt", {})
    mode = o.get("mode", "active")
    port = conf["cports"][0]
    if mode == "active":
        # client closes first, after a request/response
        s = connect(conf, port)
        s.sendall(o.get("request", "hello\n").encode())
        recv_line(s)
        time.sleep(o.get("pre_close", 0.1))
        if o.get("shutdown_then_wait"):
            s.shutdown(socket.SHUT_WR)
            try:
                rest = recv_eof(s)
                emit("eof", extra=len(rest))
            except OSError as e:
                emit("error", err=e.__class__.__name__, errno=e.errno)
            emit("state", state=tcp_state(s))
            time.sleep(o.get("hold", 0.0))
        s.close()
        emit("closed")
    elif mode == "fin_on_data":
        s = connect(conf, port)
        s.sendall(b"hello\n")
        recv_line(s)
        time.sleep(0.1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        s.sendall(b"bye\n")
        s.close()  # corked data still queued: FIN rides on the data segment
        emit("closed")
    elif mode == "passive":
        # server closes first; close after EOF (+ optional delay)
        s = connect(conf, port)
        s.sendall(b"hello\n")
        data = recv_eof(s)
        emit("eof", got=len(data), state=tcp_state(s))
        if o.get("close_delay"):
            time.sleep(o["close_delay"])
        s.close()
        emit("closed")
    elif mode == "half_close":
        s = connect(conf, port)
        s.sendall(b"request\n")
        s.shutdown(socket.SHUT_WR)
        data = recv_eof(s)
        emit("eof", got=data.count(b"\n"), state=tcp_state(s))
        s.close()
    elif mode == "simultaneous":
        s = connect(conf, port)
        s.sendall(b"hello\n")
        t = float(recv_line(s))
        sleep_until(t)
        s.shutdown(socket.SHUT_WR)
        emit("fin_sent", at=time.time())
        states = poll_states(s, {"CLOSED", "TIME_WAIT"}, 2.0)
        emit("states", states=states)
        s.close()
    elif mode == "refused":
        for p in conf["cports"]:
            try:
                s = connect(conf, p, dport=o["dport"])
                emit("connected", port=p)
                s.close()
            except OSError as e:
                emit("error", port=p, err=e.__class__.__name__, errno=e.errno)
            time.sleep(0.2)
    elif mode == "abort":
        s = connect(conf, port)
        s.sendall(b"hello\n")
        recv_line(s)
        time.sleep(0.1)
        linger0(s)
        s.close()
        emit("closed")
    elif mode == "big_request":
        s = connect(conf, port)
        s.sendall(b"GET /" + b"x" * o.get("size", 300) + b"\n")
        try:
            d = s.recv(100)
            emit("recv", n=len(d))
        except OSError as e:
            emit("error", err=e.__class__.__name__, errno=e.errno)
        s.close()
    elif mode == "reuse":
        # same 4-tuple several times; who closes first is o["closer"]
        n = o.get("incarnations", 3)
        for inc in range(1, n + 1):
            s = None
            attempts = 0
            deadline = time.time() + o.get("connect_budget", 4.0)
            while time.time() < deadline:
                attempts += 1
                try:
                    s = connect(conf, port, reuse=True)
                    break
                except OSError as e:
                    emit("connect_error", inc=inc, err=e.__class__.__name__, errno=e.errno)
                    time.sleep(0.2)
            if s is None:
                emit("gave_up", inc=inc)
                return
            emit("connected", inc=inc, attempts=attempts)
            s.sendall(b"incarnation %d\n" % inc)
            if o.get("closer") == "client":
                recv_line(s)
                time.sleep(0.05)
                s.close()
                emit("closed", inc=inc)
                time.sleep(o.get("gap", 1.1))
            else:
                recv_eof(s)
                s.close()
                emit("closed", inc=inc)
                time.sleep(o.get("gap", 0.2))
    elif mode == "echo_mid":
        s = connect(conf, port)
        for i in range(3):
            s.sendall(b"before capture %d\n" % i)
            recv_line(s)
            time.sleep(0.05)
        emit("mid")
        wait_release(10)
        for i in range(3):
            s.sendall(b"after capture start %d\n" % i)
            recv_line(s)
            time.sleep(0.05)
        time.sleep(0.1)
        s.close()
        emit("closed")
    elif mode == "keep_sending":
        s = connect(conf, port)
        s.sendall(b"hello\n")
        recv_line(s)
        data = recv_eof(s)
        emit("eof", extra=len(data), state=tcp_state(s))
        time.sleep(0.05)
        for i in range(2):
            try:
                s.sendall(b"more data %d\n" % i)
                emit("sent", i=i)
            except OSError as e:
                emit("error", i=i, err=e.__class__.__name__, errno=e.errno)
            time.sleep(0.1)
        emit("state", state=tcp_state(s))
        s.close()
    elif mode == "backlog":
        results: dict[int, str] = {}

        def one(p: int) -> None:
            try:
                s = connect(conf, p, timeout=o.get("connect_timeout", 4.0))
                results[p] = "connected"
                emit("connected", port=p)
                time.sleep(o.get("hold", 1.2))
                s.close()
                emit("closed", port=p)
            except OSError as e:
                results[p] = e.__class__.__name__
                emit("error", port=p, err=e.__class__.__name__, errno=e.errno)

        threads = []
        for p in conf["cports"]:
            th = threading.Thread(target=one, args=(p,), daemon=True)
            th.start()
            threads.append(th)
            time.sleep(0.1)
        for th in threads:
            th.join(10)
    elif mode == "stale":
        # incarnation 1 sends OLD-1, OLD-2 (the relay holds the first copy of OLD-2);
        # server closes first; incarnation 2 on the same 4-tuple sends NEW-1, NEW-2.
        for inc, tag in ((1, b"OLD"), (2, b"NEW")):
            s = connect(conf, port, reuse=True)
            emit("connected", inc=inc)
            for i in (1, 2):
                s.sendall(tag + b"-%d incarnation %d\n" % (i, inc))
                recv_line(s)
                time.sleep(0.15 if inc == 2 else 0.02)
            recv_eof(s)
            s.close()
            emit("closed", inc=inc)
            time.sleep(0.2)
    else:
        raise SystemExit(f"unknown client mode {mode}")


def main() -> None:
    role, scen, conf = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    signal.alarm(int(conf.get("life", 30)))  # hard bound on this process's life
    try:
        (server if role == "server" else client)(scen, conf)
    except Exception as e:  # report, don't hang
        emit("exception", err=repr(e))
        sys.exit(1)
    emit("done")


if __name__ == "__main__":
    main()
