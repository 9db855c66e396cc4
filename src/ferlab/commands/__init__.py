"""The command layer: what the `ferlab` command does, as functions tests call directly.

Each module loads what a command names (data, a model), calls the library (ferlab.data,
models, training, inference, evaluation, explain, photos, report) and writes files. Nothing
below this layer imports it.
"""
