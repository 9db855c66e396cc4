"""ferlab: facial expression recognition. `ferlab.Recognizer` is the way in from Python:

    import ferlab

    faces = ferlab.Recognizer().analyze("photo.jpg")

The names below load on first use, so `import ferlab` stays light."""

from ferlab._version import __version__
from ferlab.data.labels import EMOTIONS
from ferlab.errors import FerlabError

_API = ("Face", "Frame", "Recognizer", "table", "to_dataframe", "write_row_shards")


def __getattr__(name: str):
    if name in _API:
        from ferlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'ferlab' has no attribute '{name}'")


__all__ = ["EMOTIONS", "FerlabError", "__version__", *_API]
