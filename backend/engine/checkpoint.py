"""Write random-weight Qwen3-TTS Base checkpoints in the published layout, fully offline.

No real weights can be downloaded in CI or on the benchmark machine, so tests and benchmarks load these
through qwen-tts's real loader: `tiny` (~20 MB, CPU in seconds) for tests and the demo, `0.6b` / `1.7b` with the
published shapes for GPU timing (speed per frame does not depend on the weights' values).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

CODEC_IDS = dict(
    codec_pad_id=2148, codec_bos_id=2149, codec_eos_token_id=2150,
    codec_think_id=2154, codec_nothink_id=2155, codec_think_bos_id=2156, codec_think_eos_id=2157,
)
LANGUAGE_IDS = {
    "chinese": 2055, "english": 2050, "german": 2053, "italian": 2070, "portuguese": 2071,
    "spanish": 2054, "japanese": 2058, "korean": 2064, "french": 2061, "russian": 2069,
}
_FULL_PREDICTOR = dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=5,
                       num_attention_heads=16, num_key_value_heads=8, head_dim=128)

PRESETS: dict[str, dict] = {
    "tiny": dict(
        talker=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=16, text_hidden_size=64, mrope_section=[4, 2, 2]),
        predictor=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=8),
        speaker=dict(enc_channels=[32, 32, 32, 32, 96], enc_attention_channels=16, enc_se_channels=16),
        text_vocab_size=512, dtype="float32", size_tag="0b6",
        st_enc=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                    num_key_value_heads=2, head_dim=16, num_filters=4, codebook_dim=16,
                    vector_quantization_hidden_dimension=16, upsample_groups=32),
        st_dec=dict(latent_dim=32, codebook_dim=16, decoder_dim=32, hidden_size=32, intermediate_size=64,
                    num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, head_dim=16,
                    vector_quantization_hidden_dimension=16),
    ),
    "0.6b": dict(
        talker=dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                    num_key_value_heads=8, head_dim=128, text_hidden_size=2048, mrope_section=[24, 20, 20]),
        predictor=_FULL_PREDICTOR, speaker={}, text_vocab_size=151936, dtype="bfloat16", size_tag="0b6",
        st_enc={}, st_dec={},
    ),
    "1.7b": dict(
        talker=dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                    num_key_value_heads=8, head_dim=128, text_hidden_size=2048, mrope_section=[24, 20, 20]),
        predictor=_FULL_PREDICTOR, speaker={}, text_vocab_size=151936, dtype="bfloat16", size_tag="1b7",
        st_enc={}, st_dec={},
    ),
}

# Published Qwen3-TTS-Tokenizer-12Hz shapes: Mimi encoder + Qwen decoder, 16 codebooks x 2048, 1920 samples/frame.
_ST_ENCODER = dict(
    _frame_rate=12.5, audio_channels=1, codebook_dim=256, codebook_size=2048, compress=2,
    dilation_growth_rate=2, head_dim=64, hidden_act="gelu", hidden_size=512, intermediate_size=2048,
    kernel_size=7, last_kernel_size=3, layer_scale_initial_scale=0.01, max_position_embeddings=8000,
    norm_eps=1e-05, normalize=False, num_attention_heads=8, num_filters=64, num_hidden_layers=8,
    num_key_value_heads=8, num_quantizers=32, num_residual_layers=1, num_semantic_quantizers=1,
    pad_mode="constant", residual_kernel_size=3, rope_theta=10000.0, sampling_rate=24000,
    sliding_window=250, trim_right_ratio=1.0, upsample_groups=512, upsampling_ratios=[8, 6, 5, 4],
    use_cache=False, use_causal_conv=True, use_conv_shortcut=False, vector_quantization_hidden_dimension=256,
)
_ST_DECODER = dict(
    attention_bias=False, latent_dim=1024, codebook_dim=512, codebook_size=2048, decoder_dim=1536,
    hidden_act="silu", hidden_size=512, intermediate_size=1024, layer_scale_initial_scale=0.01,
    max_position_embeddings=8000, head_dim=64, num_attention_heads=16, num_hidden_layers=8,
    num_key_value_heads=16, num_quantizers=16, num_semantic_quantizers=1, rms_norm_eps=1e-05,
    rope_theta=10000, semantic_codebook_size=4096, sliding_window=72, upsample_rates=[8, 5, 4, 3],
    upsampling_ratios=[2, 2], vector_quantization_hidden_dimension=512,
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>"]
ROLE_WORDS = ["assistant", "user", "system"]  # must be single tokens: qwen-tts slices input_ids[:, :3]


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable-character map that byte-level BPE vocabularies are written in."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes, extra = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def write_text_tokenizer(out: Path) -> dict[str, int]:
    """A synthetic Qwen2 byte-level BPE: 256 byte tokens, merges for the role words, Qwen special tokens."""
    b2u = _byte_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    merges: list[str] = []
    for word in ROLE_WORDS:
        symbols = [b2u[c] for c in word.encode()]
        current = symbols[0]
        for symbol in symbols[1:]:
            merges.append(f"{current} {symbol}")
            current += symbol
            vocab.setdefault(current, len(vocab))
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    special_ids = {token: len(vocab) + i for i, token in enumerate(SPECIAL_TOKENS)}
    tokenizer_config = {
        "add_bos_token": False, "add_prefix_space": False,
        "added_tokens_decoder": {
            str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                     "single_word": False, "special": True}
            for t, i in special_ids.items()
        },
        "additional_special_tokens": SPECIAL_TOKENS[1:], "bos_token": None, "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>", "unk_token": None, "clean_up_tokenization_spaces": False,
        "errors": "replace", "model_max_length": 131072, "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
    }
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2), encoding="utf-8")
    return special_ids


def build_configs(preset: dict, special_ids: dict[str, int]) -> tuple[dict, dict]:
    """The main model's and the speech tokenizer's config.json for a preset."""
    talker, predictor = preset["talker"], preset["predictor"]
    attention = dict(hidden_act="silu", attention_bias=False, attention_dropout=0.0, rms_norm_eps=1e-06,
                     rope_theta=1000000, use_cache=True, initializer_range=0.02)
    predictor_cfg = dict(predictor, **attention, max_position_embeddings=65536, rope_scaling=None,
                         vocab_size=2048, num_code_groups=16,
                         layer_types=["full_attention"] * predictor["num_hidden_layers"])
    talker_cfg = dict(
        {k: v for k, v in talker.items() if k != "mrope_section"}, **attention,
        max_position_embeddings=32768, position_id_per_seconds=13, use_sliding_window=False, sliding_window=None,
        rope_scaling={"interleaved": True, "mrope_section": talker["mrope_section"], "rope_type": "default"},
        vocab_size=3072, num_code_groups=16, text_vocab_size=preset["text_vocab_size"],
        codec_language_id=dict(LANGUAGE_IDS), spk_id={}, spk_is_dialect={}, **CODEC_IDS,
        code_predictor_config=predictor_cfg,
    )
    speaker_cfg = dict(mel_dim=128, enc_dim=talker["hidden_size"], enc_channels=[512, 512, 512, 512, 1536],
                       enc_kernel_sizes=[5, 3, 3, 3, 1], enc_dilations=[1, 2, 3, 4, 1], enc_attention_channels=128,
                       enc_res2net_scale=8, enc_se_channels=128, sample_rate=24000)
    speaker_cfg.update(preset["speaker"])
    main_cfg = dict(
        architectures=["Qwen3TTSForConditionalGeneration"], model_type="qwen3_tts",
        tokenizer_type="qwen3_tts_tokenizer_12hz", tts_model_type="base", tts_model_size=preset["size_tag"],
        im_start_token_id=special_ids["<|im_start|>"], im_end_token_id=special_ids["<|im_end|>"],
        tts_pad_token_id=special_ids["<tts_pad>"], tts_bos_token_id=special_ids["<tts_text_bos>"],
        tts_eos_token_id=special_ids["<tts_text_eod>"], talker_config=talker_cfg,
        speaker_encoder_config=speaker_cfg, dtype=preset["dtype"], transformers_version="4.57.3",
    )
    encoder, decoder = copy.deepcopy(_ST_ENCODER), copy.deepcopy(_ST_DECODER)
    encoder.update(preset["st_enc"])
    decoder.update(preset["st_dec"])
    tokenizer_cfg = dict(
        architectures=["Qwen3TTSTokenizerV2Model"], model_type="qwen3_tts_tokenizer_12hz",
        encoder_valid_num_quantizers=16, input_sample_rate=24000, output_sample_rate=24000,
        decode_upsample_rate=1920, encode_downsample_rate=1920, encoder_config=encoder, decoder_config=decoder,
        dtype=preset["dtype"], transformers_version="4.57.3",
    )
    return main_cfg, tokenizer_cfg


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def _save_weights(module, path: Path, dtype) -> int:
    from safetensors.torch import save_file

    state = {k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous()
             for k, v in module.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})
    return sum(v.numel() for v in state.values())


def is_checkpoint(path: Path) -> bool:
    """True when `path` holds every file `Qwen3TTSModel.from_pretrained` needs."""
    needed = ["config.json", "generation_config.json", "model.safetensors", "vocab.json", "merges.txt",
              "tokenizer_config.json", "speech_tokenizer/config.json", "speech_tokenizer/model.safetensors",
              "speech_tokenizer/preprocessor_config.json"]
    return all((path / name).is_file() for name in needed)


def build_random_checkpoint(preset: str, out: Path, *, seed: int = 0, device: str = "cpu",
                            progress: Callable[[str], None] = lambda _msg: None) -> Path:
    """Write a random-weight checkpoint for `preset` into `out` and return it.

    `device="cuda"` builds the full-size presets in seconds instead of minutes.
    """
    import torch
    from qwen_tts.core import Qwen3TTSTokenizerV2Config, Qwen3TTSTokenizerV2Model
    from qwen_tts.core.models import Qwen3TTSConfig, Qwen3TTSForConditionalGeneration

    spec = PRESETS[preset]
    dtype = getattr(torch, spec["dtype"])
    out = Path(out)
    (out / "speech_tokenizer").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    special_ids = write_text_tokenizer(out)
    main_cfg, tokenizer_cfg = build_configs(spec, special_ids)
    _write_json(out / "config.json", main_cfg)
    _write_json(out / "generation_config.json", dict(
        do_sample=True, temperature=0.9, top_p=1.0, top_k=50, repetition_penalty=1.05, subtalker_dosample=True,
        subtalker_temperature=0.9, subtalker_top_p=1.0, subtalker_top_k=50, max_new_tokens=8192))
    _write_json(out / "speech_tokenizer" / "config.json", tokenizer_cfg)
    _write_json(out / "speech_tokenizer" / "preprocessor_config.json", dict(
        feature_extractor_type="EncodecFeatureExtractor", feature_size=1, sampling_rate=24000,
        padding_side="right", padding_value=0.0, return_attention_mask=True, chunk_length_s=None, overlap=None))

    previous_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            progress("talker + code predictor + speaker encoder")
            config = Qwen3TTSConfig(**{k: v for k, v in main_cfg.items() if k not in ("architectures", "model_type")})
            model = Qwen3TTSForConditionalGeneration(config).eval()
            _save_weights(model, out / "model.safetensors", dtype)
            del model
            progress("speech tokenizer")
            tokenizer = Qwen3TTSTokenizerV2Model(Qwen3TTSTokenizerV2Config(
                **{k: v for k, v in tokenizer_cfg.items() if k not in ("architectures", "model_type")})).eval()
            with torch.no_grad():
                # Codebooks start at zero: randomise them so encode/decode give non-degenerate codes and audio.
                for name, tensor in list(tokenizer.named_parameters()) + list(tokenizer.named_buffers()):
                    if name.endswith(("embedding_sum", "embed_sum")):
                        tensor.normal_(0.0, 1.0)
                # HF init shrinks the signal through ~30 convs to ~1e-8; fan-in init keeps the output audible.
                for module in tokenizer.decoder.modules():
                    if isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
                        module.reset_parameters()
    finally:
        torch.set_default_dtype(previous_dtype)
    _save_weights(tokenizer, out / "speech_tokenizer" / "model.safetensors", dtype)
    return out
