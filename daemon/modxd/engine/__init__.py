"""The modx ML engine: data validation, planning and training.

Importing this package is cheap on purpose: the daemon imports ``formats`` and
``plan`` (pure Python) at task-create time, while ``train``, ``data``,
``models``, ``callbacks`` and ``checkpoints`` pull in torch/transformers and are
only imported inside the training worker process.
"""
