"""Plots and the report: each plot's data is a pure function of the trials (``data``); the
renderers (``render``) draw it with matplotlib's object-oriented API only."""

from adamtune.plots.report import figures, render_html, text_report, write_report

__all__ = ["figures", "render_html", "text_report", "write_report"]
