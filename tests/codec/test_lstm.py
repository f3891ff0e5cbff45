"""The acoustic encoder's LSTM: its fast form (rows one at a time for
codec.fast.lstm.ROW_BY_ROW_BATCHES, stepping through time for wide LSTMs) computes what one
``torch.nn.LSTM`` call on the whole batch computes; with the fast paths off and in training it is
one ``nn.LSTM`` call; the stored weights (state-dict keys) are those of ``nn.LSTM``."""

from __future__ import annotations

import pytest
import torch

from codec import SemantiCodecConfig, fast_paths
from codec.acoustic import AcousticEncoder
from codec.fast import fast_forms
from codec.fast import lstm as fast_lstm
from codec.fast.lstm import ROW_BY_ROW_BATCHES, lstm_by_steps


def _encoder(layers: int = 3, seed: int = 0) -> AcousticEncoder:
    torch.manual_seed(seed)
    return AcousticEncoder(SemantiCodecConfig.tiny(lstm_layers=layers)).eval()


def _inputs(enc: AcousticEncoder, batch: int, frames: int = 24, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, enc.lstm.input_size, generator=g)


def _reference(enc: AcousticEncoder, inputs: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The official computation: padding rows set to -1, one nn.LSTM call on the whole batch."""
    keep = torch.arange(inputs.shape[1])[None, :] < valid[:, None]
    masked = torch.where(keep[..., None], inputs, torch.full_like(inputs, -1.0))
    with torch.no_grad():
        return enc.proj(enc.lstm(masked)[0])


@pytest.fixture
def lstm_calls(monkeypatch) -> list[int]:
    """The batch size of every call of ``nn.LSTM.forward`` (the plain module), however it is reached."""
    calls: list[int] = []
    plain = torch.nn.LSTM.forward

    def counted(self, x, hx=None):
        calls.append(x.shape[0])
        return plain(self, x, hx)

    monkeypatch.setattr(torch.nn.LSTM, "forward", counted)
    return calls


def test_row_by_row_batches_are_real_batches():
    assert 1 not in ROW_BY_ROW_BATCHES and all(b > 1 for b in ROW_BY_ROW_BATCHES)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("layers", [1, 2, 4])
@pytest.mark.parametrize("batch", [1, 2, 3, 5])
def test_inference_equals_one_lstm_call(layers, batch, fast):
    enc = _encoder(layers)
    x = _inputs(enc, batch)
    valid = torch.tensor([24, 0, 7, 24, 13][:batch])  # full, all padding, partial
    with torch.no_grad(), fast_paths(fast):
        ours = enc(x, valid)
    torch.testing.assert_close(ours, _reference(enc, x, valid), atol=1e-5, rtol=1e-5)


def test_rows_do_not_depend_on_their_batch():
    enc = _encoder(2)
    x = _inputs(enc, 4, seed=3)
    valid = torch.tensor([24, 10, 0, 5])
    with torch.inference_mode():
        together = enc(x, valid)
        pairs = torch.cat([enc(x[i : i + 2], valid[i : i + 2]) for i in (0, 2)])
        alone = torch.cat([enc(x[i : i + 1], valid[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(pairs, together, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone, together, atol=1e-5, rtol=1e-5)


def test_training_uses_nn_lstm_gradients(lstm_calls):
    enc = _encoder(2).train()
    x = _inputs(enc, 2, seed=4)
    valid = torch.tensor([24, 9])
    out = enc(x, valid)
    assert lstm_calls == [2]  # one nn.LSTM call on the whole batch when autograd records
    out.square().mean().backward()
    for name, param in enc.lstm.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    torch.testing.assert_close(out.detach(), _reference(enc, x, valid), atol=1e-5, rtol=1e-5)


def test_inference_splits_only_listed_batch_sizes(lstm_calls):
    enc = _encoder(1)
    with torch.no_grad():
        for batch in (1, 2, 3, 8):
            enc(_inputs(enc, batch), torch.full((batch,), 24))
    expected = []
    for batch in (1, 2, 3, 8):
        expected += [1] * batch if batch in ROW_BY_ROW_BATCHES else [batch]
    assert lstm_calls == expected


def test_without_fast_paths_every_batch_is_one_plain_lstm_call(lstm_calls, monkeypatch):
    enc = _encoder(2)
    monkeypatch.setattr(fast_lstm, "MIN_HIDDEN_BY_STEPS", enc.lstm.hidden_size)  # would step through time
    with torch.no_grad(), fast_paths(False):
        for batch in (1, 2, 3):
            enc(_inputs(enc, batch), torch.full((batch,), 24))
            assert "forward" not in enc.lstm.__dict__
    assert lstm_calls == [1, 2, 3]


def test_the_fast_form_returns_what_nn_lstm_returns():
    """Output and final states, for a batch split row by row and one stepped through time."""
    enc = _encoder(2)
    for batch in (2, 3):
        x = _inputs(enc, batch, seed=batch)
        with torch.no_grad():
            expected_out, (expected_h, expected_c) = enc.lstm(x)
            with fast_forms(enc) as count:
                out, (h, c) = enc.lstm(x)
        assert count == 1
        torch.testing.assert_close(out, expected_out, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(h, expected_h, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(c, expected_c, atol=1e-5, rtol=1e-5)


def test_state_dict_keys_are_nn_lstm_keys():
    enc = _encoder(2)
    lstm_keys = {f"lstm.{k}" for k in torch.nn.LSTM(4, 4, num_layers=2, bidirectional=True).state_dict()}
    assert set(enc.state_dict()) == lstm_keys | {"proj.weight", "codebook"}


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
def test_stepping_through_time_equals_nn_lstm(bidirectional, layers):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(12, 16, num_layers=layers, batch_first=True, bidirectional=bidirectional).eval()
    x = torch.randn(3, 9, 12)
    with torch.no_grad():
        out, (h, c) = lstm_by_steps(lstm, x)
        expected_out, (expected_h, expected_c) = lstm(x)
    torch.testing.assert_close(out, expected_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, expected_h, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c, expected_c, atol=1e-5, rtol=1e-5)


def test_stepping_through_time_refuses_projections():
    lstm = torch.nn.LSTM(4, 8, proj_size=2, batch_first=True)
    with pytest.raises(ValueError, match="projections"):
        lstm_by_steps(lstm, torch.randn(2, 3, 4))


def test_an_lstm_without_a_fast_form_is_named_in_a_warning():
    from codec.fast import FastFormSkipped

    model = torch.nn.Sequential(torch.nn.LSTM(4, 8)).eval()  # time-major
    with torch.no_grad(), pytest.warns(FastFormSkipped, match=r"Sequential\.0 \(the fast LSTM takes batch-first"):
        with fast_forms(model) as count:
            model(torch.randn(3, 2, 4))
    assert count == 0


def test_wide_lstms_step_through_time_at_batch_two_and_more(lstm_calls, monkeypatch):
    enc = _encoder(2)
    monkeypatch.setattr(fast_lstm, "MIN_HIDDEN_BY_STEPS", enc.lstm.hidden_size)
    cases = [(_inputs(enc, b), torch.tensor([24, 10, 3, 24, 1][:b])) for b in (1, 2, 5)]
    expected = [_reference(enc, x, valid) for x, valid in cases]
    lstm_calls.clear()
    with torch.no_grad():
        outputs = [enc(x, valid) for x, valid in cases]
    assert lstm_calls == [1]  # only batch 1 went through nn.LSTM
    for out, ref in zip(outputs, expected, strict=True):
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
