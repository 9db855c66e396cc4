"""One document source, two files: the report's Markdown template renders report.md (figures
beside it, in figures/) and, through markdown-it, the body of report.html (figures and the
split embedded, so the page opens offline and can be mailed as one file)."""

import base64
from pathlib import Path

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup

from ferlab.atomic import write_text_atomic


def _pct(x) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ferlab.report", "templates"),
        autoescape=False,  # Markdown; the HTML comes from markdown-it, which escapes text
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["pct"] = _pct
    env.filters["thousands"] = lambda n: f"{n:,}"
    return env


def data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode()


def render_report(
    context: dict, out: Path, figures: Path, template: str = "document.md.j2"
) -> Path:
    """report.md and report.html in `out` from `context` through `template`; every PNG in
    `figures` is offered to the template by its stem."""
    env = _environment()
    document = env.get_template(template)
    present = {p.stem: p for p in sorted(Path(figures).glob("*.png"))}
    md = document.render(
        **context,
        figures={name: f"{Path(figures).name}/{p.name}" for name, p in present.items()},
        split_href="split.json",
    )
    body = document.render(
        **context,
        figures={name: data_uri(p, "image/png") for name, p in present.items()},
        split_href=data_uri(out / "split.json", "application/json"),
    )
    # html: raw HTML in the template (sections, details, the split's download link) passes.
    html_body = MarkdownIt("commonmark", {"html": True}).enable("table").render(body)
    page = env.get_template("page.html.j2").render(title=context["title"], body=Markup(html_body))
    write_text_atomic(out / "report.md", md)
    write_text_atomic(out / "report.html", page)
    return out / "report.html"
