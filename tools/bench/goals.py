"""The goals Postern is measured against (issue #4's targets), in one table.

The report's "target" column and its met / not met verdict come from here and
nowhere else: a goal changed in the issue is changed in one line, and a reader
sees all of them at once instead of hunting for lambdas in the report code.

A goal is judged on medians: of the per-pair Postern/Postfix ratios ("ratio")
or of Postern's own values ("postern"). Some goals are stated for a queue
size (20,000 queued, 100,000 queued): a run with a smaller queue shows the
goal with that size added and no verdict, as a smaller queue says nothing
about it; `exact` goals apply to their size only.
"""
import operator
import statistics
from dataclasses import dataclass

OPS = {"<": operator.lt, "<=": operator.le, ">=": operator.ge, ">": operator.gt}


@dataclass(frozen=True)
class Goal:
    measure: str     # measurement family: "enqueue" covers enqueue-w1 and enqueue-w4
    key: str         # the figure judged
    of: str          # "ratio" (Postern/Postfix) or "postern" (Postern's values)
    op: str          # a key of OPS: figure OP bound means met
    bound: float
    text: str        # what the report's target column says
    size: int | None = None  # the queue size the goal is stated for
    exact: bool = False      # only at exactly `size` (else at `size` and above)
    smaller: str = ""        # added to `text` below `size` (without a verdict)

    def met(self, postern, ratios):
        """True or False; None without Postern values to judge."""
        if not postern:
            return None
        if self.of == "ratio":
            return bool(ratios) and OPS[self.op](statistics.median(ratios), self.bound)
        return OPS[self.op](statistics.median(postern), self.bound)


GOALS = [
    Goal("enqueue", "rate", "ratio", ">=", 1.5, "≥1.5× Postfix"),
    Goal("drop", "wall_ms", "postern", "<=", 5.0, "≤ 5 ms"),
    Goal("drain", "rate", "ratio", ">=", 1.5, "≥1.5× Postfix"),
    Goal("drain", "cpu_s_per_1000", "ratio", "<", 1.0, "lower than Postfix"),
    Goal("drain-tls", "rate", "ratio", ">=", 1.5, "≥1.5× Postfix"),
    Goal("smtp-inject", "rate", "ratio", ">=", 1.5, "≥1.5× Postfix"),   # issue #18
    Goal("smtp-e2e", "rate", "ratio", ">=", 1.5, "≥1.5× Postfix"),
    Goal("first", "seconds", "postern", "<", 0.5, "< 0.5 s", size=20000, smaller=" at 20,000"),
    Goal("list", "seconds", "ratio", "<=", 0.5, "≤ 0.5× Postfix", size=20000, smaller=" at 20,000"),
    Goal("list", "first_line_s", "postern", "<", 0.05, "< 50 ms"),
    Goal("first-line", "seconds", "postern", "<", 0.05, "< 50 ms"),
    Goal("startup", "index_s", "postern", "<", 2.0, "< 2 s", size=100000, exact=True),
    Goal("startup", "index_s", "postern", "<", 20.0, "< 20 s", size=1000000, exact=True),
    Goal("startup", "rss_per_msg", "postern", "<", 150, "< 150 bytes", size=1000000, exact=True,
         smaller=" (judged at 1,000,000)"),
    Goal("startup", "first_s", "postern", "<", 1.0, "< 1 s", size=1000000, exact=True,
         smaller=" (judged at 1,000,000)"),
    Goal("count", "seconds", "postern", "<", 1.0, "< 1 s", size=1000000, exact=True,
         smaller=" (judged at 1,000,000)"),
    Goal("drain", "release_s", "postern", "<", 1.0, "< 1 s"),
    Goal("drain", "first_s", "postern", "<", 1.0, "< 1 s"),
]


def goal_for(measure, key, size=None):
    """(text for the target column, the Goal to judge by or None) for a row."""
    family = measure.split("-w")[0]
    mine = [g for g in GOALS if g.measure == family and g.key == key]
    for g in mine:
        if g.size is None or size is None or (size == g.size if g.exact else size >= g.size):
            return g.text, g
    for g in mine:
        if not g.exact:
            return g.text + g.smaller, None
    return "", None
