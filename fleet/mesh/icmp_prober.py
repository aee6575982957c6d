# One process that pings many peers at once, for hosts that have python3 but no fping.
# Sent to the host as `python3 -c PROGRAM COUNT INTERVAL TIMEOUT [-4] [-s SIZE] [-M] ADDR...`
# (IPv6 unless -4; SIZE data bytes; -M: don't fragment, as ping -M do); prints, like
# `fping -C`, one line per peer: "ADDR : RTT_MS RTT_MS -" ("-" = no reply in time), and
# "ADDR: error while sending ping: REASON" on stderr when a send fails. Python 3.6+, stdlib only.
import os
import select
import socket
import struct
import sys
import time

IPV6_DONTFRAG = getattr(socket, "IPV6_DONTFRAG", 62)  # Linux's value where Python lacks the name
IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2  # Linux's


def checksum(data):
    """The Internet checksum (RFC 1071): the kernel fills it for ICMPv6, not for raw ICMP."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def main(argv):
    count, interval, timeout = int(argv[1]), float(argv[2]), float(argv[3])
    targets = argv[4:]
    family, size, dontfrag = socket.AF_INET6, 0, False
    while targets and targets[0].startswith("-"):
        option = targets.pop(0)
        if option == "-4":
            family = socket.AF_INET
        elif option == "-s":
            size = int(targets.pop(0))
        elif option == "-M":
            dontfrag = True
    v4 = family == socket.AF_INET
    proto = socket.IPPROTO_ICMP if v4 else socket.IPPROTO_ICMPV6
    request, reply = (8, 0) if v4 else (128, 129)
    try:  # an unprivileged ICMP "ping socket" where the kernel allows it, else raw (root)
        sock = socket.socket(family, socket.SOCK_DGRAM, proto)
        raw = False
    except OSError:
        sock = socket.socket(family, socket.SOCK_RAW, proto)
        raw = True
    if dontfrag and v4:
        sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
    elif dontfrag:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_DONTFRAG, 1)
    payload = (b"fleet-probe" * (size // 11 + 1))[:size] if size else b"fleet-probe"
    sock.setblocking(False)
    ident = os.getpid() & 0xFFFF
    gap = min(0.001, interval / max(1, len(targets)))
    start = time.monotonic() + 0.01
    plan = sorted((start + k * interval + i * gap, i * count + k)
                  for k in range(count) for i in range(len(targets)))
    sent, rtts = {}, [[None] * count for _ in targets]
    deadline = (plan[-1][0] if plan else start) + timeout
    nxt = answered = 0
    while True:
        now = time.monotonic()
        while nxt < len(plan) and plan[nxt][0] <= now:
            seq = plan[nxt][1]
            target = targets[seq // count]
            packet = struct.pack("!BBHHH", request, 0, 0, ident, seq & 0xFFFF) + payload
            if v4:
                packet = packet[:2] + struct.pack("!H", checksum(packet)) + packet[4:]
            try:
                sock.sendto(packet, (target, 0))
                sent[seq] = time.monotonic()
            except OSError as exc:
                sys.stderr.write("%s: error while sending ping: %s\n" % (target, exc.strerror))
            nxt += 1
        if now >= deadline or (nxt == len(plan) and answered >= len(sent)):
            break  # past the wait, or every ping sent and answered: as fping, do not wait more
        wake = min(plan[nxt][0] if nxt < len(plan) else deadline, deadline)
        readable, _, _ = select.select([sock], [], [], max(0.0, wake - time.monotonic()))
        while readable:
            try:
                data = sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                break
            arrived = time.monotonic()
            if v4 and raw:  # a raw IPv4 socket gets the IP header too
                data = data[(data[0] & 0x0F) * 4:] if data else data
            if len(data) < 8:
                continue
            kind, _, _, rid, seq = struct.unpack("!BBHHH", data[:8])
            if kind != reply or (raw and rid != ident) or seq not in sent:
                continue
            if arrived - sent[seq] <= timeout and seq // count < len(targets):
                if rtts[seq // count][seq % count] is None:
                    answered += 1
                rtts[seq // count][seq % count] = arrived - sent[seq]
    for target, times in zip(targets, rtts):
        sys.stdout.write("%s : %s\n" % (target, " ".join(
            "-" if t is None else "%.3f" % (t * 1000.0) for t in times)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
