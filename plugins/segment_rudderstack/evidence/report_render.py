"""The report's sections rendered as Markdown and HTML (the same sections, so both say the same), and the
report's files: Markdown, HTML, the sidecar JSON of raw results, and the adoption chart."""

from __future__ import annotations

import html
import json
import pathlib
from typing import Any

from segment_rudderstack.evidence.report import Image, Markdown, Section, Table, sections, verdict
from segment_rudderstack.evidence.report_chart import adoption_chart
from segment_rudderstack.evidence.report_facts import ReportFacts


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(facts: ReportFacts) -> str:
    lines = [f"# Segment → RudderStack migration: `{facts.plan_name}`", ""]
    for section in sections(facts):
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                lines.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
                lines.append("|" + "---|" * len(block.headers))
                lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            elif isinstance(block, Image):
                lines.append(f"![{block.alt}]({block.file})")
            elif isinstance(block, Markdown):
                lines += block.lines
            elif isinstance(block, list):
                lines += [f"- {item}" for item in block]
            else:
                lines.append(str(block))
            lines.append("")
    return "\n".join(lines)


def inline_html(text: str) -> str:
    """Escape, then the two Markdown marks the sections use: **bold** and `code`."""
    escaped = html.escape(text)
    parts = escaped.split("**")
    escaped = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    parts = escaped.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def markdown_to_html(lines: list[str]) -> str:
    """The Markdown subset sections use: ### headings, pipe tables, - bullets, paragraphs."""
    out: list[str] = []
    table: list[list[str]] = []
    bullets: list[str] = []

    def flush() -> None:
        if table:
            head, *body = table
            out.append(
                "<table><thead><tr>" + "".join(f"<th>{inline_html(c)}</th>" for c in head) + "</tr></thead>"
                "<tbody>"
                + "".join(
                    "<tr>" + "".join(f"<td>{inline_html(c)}</td>" for c in row) + "</tr>" for row in body
                )
                + "</tbody></table>"
            )
            table.clear()
        if bullets:
            out.append("<ul>" + "".join(f"<li>{inline_html(b)}</li>" for b in bullets) + "</ul>")
            bullets.clear()

    for line in lines:
        stripped = line.strip()
        if stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):  # skip the |---| separator row
                table.append(cells)
            continue
        if stripped.startswith("- "):
            bullets.append(stripped[2:])
            continue
        flush()
        if stripped.startswith("#"):
            level = min(6, len(stripped) - len(stripped.lstrip("#")))
            out.append(f"<h{level}>{inline_html(stripped.lstrip('#').strip())}</h{level}>")
        elif stripped:
            out.append(f"<p>{inline_html(stripped)}</p>")
    flush()
    return "\n".join(out)


CSS = """body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;color:#222}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
th{background:#f3f3f3}.verdict{font-size:1.2rem;padding:.75rem;border-left:.4rem solid #888;background:#fafafa}
.v-complete{border-color:#2e7d32}.v-failed{border-color:#c62828}.v-waiting,.v-running{border-color:#f9a825}
.v-dry_run,.v-partial{border-color:#1565c0}img{max-width:100%}"""


def section_html(section: Section, kind: str = "") -> str:
    """One report section as HTML (the report's page and the migration view use it)."""
    out = [f"<section id='{html.escape(section.key)}'><h2>{html.escape(section.title)}</h2>"]
    for index, block in enumerate(section.blocks):
        if isinstance(block, Table):
            out.append(
                "<table><thead><tr>"
                + "".join(f"<th>{html.escape(str(h))}</th>" for h in block.headers)
                + "</tr></thead><tbody>"
            )
            out += [
                "<tr>" + "".join(f"<td>{inline_html(str(c))}</td>" for c in row) + "</tr>"
                for row in block.rows
            ]
            out.append("</tbody></table>")
        elif isinstance(block, Image):
            out.append(f"<img src='{html.escape(block.file)}' alt='{html.escape(block.alt)}'>")
        elif isinstance(block, Markdown):
            out.append(markdown_to_html(block.lines))
        elif isinstance(block, list):
            out.append("<ul>" + "".join(f"<li>{inline_html(str(i))}</li>" for i in block) + "</ul>")
        elif section.key == "verdict" and index == 0:
            out.append(f"<p class='verdict v-{kind}'>{inline_html(str(block))}</p>")
        else:
            out.append(f"<p>{inline_html(str(block))}</p>")
    out.append("</section>")
    return "\n".join(out)


def to_html(facts: ReportFacts) -> str:
    kind = verdict(facts).kind
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Migration {html.escape(facts.plan_name)}</title><style>{CSS}</style></head><body>",
        f"<h1>Segment → RudderStack migration: <code>{html.escape(facts.plan_name)}</code></h1>",
    ]
    out += [section_html(section, kind) for section in sections(facts)]
    out.append("</body></html>")
    return "\n".join(out)


def write_report(facts: ReportFacts, folder: pathlib.Path, stem: str) -> dict[str, pathlib.Path]:
    """``<stem>.md``, ``<stem>.html``, ``<stem>.json`` (raw results, changes, task states) and, when there were
    adoption checks, ``<stem>-adoption.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    chart = folder / f"{stem}-adoption.png"
    if adoption_chart(facts, chart):
        facts.chart_file = chart.name
    sidecar = folder / f"{stem}.json"
    facts.extra.setdefault("sidecar_file", sidecar.name)
    raw = {
        "plan": facts.plan_name,
        "run_id": facts.run_id,
        "verdict": verdict(facts).__dict__,
        "generated_at": facts.generated_at.isoformat(),
        "dry_run": facts.dry_run,
        "results": facts.results,
        "changes": facts.changes,
        **({"dry_run_plan": facts.extra["dry_run_plan"]} if "dry_run_plan" in facts.extra else {}),
        "tasks": {
            t: {
                "state": f.state,
                "start": f.start.isoformat() if f.start else None,
                "end": f.end.isoformat() if f.end else None,
            }
            for t, f in facts.tasks.items()
        },
    }
    sidecar.write_text(json.dumps(raw, indent=2, default=str), encoding="utf-8")
    paths = {"markdown": folder / f"{stem}.md", "html": folder / f"{stem}.html", "json": sidecar}
    paths["markdown"].write_text(to_markdown(facts), encoding="utf-8")
    paths["html"].write_text(to_html(facts), encoding="utf-8")
    if facts.chart_file:
        paths["chart"] = chart
    return paths
