"""Render the report context to report.html (figures embedded) and report.md (figures beside)."""

import base64
from pathlib import Path

import jinja2

from ferlab.io import write_text_atomic

FIGURES = (
    "cnn_curves",
    "dnn_curves",
    "compare_curves",
    "confusion",
    "saliency",
    "class_average",
    "activations",
    "filters",
)


def _pct(x) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ferlab.report", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = _pct
    env.filters["thousands"] = lambda n: f"{n:,}"
    return env


def render(context: dict, out: Path, figures: Path) -> Path:
    env = _environment()
    present = {
        name: figures / f"{name}.png" for name in FIGURES if (figures / f"{name}.png").is_file()
    }
    embedded = {
        name: "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()
        for name, p in present.items()
    }
    split_b64 = base64.b64encode((out / "split.json").read_bytes()).decode()
    html = env.get_template("report.html.j2").render(
        **context, figures=embedded, split_data="data:application/json;base64," + split_b64
    )
    linked = {name: f"figures/{p.name}" for name, p in present.items()}
    md = env.get_template("report.md.j2").render(**context, figures=linked)
    write_text_atomic(out / "report.md", md)
    write_text_atomic(out / "report.html", html)
    return out / "report.html"
