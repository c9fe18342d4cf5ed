"""ROX Workbook: link employee and customer experience to business results."""

import warnings as _warnings

__version__ = "0.1.0"

# ibis 12 calls APIs that pandas 3 and DuckDB 2 deprecate; the warnings are ibis's own, not
# actionable by a consultant, and would clutter every notebook. Filtered narrowly by message.
_warnings.filterwarnings("ignore", message=".*future.infer_string.*", module=r"ibis\.")
_warnings.filterwarnings("ignore", message="fetch_arrow_table.*", module=r"ibis\.")
# lifelines 0.30 calls pandas reductions positionally (keyword-only from pandas 4)
_warnings.filterwarnings("ignore", message=".*will be keyword-only.*", module=r"lifelines\.")
