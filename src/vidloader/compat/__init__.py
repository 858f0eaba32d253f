"""Drop-in names from other video data APIs, mapped onto vidloader (see docs/migrating.md).

``vidloader.compat.torchvision``: ``Kinetics``, ``RandomClipSampler``, ``UniformClipSampler``,
``DistributedSampler`` and ``DataLoader`` with torchvision's / torch's signatures.
"""
