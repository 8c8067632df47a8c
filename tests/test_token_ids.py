"""Inputs of token ids and masks (symshape.Input): a language model's sizes, against torch's
forwards with integer inputs; the refusal, with what to write, where a model that embeds its
input is given floats; Input on the command line (``--input T:int64``)."""

import os
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import symshape
from oracle import assert_agrees, grid, members, scan
from symshape import Input
from symshape.cli import main
from symshape.inputs import parse_inputs

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))

from gpt import GPT  # noqa: E402

IDS = Input(("T",), torch.long)


def test_a_gpt_accepts_the_lengths_its_position_table_holds():
    model = GPT(block_size=12).eval()
    analysis = symshape.analyze(model, IDS)
    assert analysis.valid_sizes().summary() == "T ∈ [1, 12]"
    assert members(analysis.valid_sizes(), ["T"], 16) == scan(model, IDS, ["T"], 16)
    assert str(analysis).splitlines()[0] == "input (N, T) int64, eval mode"


def test_a_padding_mask_is_a_bool_input_by_keyword():
    model = GPT(block_size=12).eval()
    spec = (IDS,), {"pad_mask": Input(("T",), torch.bool)}
    analysis = symshape.analyze(model, spec)
    assert analysis.valid_sizes().summary() == "T ∈ [1, 12]"
    assert assert_agrees(model, spec, grid(["T"], [1, 5, 12, 13])) == 3
    assert analysis.verify(sizes=[{"T": 3}, {"T": 20}]).ok


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_token_ids_of_either_integer_dtype_embed(dtype):
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(4 * 6, 2))
    analysis = symshape.analyze(model, Input(("T",), dtype))
    assert str(analysis.formula()) == "4*T" and analysis.at(T=6).in_features["2"] == 24
    assert assert_agrees(model, Input(("T",), dtype), grid(["T"], [1, 5, 6, 7])) == 1


def test_floating_token_ids_are_refused_with_the_dtype_to_give():
    with pytest.raises(symshape.InvalidArgument) as e:
        symshape.analyze(GPT().eval(), ("T",))
    text = str(e.value)
    assert "'indices'" in text and "symshape.Input(('T',), torch.long)" in text and "--input T:int64" in text
    with pytest.raises(symshape.InvalidArgument) as e:  # several inputs: the floating ones named
        symshape.analyze(GPT().eval(), {"idx": ("T",), "pad_mask": Input(("T",), torch.bool)})
    assert "where idx holds token ids" in str(e.value)


def test_an_input_takes_an_integer_or_bool_dtype_only():
    with pytest.raises(symshape.InvalidArgument, match="integer dtype or torch.bool"):
        Input(("T",), torch.float16)
    inputs = parse_inputs((((3, "H"),), {"ids": Input(("T",), torch.int32)}))
    assert inputs.dtypes == {"ids": torch.int32} and str(inputs) == "input 0 (3, H), ids (T) int32"
    assert parse_inputs(inputs.spec()).dtypes == inputs.dtypes  # (the spec round-trips)


def test_the_command_line_takes_a_dtype_after_a_colon(capsys):
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "gpt.py")
    assert main(["sizes", f"{path}:GPT", "--input", "T:int64", "--input", "pad_mask=T:bool", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"inputs": [{"shape": ["T"], "dtype": "int64"}, {"name": "pad_mask", "shape": ["T"], "dtype": "bool"}]' in out
    assert '"text": "T \\u2208 [1, 64]"' in out
    assert main(["sizes", f"{path}:GPT", "--input", "T:float32"]) == 2
    assert "'float32' is not a dtype an input takes" in capsys.readouterr().err
    assert main(["sizes", f"{path}:GPT", "--input", "T"]) == 2
    assert "--input T:int64" in capsys.readouterr().err


class _TextCNN(nn.Module):
    """Kim's CNN for sentences: embeddings convolved over time, optionally with a learned
    position table, flattened into a Linear (its in_features then depends on T)."""

    def __init__(self, kernel: int, stride: int, table: int, flatten: bool):
        super().__init__()
        self.emb = nn.Embedding(7, 3)
        self.pos = nn.Embedding(table, 3) if table else None
        self.conv = nn.Conv1d(3, 2, kernel, stride)
        self.flatten = flatten
        self.fc = nn.Linear(2 * 5 if flatten else 2, 2)

    def forward(self, ids):
        x = self.emb(ids)
        if self.pos is not None:
            x = x + self.pos(torch.arange(ids.shape[1], device=ids.device))
        x = self.conv(x.transpose(1, 2))
        x = x.flatten(1) if self.flatten else F.max_pool1d(x, x.shape[-1]).squeeze(-1)
        return self.fc(x)


@settings(max_examples=25, deadline=None)
@given(kernel=st.integers(1, 5), stride=st.integers(1, 3), table=st.sampled_from([0, 6, 11]), flatten=st.booleans())
def test_drawn_text_cnns_accept_what_torch_accepts(kernel, stride, table, flatten):
    model = _TextCNN(kernel, stride, table, flatten).eval()
    analysis = symshape.analyze(model, IDS)
    assert members(analysis.valid_sizes(), ["T"], 16) == scan(model, IDS, ["T"], 16)
    assert_agrees(model, IDS, grid(["T"], [1, 4, 9, 13]))


def test_an_export_spec_of_token_ids_exports_with_integer_examples():
    spec = symshape.analyze(GPT(block_size=12).eval(), IDS).export_spec()
    assert "# example inputs: torch.zeros((1, 2), dtype=torch.int64)" in spec.code()
    assert spec.checked is not None and spec.checked.works


def test_a_refusals_advice_quotes_the_input_as_it_is_written():
    with pytest.raises(symshape.UnsupportedOperation) as e:  # (a 1-D call into b, t = idx.size())
        symshape.analyze(GPT().eval(), IDS, batch=None)
    assert "symshape.analyze(model.wte, symshape.Input(('T',), torch.int64))" in str(e.value)
