"""Letters: templates in a Jinja2 sandbox, Babel filters, recommendations, rendering and writers."""

from crmlist.letters.check import check_templates
from crmlist.letters.environment import find_template, template_ext
from crmlist.letters.job import LETTER_FORMATS, LetterFailure, LetterJob, LetterResult
from crmlist.letters.recommend import compute_recommendations
from crmlist.letters.render import render_letters
from crmlist.letters.writers import safe_file_name

__all__ = [
    "LETTER_FORMATS",
    "LetterFailure",
    "LetterJob",
    "LetterResult",
    "check_templates",
    "compute_recommendations",
    "find_template",
    "render_letters",
    "safe_file_name",
    "template_ext",
]
