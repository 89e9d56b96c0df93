"""The lossless import: CSV, JSON Lines and Parquet files of partners, users and events, and Segment
messages, checked by the rules of KPI-SPEC §2; rejected rows are kept with their reason."""

from partnerkpi.ingest.importer import ImportSummary, fingerprint, import_files
from partnerkpi.ingest.mapping import Mapping, load_mapping
from partnerkpi.ingest.report import summary_table
from partnerkpi.ingest.sources import detect_format, infer_kind

__all__ = [
    "ImportSummary",
    "Mapping",
    "detect_format",
    "fingerprint",
    "import_files",
    "infer_kind",
    "load_mapping",
    "summary_table",
]
