"""Review preference pairs in a local web page: choose between two motion descriptions.

    motionsight dataset review PAIRS.jsonl --out decisions.jsonl      # serve the page
    motionsight dataset review PAIRS.jsonl --out decisions.jsonl --export reviewed/

`pairs` reads the pairs (the dataset's pairs JSONL, or preference records), `store` appends and
replays the decisions, `render` draws the visual prompts a pair has no file for, `server` is the
aiohttp application, `cli` the command. Only `render` imports torch, and only when it runs.
"""

from .pairs import Candidate, Pair, ReviewError, load_pairs
from .store import DecisionStore, agreement, reviewed_records

__all__ = [
    "Candidate",
    "DecisionStore",
    "Pair",
    "ReviewError",
    "agreement",
    "load_pairs",
    "reviewed_records",
]
