"""Pack the shared FER2013 zip as a solid tar.xz for the lent GPU machine.

The zip (62 MB) plus kornia's wheels would not fit the device tool's 64 MiB transfer; packed
solid, the 35k small JPEGs share their repeated headers and the archive is 47 MB.
Usage: python device/pack_data.py [ZIP]; then fetch wheels the device image lacks:
  pip download --no-deps kornia==0.9.0 -d device/wheels
  pip download --no-deps kornia-rs --python-version 3.12 --platform manylinux_2_17_x86_64 \
      --only-binary=:all: -d device/wheels
"""

import io
import sys
import tarfile
import zipfile
from pathlib import Path

src = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/fer2013.zip")
with zipfile.ZipFile(src) as zf, tarfile.open("device/fer2013.tar.xz", "w:xz", preset=6) as tf:
    for info in zf.infolist():
        if not info.is_dir():
            data = zf.read(info)
            member = tarfile.TarInfo(info.filename)
            member.size = len(data)
            tf.addfile(member, io.BytesIO(data))
