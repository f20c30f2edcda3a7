"""Real transformers detectors (tiny, random weights, built offline) loaded from folders through
`load_detector`, run over real sampled frames: shapes and plumbing, never what they "see".
SAM2's video model propagates first-frame boxes as masks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import synthetic
import torch
from synthetic import make_video

from motionsight.detect import Detections, detect_and_track, load_detector
from motionsight.detect.detectors import grounding_text, parse_prompts
from motionsight.detect.tracking import Sam2Tracker

WORDS = ["train", "person", "car", "dog", "mower", "a", "the", "moving", "object"]


@pytest.fixture(scope="session")
def grounding_dino_folder(tmp_path_factory) -> Path:
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    # BERT's ids for [CLS], [SEP], "." and "?" are hard-coded in the model: keep them
    vocab = {f"[unused{i}]": i for i in range(1100)}
    special = {
        "[PAD]": 0,
        "[UNK]": 100,
        "[CLS]": 101,
        "[SEP]": 102,
        "[MASK]": 103,
        ".": 1012,
        "?": 1029,
    }
    special.update({w: 1030 + k for k, w in enumerate(WORDS)})
    for token, i in special.items():
        del vocab[f"[unused{i}]"]
        vocab[token] = i
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(
            image_size=64,
            patch_size=2,
            embed_dim=8,
            depths=[1] * 4,
            num_heads=[1] * 4,
            window_size=4,
            out_indices=[2, 3, 4],
        ),
        text_config=BertConfig(
            vocab_size=1100,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
        ),
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,
        num_queries=10,
        num_feature_levels=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
    )
    folder = tmp_path_factory.mktemp("grounding_dino")
    torch.manual_seed(0)
    GroundingDinoForObjectDetection(config).save_pretrained(folder)
    processor = GroundingDinoProcessor(
        GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 64}),
        BertTokenizer(vocab=vocab),
    )
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def owlv2_folder(tmp_path_factory) -> Path:
    from tokenizers import pre_tokenizers
    from transformers import (
        CLIPTokenizer,
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
    )

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {tok: i for i, tok in enumerate(alphabet + [c + "</w>" for c in alphabet])}
    # a query is valid only if its first id is > 0: start/end of text take the last ids
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    size = len(vocab)
    config = Owlv2Config(
        text_config={
            "vocab_size": size,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": size - 2,
            "eos_token_id": size - 1,
            "pad_token_id": size - 1,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 64,
            "patch_size": 16,
        },
        projection_dim=32,
    )
    folder = tmp_path_factory.mktemp("owlv2")
    torch.manual_seed(0)
    Owlv2ForObjectDetection(config).save_pretrained(folder)
    Owlv2Processor(
        Owlv2ImageProcessor(size={"height": 64, "width": 64}), CLIPTokenizer(vocab=vocab, merges=[])
    ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def sam2_folder(tmp_path_factory) -> Path:
    pytest.importorskip(
        "torchvision", reason="transformers' SAM2 video processor needs torchvision"
    )
    from transformers import (
        Sam2ImageProcessor,
        Sam2VideoConfig,
        Sam2VideoModel,
        Sam2VideoProcessor,
        Sam2VideoVideoProcessor,
    )
    from transformers.models.sam2.configuration_sam2 import Sam2HieraDetConfig, Sam2VisionConfig

    vision = Sam2VisionConfig(
        backbone_config=Sam2HieraDetConfig(
            hidden_size=12,
            image_size=[128, 128],
            blocks_per_stage=[1, 1, 2, 1],
            embed_dim_per_stage=[12, 24, 48, 96],
            num_attention_heads_per_stage=[1, 1, 1, 1],
            window_size_per_stage=[4, 4, 4, 4],
            global_attention_blocks=[3],
            window_positional_embedding_background_size=[4, 4],
        ),
        backbone_channel_list=[96, 48, 24, 12],
        backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]],
        fpn_hidden_size=128,
    )
    config = Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config={"hidden_size": 128, "image_size": 128, "patch_size": 16},
        mask_decoder_config={
            "hidden_size": 128,
            "mlp_dim": 256,
            "iou_head_hidden_dim": 128,
            "num_attention_heads": 2,
        },
        image_size=128,
        memory_attention_hidden_size=128,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=256,
        memory_attention_rope_feat_sizes=[8, 8],
        memory_encoder_hidden_size=128,
        memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=256,
        num_maskmem=3,
    )
    folder = tmp_path_factory.mktemp("sam2")
    torch.manual_seed(0)
    Sam2VideoModel(config).save_pretrained(folder)
    size = {"height": 128, "width": 128}
    Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(size=size),
        video_processor=Sam2VideoVideoProcessor(size=size),
    ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def real_frames(sample_videos_dir) -> torch.Tensor:
    """8 sampled frames of a real clip, small (the tiny models see 64 px anyway)."""
    return synthetic.sampled_frames(
        sample_videos_dir / "lawn_mowing.mp4", num_frames=8, max_side=160
    )


def test_prompt_parsing():
    assert parse_prompts("Train, person") == ["train", "person"]
    assert parse_prompts("train. person.") == ["train", "person"]
    assert parse_prompts(["train", " big  dog "]) == ["train", "big dog"]
    assert parse_prompts('{"action_objects": ["Train", "person\'s hands"]}') == [
        "train",
        "person's hands",
    ]
    assert parse_prompts('["dog", "ball"]') == ["dog", "ball"]
    assert grounding_text(["train", "person"]) == "train. person."


@pytest.mark.parametrize("kind", ["grounding_dino", "owlv2"])
def test_text_detectors_load_from_folder_and_detect_and_track(
    kind, grounding_dino_folder, owlv2_folder, real_frames
):
    folder = {"grounding_dino": grounding_dino_folder, "owlv2": owlv2_folder}[kind]
    # threshold 0: random weights score low; keep every query so the plumbing is exercised
    detector = load_detector(kind, str(folder), device="cpu", threshold=0.0, text_threshold=0.0)
    assert detector.kind == kind
    found = detect_and_track(real_frames, "person, mower", detector, mode="every")
    n, h, w = real_frames.shape[:3]
    assert (
        isinstance(found, Detections)
        and found.num_frames == n
        and (found.height, found.width) == (h, w)
    )
    assert all(
        b.shape[0] == 10 if kind == "grounding_dino" else b.shape[0] > 0 for b in found.boxes
    )
    for boxes, ids in zip(found.boxes, found.track_ids, strict=True):
        assert bool((boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all() and (boxes >= 0).all())
        assert bool((ids >= 0).all()) and len(set(ids.tolist())) == len(
            ids
        )  # every box tracked, ids unique per frame
    assert (
        found.info["detector"] == kind
        and found.info["prompts"] == ["person", "mower"]
        and found.info["tracker"] == "iou"
    )
    if kind == "owlv2":
        assert {lab for frame in found.labels for lab in frame} <= {"person", "mower"}
    # "first" keeps only the tracks that start on the first frame
    first = detect_and_track(real_frames, "person", detector, mode="first")
    starters = set(first.track_ids[0].tolist())
    assert all(set(ids.tolist()) <= starters for ids in first.track_ids)
    assert found.to_mask().shape == (n, h, w) and len(found.to_bbox()) == n


def test_sam2_tracks_first_frame_boxes_as_masks(sam2_folder, grounding_dino_folder):
    video = make_video(num_frames=6, height=90, width=160)
    # mask threshold far below any logit: every propagated mask is the whole frame, so the
    # plumbing (ids, masks -> boxes, merge) is checked independently of the random weights
    tracker = Sam2Tracker(str(sam2_folder), device="cpu", mask_threshold=-1e9)
    motion = load_detector("motion")
    found = detect_and_track(video.frames, "", motion, mode="first", tracker=tracker)
    assert found.info["tracker"] == "sam2" and found.masks is not None
    assert all(m.shape == (1, 90, 160) for m in found.masks)
    assert found.to_bbox() == [[0.0, 0.0, 160.0, 90.0]] * 6
    assert [t.tolist() for t in found.track_ids] == [[0]] * 6
    # a text detector's first-frame boxes prompt SAM2 the same way; duplicates (IoU > 0.8) merge
    gd = load_detector(
        "grounding_dino",
        str(grounding_dino_folder),
        device="cpu",
        threshold=0.0,
        text_threshold=0.0,
    )
    found = detect_and_track(video.frames, "object", gd, mode="first", tracker=tracker)
    assert found.num_frames == 6 and found.masks is not None
    assert all(
        len(ids) == 1 for ids in found.track_ids
    )  # whole-frame masks of all objects merge into one


def test_bad_model_folders_and_empty_prompts_are_clear_errors(tmp_path, grounding_dino_folder):
    with pytest.raises(FileNotFoundError, match="not found.*allow_download"):
        load_detector("grounding_dino", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="no config.json"):
        load_detector("owlv2", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match=r"holds a 'bert' model; expected model_type 'owlv2'"):
        load_detector("owlv2", str(tmp_path))
    with pytest.raises(ValueError, match="expected model_type 'owlv2'"):
        load_detector(
            "owlv2", str(grounding_dino_folder)
        )  # a GroundingDINO folder is not an OWLv2 one
    with pytest.raises(ValueError, match="no model given"):
        load_detector("grounding_dino")
    detector = load_detector("grounding_dino", str(grounding_dino_folder), device="cpu")
    with pytest.raises(ValueError, match="object prompt is empty"):
        detect_and_track(torch.rand(2, 32, 32, 3), " , . ", detector)
    with pytest.raises(ValueError, match="zero frames"):
        detector.detect(torch.zeros(0, 32, 32, 3), ["train"])
