"""The `vidloader` command line: `index`, `bench`, `inspect`."""

from ._bench import run_bench
from ._bench_report import format_table
from ._inspect import contact_sheet, sheet_size
from ._main import build_parser, main
from ._peers import PEERS, PeerUnavailable
from ._workloads import WORKLOADS, ensure_workload

__all__ = [
    "PEERS",
    "WORKLOADS",
    "PeerUnavailable",
    "build_parser",
    "contact_sheet",
    "ensure_workload",
    "format_table",
    "main",
    "run_bench",
    "sheet_size",
]
