"""The JPEG tables RFC 2435 leaves out of the stream: the standard Huffman tables
(ITU-T T.81 Annex K.3) and the example quantization tables (K.1, K.2) that
Q values 1..99 scale (RFC 2435 Appendix A)."""
from __future__ import annotations


def _zigzag() -> tuple[int, ...]:
    """Natural (row-major) index of each coefficient in zig-zag order."""
    order = []
    for diagonal in range(15):
        rows = range(max(0, diagonal - 7), min(diagonal, 7) + 1)
        for row in reversed(rows) if diagonal % 2 == 0 else rows:
            order.append(row * 8 + diagonal - row)
    return tuple(order)


ZIGZAG = _zigzag()

# Table K.1 and K.2, natural order
LUMA_QUANTIZER = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
CHROMA_QUANTIZER = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
) + (99,) * 32  # fmt: skip


def make_tables(q: int) -> tuple[bytes, bytes]:
    """The luma and chroma quantization tables, zig-zag ordered, for Q 1..99 (RFC 2435 Appendix A MakeTables)."""
    factor = min(max(q, 1), 99)
    scale = 5000 // factor if factor < 50 else 200 - factor * 2

    def scaled(table: tuple[int, ...]) -> bytes:
        return bytes(min(max((table[ZIGZAG[i]] * scale + 50) // 100, 1), 255) for i in range(64))

    return scaled(LUMA_QUANTIZER), scaled(CHROMA_QUANTIZER)


# (class << 4 | id) -> (BITS: the count of codes of each length 1..16, HUFFVAL)
STANDARD_HUFFMAN: dict[int, tuple[bytes, bytes]] = {
    0x00: (bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]), bytes(range(12))),
    0x01: (bytes([0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]), bytes(range(12))),
    0x10: (
        bytes([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D]),
        bytes.fromhex(
            "01020300041105122131410613516107227114328191a1082342b1c11552d1f0"
            "2433627282090a161718191a25262728292a3435363738393a434445464748494a"
            "535455565758595a636465666768696a737475767778797a838485868788898a"
            "92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6"
            "c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa"
        ),
    ),
    0x11: (
        bytes([0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77]),
        bytes.fromhex(
            "000102031104052131061241510761711322328108144291a1b1c109233352f0"
            "156272d10a162434e125f11718191a262728292a35363738393a434445464748"
            "494a535455565758595a636465666768696a737475767778797a828384858687"
            "88898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3"
            "c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9fa"
        ),
    ),
}
