# One process that pings many IPv6 peers at once, for hosts that have python3 but no fping.
# Sent to the host as `python3 -c PROGRAM COUNT INTERVAL TIMEOUT ADDR...`; prints, like
# `fping -C`, one line per peer: "ADDR : RTT_MS RTT_MS -" ("-" = no reply in time), and
# "ADDR: error while sending ping: REASON" on stderr when a send fails. Python 3.6+, stdlib only.
import os
import select
import socket
import struct
import sys
import time


def main(argv):
    count, interval, timeout = int(argv[1]), float(argv[2]), float(argv[3])
    targets = argv[4:]
    try:  # an unprivileged ICMP "ping socket" where the kernel allows it, else raw (root)
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6)
        raw = False
    except OSError:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        raw = True
    sock.setblocking(False)
    ident = os.getpid() & 0xFFFF
    gap = min(0.001, interval / max(1, len(targets)))
    start = time.monotonic() + 0.01
    plan = sorted((start + k * interval + i * gap, i * count + k)
                  for k in range(count) for i in range(len(targets)))
    sent, rtts = {}, [[None] * count for _ in targets]
    deadline = (plan[-1][0] if plan else start) + timeout
    nxt = 0
    while True:
        now = time.monotonic()
        while nxt < len(plan) and plan[nxt][0] <= now:
            seq = plan[nxt][1]
            target = targets[seq // count]
            packet = struct.pack("!BBHHH", 128, 0, 0, ident, seq & 0xFFFF) + b"fleet-probe"
            try:
                sock.sendto(packet, (target, 0))
                sent[seq] = time.monotonic()
            except OSError as exc:
                sys.stderr.write("%s: error while sending ping: %s\n" % (target, exc.strerror))
            nxt += 1
        if now >= deadline:
            break
        wake = min(plan[nxt][0] if nxt < len(plan) else deadline, deadline)
        readable, _, _ = select.select([sock], [], [], max(0.0, wake - time.monotonic()))
        while readable:
            try:
                data = sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                break
            arrived = time.monotonic()
            if len(data) < 8:
                continue
            kind, _, _, rid, seq = struct.unpack("!BBHHH", data[:8])
            if kind != 129 or (raw and rid != ident) or seq not in sent:
                continue
            if arrived - sent[seq] <= timeout and seq // count < len(targets):
                rtts[seq // count][seq % count] = arrived - sent[seq]
    for target, times in zip(targets, rtts):
        sys.stdout.write("%s : %s\n" % (target, " ".join(
            "-" if t is None else "%.3f" % (t * 1000.0) for t in times)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
