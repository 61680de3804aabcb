# SPDX-License-Identifier: Apache-2.0
"""A TCP proxy between a migration source and its destination, on loopback, that can flip
one byte of, or cut, one channel's source-to-destination stream at a given offset.

Each connection is told apart by its stream header (64 bytes, `channel` at offset 12,
src/vmm/migration/internal.h), held back until complete. The target stream is parsed as it
passes (records: 32-byte header with section u16, type u16, len u32; then len bytes) so
that the fault says what it hit: the stream header, a record header, RAM page data
(section 2, type 1: a later pass may legitimately send the page again), or another payload.
"""
import socket
import struct
import threading

HDR_LEN, REC_LEN = 64, 32
SEC_RAM, T_RAM_DATA = 2, 1
CHUNK = 1 << 18


class StreamMap:
    """Where a byte offset falls in a migration stream, fed in order."""

    def __init__(self):
        self.pos = 0
        self.in_payload = 0  # payload bytes left in the current record
        self.payload_kind = None
        self.hdr = b""

    def region(self):
        """What the next byte (at self.pos) belongs to."""
        if self.pos < HDR_LEN:
            return "stream-header"
        return self.payload_kind if self.in_payload else "record-header"

    def feed(self, data):
        i = 0
        while i < len(data):
            if self.pos < HDR_LEN:
                take = min(HDR_LEN - self.pos, len(data) - i)
            elif self.in_payload:
                take = min(self.in_payload, len(data) - i)
                self.in_payload -= take
            else:
                take = min(REC_LEN - len(self.hdr), len(data) - i)
                self.hdr += data[i:i + take]
                if len(self.hdr) == REC_LEN:
                    self._record(self.hdr)
                    self.hdr = b""
            i += take
            self.pos += take

    def seek_header(self, data, min_at):
        """Feeds data up to the first record header starting at index >= min_at: its
        index, or None (everything fed, none there)."""
        i = min(min_at, len(data))
        self.feed(data[:i])
        while True:
            if self.pos >= HDR_LEN and not self.in_payload and not self.hdr:
                return i if i < len(data) else None
            if self.pos < HDR_LEN:
                step = HDR_LEN - self.pos
            else:
                step = self.in_payload or REC_LEN - len(self.hdr)
            if i + step >= len(data):
                self.feed(data[i:])
                return None
            self.feed(data[i:i + step])
            i += step

    def _record(self, h):
        section, rtype, length = struct.unpack_from("<HHI", h)
        self.in_payload = length
        self.payload_kind = ("ram-data" if (section, rtype) == (SEC_RAM, T_RAM_DATA)
                             else f"payload(section={section},type={rtype})")


class Fault:
    """kind 'flip' (XOR mask) or 'cut', at byte offset of the stream of channel; with
    rec_byte set (0..31), the flip moves on to that byte of the first record header at or
    after offset (random offsets mostly land in page data)."""

    def __init__(self, kind, channel, offset, mask=0xFF, rec_byte=None):
        self.kind, self.channel, self.offset, self.mask = kind, channel, offset, mask
        self.rec_byte = rec_byte
        self.fired = None  # the region hit, once it fired
        self.at = None  # the stream offset it fired at

    def __repr__(self):
        where = f"offset {self.offset}" if self.at is None else f"offset {self.at}"
        return f"{self.kind} channel {self.channel} {where}"


class Proxy:
    def __init__(self, target_port, fault=None):
        self.target = ("127.0.0.1", target_port)
        self.fault = fault
        self.bytes = {}  # channel -> source-to-destination bytes seen
        self.lock = threading.Lock()
        self.socks, self.threads = [], []
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(32)
        self.port = self.ls.getsockname()[1]
        self._spawn(self._accept_loop)

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def close(self):
        for s in [self.ls, *self.socks]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self.threads:
            t.join(timeout=5)

    def _accept_loop(self):
        while True:
            try:
                a, _ = self.ls.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(self.target, timeout=5)
            except OSError:
                a.close()
                continue
            b.settimeout(None)
            with self.lock:
                self.socks += [a, b]
            self._spawn(self._pump_up, a, b)
            self._spawn(self._pump_down, b, a)

    @staticmethod
    def _end(a, b, how):
        for s in (a, b) if how == "both" else (b,):
            try:
                s.shutdown(socket.SHUT_RDWR if how == "both" else socket.SHUT_WR)
            except OSError:
                pass

    def _pump_down(self, b, a):
        """Destination to source (the return path): forwarded untouched."""
        try:
            while data := b.recv(CHUNK):
                a.sendall(data)
            self._end(b, a, "half")
        except OSError:
            self._end(a, b, "both")

    def _read_header(self, a):
        hdr = b""
        while len(hdr) < HDR_LEN:
            data = a.recv(HDR_LEN - len(hdr))
            if not data:
                return None
            hdr += data
        return hdr

    def _pump_up(self, a, b):
        try:
            hdr = self._read_header(a)
            if hdr is None:
                self._end(a, b, "half")
                return
            channel = struct.unpack_from("<I", hdr, 12)[0]
            f = self.fault if self.fault and self.fault.channel == channel else None
            smap, pos, data = StreamMap(), 0, hdr
            while data:
                if f and not f.fired and f.rec_byte is not None and pos + len(data) > f.offset:
                    data = self._flip_header(f, smap, data, pos)
                elif f and not f.fired and pos + len(data) > f.offset:
                    data = self._apply(f, smap, data, f.offset - pos)
                    if f.kind == "cut":
                        b.sendall(data)
                        self._count(channel, len(data))
                        self._end(a, b, "both")
                        return
                elif f and not f.fired:
                    smap.feed(data)
                b.sendall(data)
                self._count(channel, len(data))
                pos += len(data)
                data = a.recv(CHUNK)
            self._end(a, b, "half")
        except OSError:
            self._end(a, b, "both")

    def _count(self, channel, n):
        with self.lock:
            self.bytes[channel] = self.bytes.get(channel, 0) + n

    @staticmethod
    def _flip_header(f, smap, data, pos):
        at = smap.seek_header(data, max(0, f.offset - pos))
        if at is None:
            return data
        at = at + f.rec_byte if at + f.rec_byte < len(data) else at
        f.fired, f.at = "record-header", pos + at
        out = bytearray(data)
        out[at] ^= f.mask
        return bytes(out)

    @staticmethod
    def _apply(f, smap, data, at):
        """The fault at data[at]: the bytes to forward (for a cut, those before it)."""
        smap.feed(data[:at])
        f.fired, f.at = smap.region(), f.offset
        if f.kind == "cut":
            return data[:at]
        out = bytearray(data)
        out[at] ^= f.mask
        return bytes(out)
