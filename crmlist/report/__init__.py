"""Closing the loop: response, uplift, revenue and ROI of campaigns against their control groups, compared, charted."""

from crmlist.report.compare import COMPARISON_COLUMNS, Comparison, compare_campaigns
from crmlist.report.formats import report_csv, report_document
from crmlist.report.measure import COLUMNS, Report, Scope, report_campaign

__all__ = [
    "COLUMNS",
    "COMPARISON_COLUMNS",
    "Comparison",
    "Report",
    "Scope",
    "compare_campaigns",
    "report_campaign",
    "report_csv",
    "report_document",
]
