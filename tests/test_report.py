"""`ferlab report` end to end on tiny synthetic data: sections, figures, numbers, resume."""

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import TINY, run_cli, synthetic_faces, write_tree
from ferlab.errors import FerlabError
from ferlab.report import ReportConfig, build_report

SECTIONS = ["cnn", "dnn", "confusion", "saliency", "filters", "reproducibility"]
TINY_DNN = {"depth": 3, "width": 64}


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.images, self.links, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
        elif tag == "img":
            self.images.append(a)
        elif tag == "a":
            self.links.append(a)

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.body = " ".join(page.text)
    return page


def config(data: Path, out: Path, **kw) -> ReportConfig:
    base = dict(
        data=str(data),
        out=str(out),
        quick=True,
        minutes=0.15,
        cnn_args=TINY,
        dnn_args=TINY_DNN,
        quiet=True,
    )
    return ReportConfig(**(base | kw))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    old = os.environ.get("FERLAB_CACHE")
    os.environ["FERLAB_CACHE"] = str(root / "cache")
    try:
        data = write_tree(synthetic_faces(per_class=12), root / "data")
        cfg = config(data, root / "out")
        build_report(cfg)
        yield cfg, Path(cfg.out)
    finally:
        if old is None:
            os.environ.pop("FERLAB_CACHE", None)
        else:
            os.environ["FERLAB_CACHE"] = old


def test_report_has_every_section_figure_and_number(built):
    cfg, out = built
    page = parse((out / "report.html").read_text())
    assert page.sections == SECTIONS
    # Every figure is embedded (the file opens offline) and decodes as a real picture.
    assert len(page.images) == 8
    for img in page.images:
        head, _, payload = img["src"].partition(",")
        assert head == "data:image/png;base64"
        picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))))
        assert picture.shape[0] > 100 and picture.std() > 0, img["alt"]
    evaluation = json.loads((out / "state" / "evaluate.json").read_text())
    for role in ("cnn", "dnn"):
        for split in ("val", "PublicTest"):
            assert f"{evaluation[role][split]['accuracy']:.1%}" in page.body
    assert evaluation["comparison"] in page.body
    assert ("CNN is better" in evaluation["comparison"]) == (
        evaluation["cnn"]["val"]["accuracy"] >= evaluation["dnn"]["val"]["accuracy"]
    )
    from ferlab.models import create, keras_param_counts

    for model, args in (("cnn-baseline", TINY), ("dnn-seed", TINY_DNN)):
        counts = keras_param_counts(create(model, **args))
        for n in (counts.total, counts.trainable, counts.non_trainable):
            assert f"{n:,}" in page.body
    for row in evaluation["most_confused"]:
        assert row["true"] in page.body
    # Reproducibility: the split file travels inside the page, byte for byte.
    split_link = next(a for a in page.links if a.get("download") == "split.json")
    split_bytes = base64.b64decode(split_link["href"].partition(",")[2])
    assert split_bytes == (out / "split.json").read_bytes()
    assert hashlib.sha256(split_bytes).hexdigest() in page.body
    assert (out / "runs" / "cnn" / "split.json").read_bytes() == split_bytes
    dnn_config = yaml.safe_load((out / "runs" / "dnn" / "config.yaml").read_text())
    assert dnn_config["split_file"] == str(out / "runs" / "cnn" / "split.json")
    assert "ferlab report --data" in page.body and "ferlab train --data" in page.body
    assert torch.__version__ in page.body


def test_markdown_twin_links_figures_that_exist(built):
    _, out = built
    md = (out / "report.md").read_text()
    for heading in (
        "## 1. The CNN",
        "## 2. The DNN",
        "## 3. Confusion",
        "## 4. Saliency",
        "## 5. Filters",
        "## Reproducibility",
    ):
        assert heading in md
    links = [part.split(")")[0] for part in md.split("](")[1:]]
    assert len([x for x in links if x.startswith("figures/")]) == 8
    for link in links:
        assert (out / link).is_file(), link


def test_rerun_resumes_finished_parts(built, tmp_path):
    cfg, out = built
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    cfg = config(cfg.data, copy)
    # The runs refer to their own folder; a copy must still be recognized as finished.
    best = copy / "runs" / "cnn" / "checkpoints" / "best.ckpt"
    stamp = best.stat().st_mtime_ns
    (copy / "state" / "explain.json").unlink()  # as if interrupted during the explain stage
    (copy / "figures" / "filters.png").unlink()
    build_report(cfg)
    assert best.stat().st_mtime_ns == stamp  # training was not redone
    assert (copy / "figures" / "filters.png").is_file()
    assert json.loads((copy / "state" / "timing.json").read_text())["sessions"] == 2


def test_other_options_refuse_to_mix_into_a_report(built):
    cfg, out = built
    with pytest.raises(FerlabError, match="other options"):
        build_report(config(cfg.data, out, seed=1))


def test_report_without_data_says_how_to_get_it(tmp_path):
    env_data = os.environ.pop("FERLAB_DATA", None)
    try:
        r = run_cli("report", "--quick", "--out", tmp_path / "r", cwd=tmp_path)
    finally:
        if env_data is not None:
            os.environ["FERLAB_DATA"] = env_data
    assert r.returncode == 2
    assert "FERLAB_DATA" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r").exists()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    _chromium() is None and not os.environ.get("FERLAB_REQUIRE_BROWSER"),
    reason="no chromium (.ci/run installs Debian's)",
)
def test_report_renders_in_headless_chromium(built, tmp_path):
    _, out = built
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,4000",
            f"--screenshot={shot}",
            (out / "report.html").resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    picture = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert picture.shape == (4000, 1200)
    # Text and figures drew something across the page, not a blank or an error page.
    rows_with_ink = (picture < 200).any(axis=1).mean()
    assert rows_with_ink > 0.3
    if os.environ.get("FERLAB_SCREENSHOT_DIR"):
        shutil.copyfile(shot, Path(os.environ["FERLAB_SCREENSHOT_DIR"]) / "report.png")
