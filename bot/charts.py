"""The digest's picture: a bar chart of registration progress per unit, as PNG bytes.

matplotlib is imported inside the function, with the Agg backend and an explicit Figure
(no pyplot, no global figure registry): a bot that never sends a digest never loads it, and
every chart's memory is released when the function returns.
"""

from __future__ import annotations

import io
import textwrap

from handlers.i18n import _, current_locale
from handlers.text import format_number
from storage.stats import DigestData, Progress

MAX_BARS = 30
# Unit names are long and alike ("Công đoàn Công ty ..."): two lines of this width each.
LABEL_WIDTH = 30
BANDS = ((50.0, "#c0392b"), (80.0, "#e67e22"), (float("inf"), "#27ae60"))


def _label(name: str) -> str:
    lines = textwrap.wrap(name, LABEL_WIDTH)
    if len(lines) > 2:
        lines = [lines[0], textwrap.shorten(" ".join(lines[1:]), LABEL_WIDTH, placeholder="…")]
    return "\n".join(lines)


def _colour(rate: float) -> str:
    return next(colour for limit, colour in BANDS if rate < limit)


def _rate(progress: Progress) -> float:
    return 100.0 * progress.registered / progress.members if progress.members else 0.0


def progress_chart_png(data: DigestData) -> bytes | None:
    """Share of members who registered, per unit of the digest's breakdown (None: no units).

    With more units than fit, the ones furthest behind are shown: those are the ones an
    officer has to call.
    """
    rows = [(c.name, c.progress) for c in data.children]
    if not rows:
        return None
    title = _("Registration progress by unit")
    if len(rows) > MAX_BARS:
        rows = sorted(rows, key=lambda r: (_rate(r[1]), r[0]))[:MAX_BARS]
        title = _("Registration progress: the {n} units furthest behind").format(n=MAX_BARS)
    locale = current_locale()
    rows.reverse()  # barh draws bottom-up; the first unit belongs at the top

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height = 1.8 + 0.5 * len(rows)
    figure = Figure(figsize=(9, height), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    labels = [_label(name) for name, _p in rows]
    rates = [_rate(progress) for _name, progress in rows]
    colours = [_colour(r) for r in rates]
    bars = axes.barh(range(len(rows)), rates, color=colours, height=0.65)
    axes.set_yticks(range(len(rows)), labels, fontsize=9)
    # Room right of 100% for the "done/total" labels and the legend.
    axes.set_xlim(0, 132)
    axes.set_xticks([0, 20, 40, 60, 80, 100])
    axes.set_ylim(-0.6, len(rows) - 0.4)
    axes.set_xlabel(_("Members who registered (%)"), fontsize=9)
    axes.set_title(f"{title}\n{data.unit_name} – {data.campaign_name}", fontsize=10)
    axes.grid(axis="x", alpha=0.3)
    axes.spines[["top", "right"]].set_visible(False)
    # The colours mean: far behind, on the way, nearly everyone.
    from matplotlib.patches import Patch

    axes.legend(
        handles=[
            Patch(color=BANDS[0][1], label="< 50%"),
            Patch(color=BANDS[1][1], label="50–80%"),
            Patch(color=BANDS[2][1], label="≥ 80%"),
        ],
        loc="lower right",
        fontsize=8,
        framealpha=0.9,
    )
    for bar, (_name, progress) in zip(bars, rows, strict=True):
        axes.text(
            bar.get_width() + 1,
            bar.get_y() + bar.get_height() / 2,
            "/".join(format_number(n, locale) for n in (progress.registered, progress.members)),
            va="center",
            fontsize=8,
        )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
