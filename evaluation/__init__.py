"""Benchmark evaluation: readers, official scoring, resumable runs, executors, export."""

from .benchmarks import BenchmarkFormatError, BenchmarkQuestion, load_benchmark
from .export import export_results
from .results import ResultRecord, ResultsFileError, ResultsStore, load_results
from .runner import EvalReport, run_eval
from .scoring import compare_tables, compute_table, format_table, score_output

__all__ = [
    "BenchmarkFormatError",
    "BenchmarkQuestion",
    "EvalReport",
    "ResultRecord",
    "ResultsFileError",
    "ResultsStore",
    "compare_tables",
    "compute_table",
    "export_results",
    "format_table",
    "load_benchmark",
    "load_results",
    "run_eval",
    "score_output",
]
