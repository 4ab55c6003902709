"""nudgelab: run randomized trials of information materials transparently."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nudgelab")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
