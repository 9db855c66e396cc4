"""Fine-tuning: a run that starts from a trained model's weights instead of a fresh draw. The
start is pinned by its file's sha256, so a recipe that fine-tunes `default` refuses to run on
another model once `default` has been replaced."""

import hashlib

from ferlab.data.preprocess import Preprocess
from ferlab.errors import FerlabError
from ferlab.inference import Predictor, load_model, resolve_checkpoint
from ferlab.models.card import ModelCard


def start_model(ref: str, expected_sha256: str | None, preprocess: Preprocess):
    """(the Predictor `ref` names, its file's sha256); refused when the file is not the one a
    recipe names or sees faces preprocessed otherwise than this run."""
    path = resolve_checkpoint(ref)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if expected_sha256 and digest != expected_sha256:
        raise FerlabError(
            f"--init {ref}: {path} is not the model this recipe starts from (sha256 "
            f"{digest[:12]}, expected {expected_sha256[:12]}); pass --init with that file"
        )
    start = load_model(path, runtime="torch")
    if start.preprocess != preprocess:
        raise FerlabError(
            f"--init {ref} takes faces preprocessed as {start.preprocess.to_dict()}, this run "
            f"{preprocess.to_dict()}"
        )
    return start, digest


def check_same_network(start: Predictor, card: ModelCard, ref: str) -> None:
    """The run's network must be the start's: same architecture, arguments and classes."""
    have = (start.card.model, start.card.model_args, tuple(start.card.classes))
    want = (card.model, card.model_args, tuple(card.classes))
    if have != want:
        raise FerlabError(
            f"--init {ref} is {have[0]} {have[1]} over {len(have[2])} classes; this run trains "
            f"{want[0]} {want[1]} over {len(want[2])}: give the same --model and arguments"
        )
