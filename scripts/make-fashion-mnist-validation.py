#!/usr/bin/env python3
"""Writes a held-out split of the Fashion-MNIST training set as idx files, for choosing settings without the test set.

    scripts/make-fashion-mnist-validation.py /usr/share/datasets/fashion-mnist /tmp/fm-val

OUT/train-* holds the first 50,000 training images and labels, OUT/t10k-* the last 10,000, so that
`fmnist:OUT:train` is a 50,000-image memory and `fmnist:OUT:test` a 10,000-image validation set.
The test files of Fashion-MNIST are not read.
"""
import gzip
import os
import struct
import sys

MEMORY = 50_000


def read(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read()


def find(directory, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    sys.exit(f"{directory} has no {name}[.gz]: give the folder with the Fashion-MNIST idx files")


def split(data, header_ints, item_bytes):
    header = struct.unpack(">" + "I" * header_ints, data[: 4 * header_ints])
    count = header[1]
    body = data[4 * header_ints:]
    if len(body) != count * item_bytes or count <= MEMORY:
        sys.exit(f"unexpected idx file: {count} items of {item_bytes} bytes, {len(body)} bytes present")
    parts = []
    for start, end in ((0, MEMORY), (MEMORY, count)):
        new_header = (header[0], end - start) + header[2:]
        parts.append(struct.pack(">" + "I" * header_ints, *new_header) + body[start * item_bytes: end * item_bytes])
    return parts


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make-fashion-mnist-validation.py FASHION_MNIST_DIR OUT_DIR")
    source, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    images = read(find(source, "train-images-idx3-ubyte"))
    labels = read(find(source, "train-labels-idx1-ubyte"))
    rows, cols = struct.unpack(">II", images[8:16])
    for (prefix, image_part), label_part in zip(
            zip(("train", "t10k"), split(images, 4, rows * cols)), split(labels, 2, 1)):
        with open(os.path.join(out, prefix + "-images-idx3-ubyte"), "wb") as f:
            f.write(image_part)
        with open(os.path.join(out, prefix + "-labels-idx1-ubyte"), "wb") as f:
            f.write(label_part)
    print(f"{out}: {MEMORY} memory images (train-*), the other {len(labels) - 8 - MEMORY} as validation (t10k-*)")


if __name__ == "__main__":
    main()
