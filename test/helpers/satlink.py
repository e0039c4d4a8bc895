#!/usr/bin/env python3
"""A satellite-like link between two network namespaces, for kernels without sch_netem.

Two TUN devices, one in each namespace; every IP packet one side sends is read here, serialized
at the link rate, held for the one-way delay, dropped at random with the loss probability (or
always while the link is down), then written into the other side. TCP on both ends sees a real
long, lossy, narrow path: its own retransmissions, congestion control and stalls.

Commands on stdin, one per line, each answered with one JSON line on stdout:
  down | up | stats | set delay_ms=N loss=P rate_kbit=N
Started with: satlink.py HUB_NS BOX_NS HUB_DEV BOX_DEV DELAY_MS LOSS RATE_KBIT LIMIT_BYTES SEED
"""
import collections
import ctypes
import fcntl
import json
import os
import random
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)


def enter(ns):
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {ns}: {os.strerror(err)}")
    finally:
        os.close(fd)


def open_tun(name):
    # the device belongs to the namespace this process is in when it opens /dev/net/tun; it is
    # not persistent, so it disappears with this process: nothing to clean up after a crash
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Direction:
    def __init__(self, name):
        self.name = name
        self.queue = collections.deque()  # (deliver_at, packet): constant delay keeps it FIFO
        self.busy_until = 0.0
        # carried = what used the link's time (delivered or lost on the way); a packet the
        # modem's full buffer refused, or sent while the link was down, never did
        self.stats = dict(offered_bytes=0, offered_packets=0, carried_bytes=0, delivered_bytes=0, delivered_packets=0,
                          lost_packets=0, down_packets=0, overflow_packets=0)


def main():
    hub_ns, box_ns, hub_dev, box_dev = sys.argv[1:5]
    cfg = dict(delay_ms=float(sys.argv[5]), loss=float(sys.argv[6]), rate_kbit=float(sys.argv[7]),
               limit_bytes=int(sys.argv[8]))
    rng = random.Random(int(sys.argv[9]))
    enter(hub_ns)
    hub = open_tun(hub_dev)
    enter(box_ns)
    box = open_tun(box_dev)
    up = True
    dirs = {hub: (Direction("hub_to_box"), box), box: (Direction("box_to_hub"), hub)}
    print(json.dumps({"ready": True}), flush=True)
    stdin = sys.stdin.fileno()
    buf = b""

    def answer(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def command(line):
        nonlocal up
        words = line.split()
        if not words:
            return
        if words[0] == "down":
            up = False
            # what was in flight is lost with the link, as on a real outage
            for d, _ in dirs.values():
                d.stats["down_packets"] += len(d.queue)
                d.queue.clear()
                d.busy_until = 0.0
            answer({"ok": "down"})
        elif words[0] == "up":
            up = True
            answer({"ok": "up"})
        elif words[0] == "stats":
            answer({d.name: d.stats for d, _ in dirs.values()} | {"up": up, **cfg})
        elif words[0] == "set":
            for w in words[1:]:
                k, v = w.split("=", 1)
                cfg[k] = type(cfg[k])(float(v)) if k != "limit_bytes" else int(v)
            answer({"ok": "set", **cfg})
        else:
            answer({"error": f"unknown command {words[0]}"})

    while True:
        now = time.monotonic()
        due = [d.queue[0][0] for d, _ in dirs.values() if d.queue]
        timeout = max(0.0, min(due) - now) if due else 1.0
        ready, _, _ = select.select([hub, box, stdin], [], [], timeout)
        for fd in ready:
            if fd == stdin:
                chunk = os.read(stdin, 4096)
                if not chunk:
                    return  # the harness went away: the link goes with it
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    command(line.decode())
                continue
            d, _ = dirs[fd]
            while True:
                try:
                    pkt = os.read(fd, 65535)
                except BlockingIOError:
                    break
                now = time.monotonic()
                d.stats["offered_bytes"] += len(pkt)
                d.stats["offered_packets"] += 1
                if not up:
                    d.stats["down_packets"] += 1
                    continue
                rate = cfg["rate_kbit"] * 1000 / 8
                start = max(now, d.busy_until)
                if (start - now) * rate + len(pkt) > cfg["limit_bytes"]:
                    d.stats["overflow_packets"] += 1  # the modem's buffer is full: tail drop
                    continue
                d.busy_until = start + len(pkt) / rate
                d.stats["carried_bytes"] += len(pkt)
                if rng.random() < cfg["loss"]:
                    d.stats["lost_packets"] += 1  # the slot on the link is used, the packet never arrives
                    continue
                d.queue.append((d.busy_until + cfg["delay_ms"] / 1000, pkt))
        now = time.monotonic()
        for d, out in dirs.values():
            while d.queue and d.queue[0][0] <= now:
                _, pkt = d.queue.popleft()
                try:
                    os.write(out, pkt)
                    d.stats["delivered_bytes"] += len(pkt)
                    d.stats["delivered_packets"] += 1
                except OSError:
                    d.stats["down_packets"] += 1


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
