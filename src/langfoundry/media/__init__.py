"""Media in: scans and PDFs through OCR, and documents through sentence alignment, into text records."""
