"""ferlab: facial expression recognition on FER2013."""

from ferlab.errors import FerlabError

__version__ = "0.2.0"
__all__ = ["FerlabError", "__version__"]
