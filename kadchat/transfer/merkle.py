"""BLAKE2b Merkle trees over fixed-size chunks.

A file is cut into CHUNK_SIZE chunks (the last one shorter); each chunk's leaf
hash and the tree over the leaves use distinct BLAKE2b personalisations, so a
leaf can never pass for an inner node (the second-preimage trick RFC 6962
guards against). An odd node at the end of a level moves up unchanged. The
offer names only the root; the leaf list comes afterwards, and is believed
only if it builds that root.
"""

from hashlib import blake2b

CHUNK_SIZE = 256 * 1024
HASH_SIZE = 32


def leaf_hash(chunk: bytes) -> bytes:
    return blake2b(chunk, digest_size=HASH_SIZE, person=b"kadchat-leaf").digest()


def _node(left: bytes, right: bytes) -> bytes:
    return blake2b(left + right, digest_size=HASH_SIZE, person=b"kadchat-node").digest()


def root_of(leaves) -> bytes:
    """The root over `leaves`; an empty file has the hash of nothing as its root."""
    level = list(leaves)
    if not level:
        return blake2b(b"", digest_size=HASH_SIZE, person=b"kadchat-empty").digest()
    while len(level) > 1:
        paired = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = paired + level[len(level) - len(level) % 2:]
    return level[0]


def chunk_count(size: int, chunk_size: int = CHUNK_SIZE) -> int:
    return -(-size // chunk_size)


def chunk_length(size: int, index: int, chunk_size: int = CHUNK_SIZE) -> int:
    return min(chunk_size, size - index * chunk_size)


def hash_file(path, chunk_size: int = CHUNK_SIZE):
    """(size, leaves, root) of the file at `path`."""
    leaves, size = [], 0
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            leaves.append(leaf_hash(chunk))
            size += len(chunk)
    return size, leaves, root_of(leaves)
