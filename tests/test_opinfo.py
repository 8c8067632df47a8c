"""torch's OpInfo samples (op_db) as a differential corpus: every check agrees with torch.

The default run takes the first two samples of each op (tests/opinfo_corpus.QUICK_PER_OP);
``pytest -m opinfo`` takes all of them. See tests/opinfo_corpus.py for what is checked, and
docs/verify.md for the table of the last full run.
"""

import collections

import pytest

pytest.importorskip("expecttest")  # torch.testing._internal imports it

import opinfo_corpus  # noqa: E402

#: every refusal is one where torch raises too ("torch refuses too"): a squeeze whose rank
#: depends on the size is two cases (Analysis.cases); unbind and split along a size-dependent dim
#: return a number of tensors that is a formula of the sizes (symshape.tensor.Repeated); negative
#: circular padding follows torch's own steps (symshape.rules.pad.circular_outcome)
GAP = "refused "


def _check(quick: bool):
    table, details = opinfo_corpus.run(quick=quick)
    total = sum(table.values(), collections.Counter())
    wrong = [d for d in details if d.startswith(("WRONG", "CRASH"))]
    assert not wrong, "\n".join(wrong)
    gaps = [d for d in details if d.startswith(GAP)]
    assert not gaps, "refused where torch runs:\n" + "\n".join(gaps)
    assert total["checks"] > (1500 if quick else 50000), dict(total)
    assert set(table) == set(opinfo_corpus.OPS), set(opinfo_corpus.OPS) - set(table)  # every op has samples
    return table


def test_opinfo_samples_quick():
    _check(quick=True)


@pytest.mark.opinfo
def test_opinfo_samples_all():
    _check(quick=False)


@pytest.mark.parametrize("sample", ["WRONG x", "CRASH y", "refused z: something new"])
def test_the_corpus_check_fails_on_a_wrong_answer(sample, monkeypatch):
    """The check itself can fail: a wrong answer, a crash or an undocumented refusal is reported."""
    monkeypatch.setattr(opinfo_corpus, "run", lambda quick: ({}, [sample]))
    with pytest.raises(AssertionError):
        _check(quick=True)


def test_a_refusal_where_torch_raises_too_is_no_gap(monkeypatch):
    table = {op: collections.Counter(checks=100) for op in opinfo_corpus.OPS}
    monkeypatch.setattr(opinfo_corpus, "run", lambda quick: (table, ["torch refuses too, refused z (3,): bad dim"]))
    assert _check(quick=True) is table
