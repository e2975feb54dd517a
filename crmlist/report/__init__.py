"""Closing the loop: response, uplift, revenue and ROI of a campaign against its control group, and charts."""

from crmlist.report.formats import report_csv, report_document
from crmlist.report.measure import COLUMNS, Report, Scope, report_campaign

__all__ = ["COLUMNS", "Report", "Scope", "report_campaign", "report_csv", "report_document"]
