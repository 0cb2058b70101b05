"""Speaker (Speaker-Follower instruction writer) and its word vocabulary."""

import json

import pytest
import torch

from vlarena.perception.speaker import BOS, EOS, PAD, UNK, Speaker, WordVocab

SENTENCES = [
    "walk past the sofa. stop at the door",
    "turn left, go to the kitchen",
    "exit the bedroom and wait!",
    "go up the stairs; stop",
]


@pytest.fixture(scope="module")
def vocab():
    return WordVocab.build(SENTENCES)


def test_vocab_specials_and_tokenization(vocab):
    assert [vocab.itos[i] for i in (PAD, BOS, EOS, UNK)] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    ids = vocab.encode("Walk past the SOFA. Stop")
    assert ids[0] == BOS and ids[-1] == EOS
    assert [vocab.itos[i] for i in ids[1:-1]] == ["walk", "past", "the", "sofa", ".", "stop"]
    assert vocab.decode(ids) == "walk past the sofa. stop"
    assert vocab.decode(vocab.encode("turn left, go to the kitchen")) == "turn left, go to the kitchen"
    # decoding stops at eos and skips specials
    assert vocab.decode([BOS, vocab.stoi["walk"], PAD, EOS, vocab.stoi["stop"]]) == "walk"


def test_vocab_unknown_truncation_min_count(vocab):
    ids = vocab.encode("walk to the zebra")
    assert ids[4] == UNK and ids.count(UNK) == 1
    assert vocab.encode("walk past the sofa", max_len=3) == [BOS, vocab.stoi["walk"], EOS]
    assert len(vocab.encode(SENTENCES[0], max_len=5)) == 5
    small = WordVocab.build(SENTENCES, min_count=2)
    assert "the" in small.stoi and "sofa" not in small.stoi
    assert len(small) < len(vocab)
    with pytest.raises(ValueError, match="min_count"):
        WordVocab.build(SENTENCES, min_count=0)
    with pytest.raises(ValueError, match="max_len"):
        vocab.encode("walk", max_len=1)


def test_vocab_dict_round_trip(vocab):
    d = json.loads(json.dumps(vocab.to_dict()))
    again = WordVocab.from_dict(d)
    assert again == vocab and again.to_dict() == vocab.to_dict() and len(again) == len(vocab)
    assert again.encode(SENTENCES[1]) == vocab.encode(SENTENCES[1])
    batch = vocab.encode_batch(SENTENCES)
    assert batch.shape == (4, max(len(vocab.encode(s)) for s in SENTENCES))
    assert [vocab.decode(row) for row in batch] == [vocab.decode(vocab.encode(s)) for s in SENTENCES]


def _feats(lengths, dim, seed=0):
    g = torch.Generator().manual_seed(seed)
    T = max(lengths)
    feats = torch.randn(len(lengths), T, dim, generator=g)
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    return feats * mask.unsqueeze(-1), mask


def test_padding_invariance():
    torch.manual_seed(0)
    model = Speaker(feature_dim=6, vocab_size=20, hidden=16, embed=8).eval()
    feats, mask = _feats([5, 2, 4], 6)
    feats[1, 2:] = 123.0  # garbage in padded steps must not matter
    tokens = torch.randint(4, 20, (3, 7))
    full = model(feats, mask, tokens)
    alone = model(feats[1:2, :2], mask[1:2, :2], tokens[1:2])
    assert full.shape == (3, 6, 20)
    torch.testing.assert_close(full[1:2], alone, atol=1e-5, rtol=1e-5)


def test_bad_input_errors():
    model = Speaker(feature_dim=6, vocab_size=20, hidden=8, embed=4)
    feats, mask = _feats([3, 2], 6)
    tokens = torch.tensor([[BOS, 5, EOS], [BOS, 6, EOS]])
    with pytest.raises(ValueError, match=r"7.*feature_dim 6"):
        model(torch.zeros(2, 3, 7), mask, tokens)
    with pytest.raises(ValueError, match=r"feature_mask shape \(2, 4\).*\(2, 3\)"):
        model(feats, torch.ones(2, 4, dtype=torch.bool), tokens)
    with pytest.raises(ValueError, match="bool"):
        model(feats, mask.float(), tokens)
    with pytest.raises(ValueError, match="real steps first"):
        model(feats, torch.tensor([[True, False, True], [True, True, False]]), tokens)
    with pytest.raises(ValueError, match="batch size"):
        model(feats, mask, tokens[:1])


def test_overfits_tiny_dataset():
    texts = ["go to the red door", "turn left at the sofa", "walk past the table", "stop near the blue lamp"]
    vocab = WordVocab.build(texts)
    assert 15 <= len(vocab) - 4 <= 17
    feats, mask = _feats([3, 4, 5, 6], 10, seed=1)
    tokens = vocab.encode_batch(texts)
    torch.manual_seed(0)
    model = Speaker(feature_dim=10, vocab_size=len(vocab), hidden=32, embed=16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(200):
        loss = model.loss(feats, mask, tokens)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first
    model.eval()
    out = model.generate(feats, mask, max_len=20)
    assert out.shape[1] <= 20 and (out[:, 0] == BOS).all()
    assert [vocab.decode(row) for row in out] == texts
    # layout: after eos only pad; generated rows equal the encoded targets
    assert torch.equal(out, tokens[:, : out.shape[1]]) and (tokens[:, out.shape[1] :] == PAD).all()


def test_generate_determinism_and_sampling():
    torch.manual_seed(0)
    model = Speaker(feature_dim=4, vocab_size=30, hidden=16, embed=8).eval()
    feats, mask = _feats([4, 3], 4)
    a = model.generate(feats, mask, max_len=12)
    b = model.generate(feats, mask, max_len=12)
    assert torch.equal(a, b) and a.shape[1] <= 12
    s1 = model.generate(feats, mask, max_len=12, greedy=False, generator=torch.Generator().manual_seed(1))
    s1b = model.generate(feats, mask, max_len=12, greedy=False, generator=torch.Generator().manual_seed(1))
    s2 = model.generate(feats, mask, max_len=12, greedy=False, generator=torch.Generator().manual_seed(2))
    assert torch.equal(s1, s1b)
    assert not torch.equal(s1, s2)
    for out in (a, s1, s2):
        for row in out.tolist():  # after eos there is only pad
            if EOS in row:
                assert all(t == PAD for t in row[row.index(EOS) + 1 :])
    with pytest.raises(ValueError, match="temperature"):
        model.generate(feats, mask, greedy=False, temperature=0.0)
