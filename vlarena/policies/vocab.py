"""The fallback tokenizer: a fixed WordPiece vocabulary built in-process (no files, no hub).

The vocabulary (version 1) is the words of our instruction generators (scene catalog, R2R-style
grammar, ObjectNav templates) and of BabyAI missions, plus every letter and digit as a word and as
a `##` continuation, so that no alphanumeric text maps to [UNK]: an unknown word is spelt out.
Token ids are positions in `VOCABULARY`; append new words at the end of `WORDS`, never reorder
(ids are part of saved checkpoints). tests/test_policies_language.py checks that the catalog's
and the grammar's words are all whole tokens.
"""

from __future__ import annotations

import string

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

WORDS = """
a about above across after again ahead all along an and another are around at away back basket bathroom bathtub
be bed bedroom before behind beside between bin black blue bookcase books bookshelf bottom box brown by cabinet can
chair close closet coffee come continue corner corridor couch counter cross desk dining do door doorway down
dresser dryer each end enter entrance exit far find first fish floor follow for forward fridge from front get go
going green grey hall hallway halt hang have head here house in inside into is it kitchen lamp laundry leave left
living lounge machine make microwave move navigate near nearest next nightstand now of office on once onto open
opposite orange out outside over pass passing past piano pink plant potted purple rack reach red refrigerator right
room second shoe shower side sink sofa spin stairs stand step still stool stop stove straight study table take tank
television that the then there third this through to toilet top toward towards trash turn tv until up wait walk
wardrobe washing way when where which white with yellow you your armchair ball key pick put object grab drop
keep
""".split()

PUNCTUATION = tuple(".,;:'!?-()\"")
CHARACTERS = tuple(string.ascii_lowercase + string.digits)


def _build() -> tuple[str, ...]:
    out: list[str] = list(SPECIAL_TOKENS)
    seen = set(out)
    for tok in (*WORDS, *PUNCTUATION, *CHARACTERS, *(f"##{c}" for c in CHARACTERS)):
        if tok not in seen:
            seen.add(tok)
            out.append(tok)
    return tuple(out)


VOCABULARY: tuple[str, ...] = _build()


def build_fallback_tokenizer():
    """A BERT-style uncased WordPiece tokenizer over `VOCABULARY` ([CLS] text [SEP], [PAD] = 0)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(VOCABULARY)}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, clean_text=True, strip_accents=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)
