"""Which chunks of a file a receiver holds, verified: a bit per chunk, as bytes for SQLite and the wire."""


class ChunkBitmap:
    def __init__(self, count: int, data: bytes = b""):
        self.count = count
        self._bits = bytearray((count + 7) // 8)
        self._bits[:len(data)] = data[:len(self._bits)]
        if count % 8 and self._bits:
            self._bits[-1] &= (1 << count % 8) - 1  # bits past the end mean nothing
        self.held = sum(bin(b).count("1") for b in self._bits)

    def __contains__(self, index: int) -> bool:
        return 0 <= index < self.count and bool(self._bits[index // 8] >> index % 8 & 1)

    def add(self, index: int) -> bool:
        """Mark chunk `index` held; False if it already was."""
        if not 0 <= index < self.count:
            raise IndexError(index)
        if index in self:
            return False
        self._bits[index // 8] |= 1 << index % 8
        self.held += 1
        return True

    def discard(self, index: int) -> None:
        if index in self:
            self._bits[index // 8] &= ~(1 << index % 8)
            self.held -= 1

    @property
    def complete(self) -> bool:
        return self.held == self.count

    def missing(self):
        return [i for i in range(self.count) if i not in self]

    def to_bytes(self) -> bytes:
        return bytes(self._bits)

    def page(self, first_byte: int, size: int) -> bytes:
        return bytes(self._bits[first_byte:first_byte + size])

    def merge_page(self, first_byte: int, data: bytes) -> None:
        """Set the bits of `data` (a page of another bitmap starting at byte `first_byte`)."""
        for offset, byte in enumerate(data):
            for bit in range(8):
                index = (first_byte + offset) * 8 + bit
                if byte >> bit & 1 and index < self.count:
                    self.add(index)
