"""ROX Workbook: link employee and customer experience to business results."""

__version__ = "0.1.0"
