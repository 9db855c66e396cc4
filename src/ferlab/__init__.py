"""ferlab: facial expression recognition. `ferlab.Recognizer` is the way in from Python:

    import ferlab

    faces = ferlab.Recognizer().analyze("photo.jpg")

The names below load on first use, so `import ferlab` stays light."""

from ferlab._version import __version__
from ferlab.data.labels import EMOTIONS
from ferlab.errors import FerlabError
from ferlab.lazy import lazy_names

_API = ("Face", "Frame", "Recognizer", "table", "to_dataframe", "write_row_shards")


__getattr__ = lazy_names(__name__, dict.fromkeys(_API, "api"))


__all__ = ["EMOTIONS", "FerlabError", "__version__", *_API]
