"""Data-read benchmark: first read of the shared zip, of a fer2013.csv made from it, cached read.

Usage: python benchmarks/data_read.py [DATA]  (default: $FERLAB_DATA or ../shared/data/fer2013.zip)
Writes benchmarks/results/data_read.json. Targets here: first reads <= 20 s, cached <= 1 s.
"""

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from ferlab.data import RAW, convert, load


def timed(fn):
    t = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t


def main() -> None:
    data = Path(
        sys.argv[1]
        if len(sys.argv) > 1
        else os.environ.get("FERLAB_DATA", "../shared/data/fer2013.zip")
    )
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FERLAB_CACHE"] = str(Path(tmp) / "cache")
        (faces, _), zip_first = timed(lambda: load(data))
        _, zip_cached = timed(lambda: load(data))
        csv_dir = convert(load(data, preprocess=RAW)[0], "fer2013-csv", Path(tmp) / "csv")
        csv = csv_dir / "fer2013.csv"
        (rows, _), csv_first = timed(lambda: load(csv))
        _, csv_cached = timed(lambda: load(csv))
    result = {
        "command": "python benchmarks/data_read.py " + str(data),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "faces": len(faces),
        "csv_rows": len(rows),
        "seconds": {
            "zip_first_read": round(zip_first, 2),
            "zip_cached_read": round(zip_cached, 3),
            "csv_first_read": round(csv_first, 2),
            "csv_cached_read": round(csv_cached, 3),
        },
        "note": "each read includes histogram equalization of every face (the default)",
    }
    out = Path(__file__).parent / "results" / "data_read.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
