"""Pack a FER2013 zip as a solid tar.xz for a lent GPU machine (device/run.sh unpacks it).

The zip (62 MB) plus the wheels the device image lacks would not fit the device tool's 64 MiB
transfer; packed solid, the 35k small JPEGs share their repeated headers and the archive is
47 MB. Usage: python experiments/device_pack_data.py ZIP OUT_DIR (e.g. device/); then fetch
the wheels the device image lacks into OUT_DIR/wheels:
  pip download --no-deps kornia==0.9.0 -d device/wheels
  pip download --no-deps kornia-rs --python-version 3.12 --platform manylinux_2_17_x86_64 \
      --only-binary=:all: -d device/wheels
"""

import io
import sys
import tarfile
import zipfile
from pathlib import Path

if len(sys.argv) != 3:
    sys.exit(__doc__)
src, out = Path(sys.argv[1]), Path(sys.argv[2]) / "fer2013.tar.xz"
with zipfile.ZipFile(src) as zf, tarfile.open(out, "w:xz", preset=6) as tf:
    for info in zf.infolist():
        if not info.is_dir():
            data = zf.read(info)
            member = tarfile.TarInfo(info.filename)
            member.size = len(data)
            tf.addfile(member, io.BytesIO(data))
