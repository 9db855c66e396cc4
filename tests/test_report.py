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
from ferlab.report.build import build_report
from ferlab.report.plan import ReportConfig

SECTIONS = ["cnn", "dnn", "confusion", "saliency", "filters", "reproducibility"]
TINY_DNN = {"depth": 3, "width": 64}
TINY_CONTROL = {"depth": 1, "width": 96}
# curves x 4, gradients x 2, confusion, trust cascade and curves, saliency, class average,
# activations, filters
FIGURES = 13


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
        cnn_args=TINY,
        dnn_args=TINY_DNN,
        control_args=TINY_CONTROL,
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


@pytest.mark.slow
def test_report_has_every_section_figure_and_number(built):
    cfg, out = built
    page = parse((out / "report.html").read_text())
    assert page.sections == SECTIONS
    # Every figure is embedded (the file opens offline) and decodes as a real picture.
    assert len(page.images) == FIGURES
    for img in page.images:
        head, _, payload = img["src"].partition(",")
        assert head == "data:image/png;base64"
        picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))))
        assert picture.shape[0] > 100 and picture.std() > 0, img["alt"]
    summary = json.loads((out / "summary.json").read_text())
    for role in ("cnn", "dnn", "control"):
        for split in ("val", "public"):
            assert f"{summary['quick'][role][split]:.1%}" in page.body
    assert f"{summary['majority']['val']:.1%}" in page.body
    assert "51-layer DNN" in page.body and "dense control" in page.body
    assert "times the gradient of the last one" in page.body  # the gradient-norm finding
    from ferlab.models import create, keras_param_counts

    for model, args in (("cnn-baseline", TINY), ("dnn-study", TINY_DNN)):
        counts = keras_param_counts(create(model, **args))
        for n in (counts.total, counts.trainable, counts.non_trainable):
            assert f"{n:,}" in page.body
    # The study's own parameter counts beside ours.
    for n in (44_305_991, 42_809_407, 91_800):
        assert f"{n:,}" in page.body
    # Reproducibility: the split file travels inside the page, byte for byte.
    split_link = next(a for a in page.links if a.get("download") == "split.json")
    split_bytes = base64.b64decode(split_link["href"].partition(",")[2])
    assert split_bytes == (out / "split.json").read_bytes()
    assert hashlib.sha256(split_bytes).hexdigest() in page.body
    assert (out / "runs" / "cnn" / "split.json").read_bytes() == split_bytes
    for role in ("dnn", "control"):
        config = yaml.safe_load((out / "runs" / role / "config.yaml").read_text())
        assert config["split_file"] == str(out / "runs" / "cnn" / "split.json")
    assert "ferlab report --data" in page.body and "ferlab train --config" in page.body
    assert torch.__version__ in page.body


@pytest.mark.slow
def test_report_says_which_saliency_maps_can_be_trusted_and_shows_the_best(built):
    _, out = built
    page = parse((out / "report.html").read_text())
    trust = json.loads((out / "trust.json").read_text())
    assert "Can these maps be trusted?" in page.body
    assert set(trust["methods"]) == {"gradient", "smoothgrad", "integrated-gradients", "gradcam"}
    for name, m in trust["methods"].items():
        assert f"{m['spearman'][-1]:.2f}" in page.body and f"{m['deletion_auc']:.3f}" in page.body
        # the sentence follows the numbers: a failing method is said to show the face
        says_fails = "shows the face more than the model" in trust["verdicts"][name]
        assert says_fails == (not m["passes_randomization"]), trust["verdicts"][name]
    assert f"The maps below use {trust['best']}" in " ".join(page.body.split())
    methods = trust["methods"].values()
    passing = [m for m in methods if m["passes_randomization"]] or list(methods)
    best = max(passing, key=lambda m: m["insertion_auc"] - m["deletion_auc"])
    assert trust["best"] == best["method"]


@pytest.mark.slow
def test_report_sets_the_studys_confused_table_beside_the_measured_one(built):
    from ferlab.report.study import STUDY_CONFUSED

    _, out = built
    md = (out / "report.md").read_text()
    table = md.split("### Most confused emotions, beside the study's")[1].split("</section>")[0]
    rows = [r for r in table.splitlines() if r.startswith("| ") and "---" not in r][1:]
    assert [r.split(" | ")[0].strip("| ") for r in rows] == list(STUDY_CONFUSED)
    for row, study in zip(rows, STUDY_CONFUSED.values(), strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[3] == (", ".join(study) or "none")
        assert cells[4] in ("agree", "partly", "differs")
        measured = {c.split(" (")[0] for c in cells[2].split(", ")} - {"none notable"}
        assert (cells[4] == "agree") == (measured == set(study))


@pytest.mark.slow
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
    assert len([x for x in links if x.startswith("figures/")]) == FIGURES
    for link in links:
        assert (out / link).is_file(), link


@pytest.mark.slow
def test_the_report_reads_no_intermediate_file_back(built, tmp_path, monkeypatch):
    """Rerun on a finished folder: training is not redone, and of the report's folder only
    its runs, its options and what this run wrote to embed in report.html (figures, the
    split) are read: no stage result of an earlier run comes from disk."""
    import builtins

    cfg, out = built
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for leftover in ("figures", "report.html", "report.md", "summary.json", "split.json"):
        target = copy / leftover
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    best = copy / "runs" / "cnn" / "checkpoints" / "best.ckpt"
    stamp = best.stat().st_mtime_ns
    read, real_open = [], builtins.open

    def recording_open(file, mode="r", *args, **kwargs):
        if "r" in mode and "+" not in mode and isinstance(file, str | os.PathLike):
            read.append(Path(file).resolve())
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    monkeypatch.setattr(io, "open", recording_open)
    build_report(config(cfg.data, copy))
    monkeypatch.undo()
    assert best.stat().st_mtime_ns == stamp  # training was not redone
    assert (copy / "figures" / "filters.png").is_file()
    inside = {p.relative_to(copy.resolve()) for p in read if copy.resolve() in p.parents}
    inputs = {p for p in inside if p.parts[0] in ("runs", "report-config.json")}
    assert {p.parts[0] for p in inputs} == {"runs", "report-config.json"}
    embedded = inside - inputs
    assert {p.parts[0] for p in embedded} == {"figures", "split.json"}, embedded
    assert all((copy / p).stat().st_mtime_ns > stamp for p in embedded)  # written just now
    first, again = (json.loads((d / "summary.json").read_text()) for d in (out, copy))
    assert first == again


def test_quick_work_is_the_same_on_a_fast_and_a_slow_machine(tmp_path):
    from ferlab.report.plan import training_plan

    cfg = ReportConfig(data="fer2013.zip", out=str(tmp_path / "r"), quick=True)
    fast = training_plan(cfg, 25_000, speed=lambda *a, **k: 5_000.0)
    slow = training_plan(cfg, 25_000, speed=lambda *a, **k: 20.0)
    assert fast == slow
    assert fast["cnn"].recipe == "study-cnn@1" and fast["dnn"].recipe == "study-dnn@1"
    # A time budget is what depends on the machine, by design.
    budget = ReportConfig(data="fer2013.zip", out=str(tmp_path / "r"), minutes=10)
    fast = training_plan(budget, 25_000, speed=lambda *a, **k: 5_000.0)
    slow = training_plan(budget, 25_000, speed=lambda *a, **k: 20.0)
    assert (
        fast["cnn"].epochs * fast["cnn"].train_fraction
        > slow["cnn"].epochs * slow["cnn"].train_fraction
    )


@pytest.mark.slow
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
@pytest.mark.slow
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


def test_report_options_come_from_the_config_and_its_command_asks_for_it_again(monkeypatch):
    """`ferlab report` offers every ReportConfig option, and the command a report records
    (ReportConfig.command) builds the same config when it is run."""
    import shlex

    from ferlab.report import build

    asked = []
    monkeypatch.setattr(build, "build_report", lambda cfg, console=None: asked.append(cfg))
    args = ["--data", "d.zip", "--out", "r", "--quick", "--cnn", "resnet-fer", "--minutes",
            "7.5", "--reuse", "dnn=runs/a", "--reuse", "control=runs/b", "--seed", "3",
            "--layer", "stages.stage2.0.act2"]  # fmt: skip
    assert run_cli("report", *args).returncode == 0
    again = shlex.split(asked[0].command())
    assert again[:2] == ["ferlab", "report"]
    assert run_cli(*again[1:]).returncode == 0
    first, second = asked
    assert first == second
    assert (first.cnn, first.minutes, first.reuse, first.seed) == (
        "resnet-fer",
        7.5,
        ["dnn=runs/a", "control=runs/b"],
        3,
    )
    assert (first.dnn, first.control, first.quiet) == ("dnn-study", "dense-control", False)
