"""Token rows -> LM batches: padding, masking, cropping to whole frames, packing, caption dropout."""

import pytest
import torch

from semantilm.data.collator import AudioLMCollator, row_tokens
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer


@pytest.fixture
def sp_tokenizer(sp_model_path, fake_codec):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    return AudioTextTokenizer(sp, AudioTokenLayout.for_codec(fake_codec, text_vocab_size=sp.get_piece_size()))


def rows_for(frames, caption="rain falls"):
    return [{"semantic_ids": list(range(n)), "acoustic_ids": [n % 8] * n, "caption": caption} for n in frames]


def test_collator_pad_masks_text_and_padding(sp_tokenizer):
    lay = sp_tokenizer.layout
    batch = AudioLMCollator(sp_tokenizer, max_length=64)(rows_for([3, 5]))
    ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    prompt = len(sp_tokenizer.text_prompt("rain falls"))
    assert ids.shape == (2, prompt + 2 * 5 + 1)
    assert bool((labels[:, :prompt] == -100).all())
    assert labels[0, prompt + 6].item() == lay.audio_end_id and bool((labels[0, prompt + 7 :] == -100).all())
    assert bool((ids[0, prompt + 7 :] == lay.pad_id).all()) and mask[0].sum().item() == prompt + 7
    assert torch.equal(lay.deinterleave(ids[1, prompt : prompt + 10]), row_tokens(rows_for([5])[0]))


def test_collator_truncates_to_whole_frames_and_packs(sp_tokenizer):
    lay = sp_tokenizer.layout
    prompt = len(sp_tokenizer.text_prompt("rain falls"))
    batch = AudioLMCollator(sp_tokenizer, max_length=prompt + 7)(rows_for([10]))
    assert batch["input_ids"].shape == (1, prompt + 6)  # 3 whole frames, no end token
    assert lay.audio_end_id not in batch["input_ids"].tolist()[0]
    with pytest.raises(ValueError, match="no room for audio"):
        AudioLMCollator(sp_tokenizer, max_length=prompt + 1)(rows_for([2]))
    packed = AudioLMCollator(sp_tokenizer, max_length=16, mode="pack")(rows_for([3, 5, 4]))
    total = 3 * (prompt + 1) + 2 * 12
    assert packed["input_ids"].shape == (-(-total // 16), 16)
    assert packed["attention_mask"].sum().item() == total
    last = total - 16 * (packed["input_ids"].shape[0] - 1)  # ids in the last, padded row
    assert bool((packed["labels"][-1, last:] == -100).all()) and bool((packed["input_ids"][-1, last:] == lay.pad_id).all())
    assert bool((packed["labels"][0, :prompt] == -100).all())  # the first caption is not learnt
    dropped = AudioLMCollator(sp_tokenizer, max_length=64, caption_dropout=1.0)(rows_for([3]))
    assert dropped["input_ids"].shape[1] == len(sp_tokenizer.text_prompt(None)) + 7


def test_row_tokens_and_collator_errors(sp_tokenizer):
    assert row_tokens({"semantic_ids": [1, 2], "acoustic_ids": [3, 4]}).tolist() == [[1, 3], [2, 4]]
    with pytest.raises(ValueError, match="2 semantic but 1 acoustic"):
        row_tokens({"semantic_ids": [1, 2], "acoustic_ids": [3]})
    with pytest.raises(ValueError, match="empty batch"):
        AudioLMCollator(sp_tokenizer)([])
    for kwargs, message in (({"mode": "chunk"}, "mode="), ({"max_length": 3}, "max_length"),
                            ({"caption_dropout": 1.5}, "caption_dropout")):
        with pytest.raises(ValueError, match=message):
            AudioLMCollator(sp_tokenizer, **kwargs)
