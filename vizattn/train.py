"""Training: the backbone once (with the FCN head), then every attention head on the frozen backbone.

The papers compare modules by swapping only the head; training heads on one frozen backbone does the same
and lets the zoo share one pass of backbone features, which keeps it inside a CPU budget.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vizattn.data import CLASSES, PALETTE, generate_scene
from vizattn.evaluate import EVAL_SEED_BASE, MEAN, STD, evaluate, to_tensor
from vizattn.models.receptive_field import receptive_field
from vizattn.models.segmenter import HEADS, ModelConfig, Segmenter, build_model
from vizattn.errors import VizattnError
from vizattn.zoo import PRETRAINED, load, save

BASELINE = "fcn"


@dataclass
class TrainConfig:
    size: int = 384  # scene side; scene geometry scales with it while the receptive field does not
    pool: int = 1500  # training scenes: seeds seed*10^6 .. seed*10^6+pool-1 (held-out ones start at 10^9)
    crop: int = 160  # the backbone trains on random crops (it is local anyway); heads see whole scenes
    backbone_steps: int = 3000
    head_steps: int = 1000
    colour_weight: float = 0.5  # auxiliary loss keeping appearance (tint) in the backbone's features
    batch: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    eval_scenes: int = 100
    threads: int = 2


def _seed_everything(seed: int, threads: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def scene_pool(cfg: TrainConfig, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    seeds = [cfg.seed * 1_000_000 + i for i in range(cfg.pool)]
    assert max(seeds) < EVAL_SEED_BASE
    scenes = [generate_scene(s, (cfg.size, cfg.size)) for s in tqdm(seeds, desc="scenes", disable=not progress)]
    return np.stack([s.image for s in scenes]), np.stack([s.labels for s in scenes]).astype(np.int64)


def _optimizer(params, cfg: TrainConfig, steps: int):
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm)))
    )
    return opt, sched


def _step(opt, sched, loss, bar) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    bar.set_postfix(loss=f"{loss.item():.3f}")


def _loss(logits, labels):
    return F.cross_entropy(F.interpolate(logits, size=labels.shape[1:], mode="bilinear", align_corners=False), labels)


def train_backbone(cfg: TrainConfig, images, labels, progress=True) -> Segmenter:
    """Backbone + FCN head, trained end to end on random crops of the scene pool with horizontal flips.

    An auxiliary 1×1 conv regresses each cell's mean colour from the backbone's output. Segmentation
    alone gives a local model no reason to keep a region's exact tint (it cannot use it), yet the
    context modules need it to match regions across the scene; the papers' backbones keep such
    appearance from ImageNet pretraining. The auxiliary conv is thrown away after training.
    """
    gen = _seed_everything(cfg.seed, cfg.threads)
    model = build_model(ModelConfig(BASELINE)).train()
    colour = torch.nn.Conv2d(model.backbone.high_channels, 3, 1)
    params = list(model.parameters()) + list(colour.parameters())
    opt, sched = _optimizer(params, cfg, cfg.backbone_steps)
    bar = tqdm(range(cfg.backbone_steps), desc="train backbone+fcn", disable=not progress)
    for _ in bar:
        idx = torch.randint(len(images), (cfg.batch,), generator=gen).numpy()
        top, left = torch.randint(cfg.size - cfg.crop + 1, (2,), generator=gen).tolist()
        window = (idx, slice(top, top + cfg.crop), slice(left, left + cfg.crop))
        x, y = to_tensor(images[window]), torch.from_numpy(labels[window])
        flip = torch.rand(cfg.batch, generator=gen) < 0.5
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        low, high = model.backbone(x)
        logits = F.interpolate(model.head(low, high), size=x.shape[2:], mode="bilinear", align_corners=False)
        target = F.adaptive_avg_pool2d(x, high.shape[2:])
        _step(opt, sched, F.cross_entropy(logits, y) + cfg.colour_weight * F.mse_loss(colour(high), target), bar)
    return model.eval()


@torch.no_grad()
def backbone_features(model: Segmenter, images, batch: int = 16, progress=True):
    """(low, high) stride-8 features of every pool image, computed once and shared by every head."""
    model.eval()
    lows, highs = [], []
    for s in tqdm(range(0, len(images), batch), desc="backbone features", disable=not progress):
        low, high = model.backbone(to_tensor(images[s : s + batch]))
        lows.append(low.half())
        highs.append(high.half())
    return torch.cat(lows), torch.cat(highs)


def train_head(head: str, backbone_model: Segmenter, feats, labels, cfg: TrainConfig, progress=True) -> Segmenter:
    """A head hosting one context module, trained on the frozen backbone's features."""
    gen = _seed_everything(cfg.seed + 1, cfg.threads)
    model = build_model(ModelConfig(head))
    model.backbone.load_state_dict(backbone_model.backbone.state_dict())
    model.backbone.requires_grad_(False).eval()
    model.head.train()
    low_all, high_all = feats
    opt, sched = _optimizer(model.head.parameters(), cfg, cfg.head_steps)
    bar = tqdm(range(cfg.head_steps), desc=f"train head {head}", disable=not progress)
    for _ in bar:
        idx = torch.randint(len(labels), (cfg.batch,), generator=gen)
        _step(opt, sched, _loss(model.head(low_all[idx].float(), high_all[idx].float()),
                                torch.from_numpy(labels[idx.numpy()])), bar)
    return model.eval()


def _card(model: Segmenter, cfg: TrainConfig, wall: float, metrics: dict, backbone_wall: float) -> dict:
    head = model.config.head
    return {
        "name": head,
        "head": head,
        "module": HEADS[head][0],
        "module_options": model.config.module_settings,
        "config": model.config.to_dict(),
        "classes": list(CLASSES),
        "palette": PALETTE.tolist(),
        "normalisation": {"mean": list(MEAN), "std": list(STD), "scale": "uint8 / 255 first"},
        "input_size": [cfg.size, cfg.size],
        "receptive_field_px": {"backbone": receptive_field(model.backbone), "model_without_attention": receptive_field(model)},
        "training": {
            **asdict(cfg), "backbone": "trained end to end with a throw-away FCN head, then frozen",
            "head_wall_time_s": round(wall, 1), "backbone_wall_time_s_if_trained_in_this_run": round(backbone_wall, 1),
            "train_seeds": f"{cfg.seed * 1_000_000}..{cfg.seed * 1_000_000 + cfg.pool - 1}",
            "torch": torch.__version__,
        },
        "evaluation": metrics,
        "reproduce": f"vizattn train --head {head} --seed {cfg.seed}",
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def train(heads: list[str], cfg: TrainConfig, out_dir: Path = PRETRAINED, progress: bool = True) -> dict[str, dict]:
    """Train the named heads and write weights + cards. The backbone is trained first (end to end with a
    throw-away FCN head) when `fcn` is asked for or no trained backbone exists yet; then every head,
    the FCN baseline included, gets the same schedule on the same frozen backbone."""
    from vizattn.outputs import output_dir

    out_dir = output_dir(out_dir)
    unknown = [h for h in heads if h not in HEADS]
    if unknown:
        raise VizattnError(f"Unknown head(s) {', '.join(unknown)}; choose from {', '.join(HEADS)}.")
    images, labels = scene_pool(cfg, progress)
    base_path = out_dir / f"{BASELINE}.safetensors"
    backbone_wall = 0.0
    if BASELINE in heads or not base_path.is_file():
        t0 = time.time()
        base = train_backbone(cfg, images, labels, progress)
        backbone_wall = time.time() - t0
        heads = [BASELINE] + [h for h in heads if h != BASELINE]
    else:
        base = load(str(base_path))
    _seed_everything(cfg.seed, cfg.threads)
    feats = backbone_features(base, images, progress=progress)
    cards = {}
    for head in heads:
        t0 = time.time()
        model = train_head(head, base, feats, labels, cfg, progress)
        wall = time.time() - t0
        metrics = evaluate(model, cfg.eval_scenes, EVAL_SEED_BASE, (cfg.size, cfg.size), progress=progress)
        cards[head] = _card(model, cfg, wall, metrics, backbone_wall)
        save(model, out_dir / f"{head}.safetensors", cards[head])
    return cards
