#!/usr/bin/env python3
"""Writes the bundled Fashion-MNIST subset (idx format, gzip) from the full set.

Usage: scripts/make-fashion-mnist-subset.py [SOURCE_DIR] [TRAIN_N] [TEST_N]
SOURCE_DIR defaults to /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist).
Takes the first TRAIN_N (default 4000) training and TEST_N (default 1000) test images, in file order.
"""
import gzip
import os
import struct
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
train_n = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
test_n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
dst = os.path.join(os.path.dirname(__file__), "..", "mugs-data", "src", "main", "resources", "io", "mugs", "data",
                   "fashion-mnist")


def subset(name, n):
    with gzip.open(os.path.join(src, name), "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    item = 1
    for s in shape[1:]:
        item *= s
    header = struct.pack(">I", magic) + struct.pack(">I", n) + data[8:4 + 4 * dims]
    body = data[4 + 4 * dims:4 + 4 * dims + n * item]
    out = os.path.join(dst, name)
    with gzip.GzipFile(out, "wb", mtime=0) as f:
        f.write(header + body)
    print(out, n, "of", count)


subset("train-images-idx3-ubyte.gz", train_n)
subset("train-labels-idx1-ubyte.gz", train_n)
subset("t10k-images-idx3-ubyte.gz", test_n)
subset("t10k-labels-idx1-ubyte.gz", test_n)
