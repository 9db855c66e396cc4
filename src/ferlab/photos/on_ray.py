"""The bulk engine on Ray Data (the `ray` extra): the tasks of ferlab.photos.bulk as a Ray
Dataset, mapped by an actor pool whose actors each hold a `Worker` (the model and detector,
loaded once per actor), their results streamed back in task order. The same code runs on a
local Ray (started here, stopped when done) and on a cluster (`address`); the nodes need only
ferlab installed, and the model file where the driver names it (shipped models are in the
package)."""

import logging
import pickle

import numpy as np

from ferlab.errors import FerlabError, at_least_one
from ferlab.photos.bulk import Job, Worker, check_job


class RayWorker:
    """An actor of the pool: its Worker runs each task of a batch, pickled in and out (tasks
    and results are ferlab's own objects, made by this driver and its actors). A FerlabError
    goes back as the task's result: Ray would hand the driver only its text, in a page of
    Ray's own."""

    def __init__(self, job: Job, threads: int):
        try:
            self.worker = Worker(job, threads)
        except FerlabError as e:
            self.worker = e

    def __call__(self, batch: dict) -> dict:
        results = []
        for task in batch["task"]:
            method, args = pickle.loads(task)
            try:
                if isinstance(self.worker, FerlabError):
                    raise self.worker
                results.append(pickle.dumps(getattr(self.worker, method)(*args)))
            except FerlabError as e:
                results.append(pickle.dumps(e))
        return {"result": np.array(results, dtype=object)}


class RayEngine:
    """`Engine`'s interface on Ray: `classes`, `ordered(method, arglists)`, `close()`."""

    # A Ray task costs 8-17 ms more than a worker process's (benchmarks/results/
    # predict_scale.md): more photos a task keep that small beside the work.
    photos_per_task = 32

    def __init__(self, job: Job, workers: int = 1, address: str | None = None):
        import ray
        import ray.data

        from ferlab.inference import load_model

        at_least_one(workers=workers)
        # Ray's notices (deprecations, executions finished) would bury ferlab's one line.
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self.started = not ray.is_initialized()
        if self.started:
            try:
                ray.init(
                    address=address, include_dashboard=False, logging_level=logging.ERROR,
                    log_to_driver=False, configure_logging=False,
                )  # fmt: skip
            except ConnectionError as e:
                raise FerlabError(f"no Ray cluster at {address}: {e}") from None
        try:
            context = ray.data.DataContext.get_current()
            context.execution_options.preserve_order = True  # rows in input order
            context.enable_progress_bars = False  # ferlab's own bar says how far it is
            context.print_on_execution_start = False
            self.job, self.workers = job, workers
            # Each actor computes with its share of the cluster's cores.
            self.threads = max(1, int(ray.cluster_resources().get("CPU", 1)) // workers)
            self.classes = load_model(job.model, runtime=job.runtime).classes
        except BaseException:
            self.close()  # a Ray started here stops with the failure
            raise

    def ordered(self, method: str, arglists):
        import ray.data

        tasks = [{"task": pickle.dumps((method, args))} for args in arglists]
        if not tasks:
            return
        results = ray.data.from_items(tasks, override_num_blocks=len(tasks)).map_batches(
            RayWorker,
            fn_constructor_args=(self.job, self.threads),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(self.workers, len(tasks))),
            num_cpus=self.threads,
        )
        for batch in results.iter_batches(batch_size=1, batch_format="numpy"):
            result = pickle.loads(batch["result"][0])
            if isinstance(result, FerlabError):
                raise result
            yield result

    def close(self) -> None:
        import ray

        if self.started:
            ray.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ShardRows:
    """An actor of `write_shards`: a batch of photo paths -> their rows as an Arrow table
    (the CSV's columns, typed; `error` says why a photo could not be read)."""

    def __init__(self, job: Job, threads: int):
        from ferlab.photos.rows import csv_header

        self.worker = Worker(job, threads)
        self.columns = csv_header(self.worker.labels, video=False)

    def __call__(self, batch: dict):
        import pyarrow as pa

        from ferlab.photos.rows import csv_cells

        table = {c: [] for c in [*self.columns, "error"]}
        for photo in self.worker.photos([(str(p), None) for p in batch["path"]]):
            for row in photo.rows or [None]:  # an unreadable photo: one row, its error
                cells = (
                    csv_cells(row, self.worker.labels, video=False)
                    if row is not None
                    else [photo.file] + [""] * (len(self.columns) - 1)
                )
                for column, cell in zip(self.columns, cells, strict=True):
                    table[column].append(None if cell == "" else cell)
                table["error"].append(photo.error)
        return pa.table(table, schema=shard_schema(self.columns))


def shard_schema(columns: list[str]):
    import pyarrow as pa

    text, whole = {"file", "emotion", "error"}, {"face", "x", "y", "w", "h"}
    kinds = [pa.string() if c in text else pa.int64() if c in whole else pa.float64()
             for c in [*columns, "error"]]  # fmt: skip
    return pa.schema(list(zip([*columns, "error"], kinds, strict=True)))


SHARD_FORMATS = ("parquet", "csv")


def write_shards(
    paths: list[str], out, job: Job, actors: int = 2, address: str | None = None,
    fmt: str = "parquet",
):  # fmt: skip
    """The rows of the photos at `paths`, made by `actors` Ray actors and written by them
    straight into shards in the new folder `out` (Parquet or CSV files, in no particular
    order): the driver sees no rows, so a large cluster is not held to one machine's rate.
    On a cluster, `out` and the photos must be where every node reads and writes them."""
    import math
    from pathlib import Path

    import ray.data

    from ferlab.atomic import new_output_dir, staged_folder

    if fmt not in SHARD_FORMATS:
        raise FerlabError(f"unknown shard format '{fmt}'; choose one of {', '.join(SHARD_FORMATS)}")
    if not paths:
        raise FerlabError("no photos to write rows of")
    check_job(job)  # an actor's refusal would reach this process as a page of Ray's text
    new_output_dir(Path(out), force=False)
    with RayEngine(job, actors, address) as engine, staged_folder(Path(out)) as staging:
        blocks = math.ceil(len(paths) / RayEngine.photos_per_task)
        rows = ray.data.from_items(
            [{"path": str(p)} for p in paths], override_num_blocks=blocks
        ).map_batches(
            ShardRows,
            fn_constructor_args=(job, engine.threads),
            batch_size=RayEngine.photos_per_task,
            compute=ray.data.ActorPoolStrategy(size=min(actors, blocks)),
            num_cpus=engine.threads,
            batch_format="numpy",
        )
        (rows.write_parquet if fmt == "parquet" else rows.write_csv)(str(staging))
    return Path(out)
