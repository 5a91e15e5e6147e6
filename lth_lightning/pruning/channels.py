"""Channel (structured) tickets: which conv channels and hidden units to keep, and the compact net they give.

A group is a set of output channels that must go together: a conv's filters with its BatchNorm and the
next layer's input channels, or -- across a residual addition -- every conv writing into the same sum.
torch-pruning's ``DependencyGraph`` traces the groups (we do not hand-write a tracer). Each channel is
scored by its weight norm divided by its layer's mean channel norm (the paper's layer-normalised
criterion, per channel), averaged over the group's output layers; one global threshold keeps the top
``1 - ratio`` of all channels. The classifier's outputs are never pruned, and a ratio that would empty a
group is refused.

A channel ticket keeps two equivalent forms: full-size masks over every entry a removed channel touches
(weights, biases, BN; ``tickets compare`` and the early-bird distance use them), and the kept channel
indices per group root, from which ``compact`` physically removes the rest. Before training the masked
full net and the compact net compute the same logits; after compaction the compact net needs no masks.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch_pruning as tp
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lth_lightning.errors import TicketError
from lth_lightning.models import classifier_name
from lth_lightning.pruning.tickets import Ticket


def _graph(model: nn.Module, shape: Sequence[int]) -> tp.DependencyGraph:
    """Trace the channel dependencies. The tracer runs ``model.eval()``; every module's mode is restored
    (a net left in eval mode would train with frozen BatchNorm statistics)."""
    param = next(model.parameters())
    example = torch.zeros(1, *shape, device=param.device, dtype=param.dtype)
    modes = {m: m.training for m in model.modules()}
    try:
        with torch.enable_grad():  # the tracer follows autograd; callers may run under no_grad (validation)
            return tp.DependencyGraph().build_dependency(model, example_inputs=example)
    except Exception as err:  # an architecture the tracer cannot follow: say so, once
        raise TicketError(f"channel pruning cannot trace {type(model).__name__}: {err}") from None
    finally:
        for module, training in modes.items():
            module.train(training)


Traced = tuple[tp.DependencyGraph, dict[str, tp.Group]]  # the graph and the prunable groups by root layer


def groups(model: nn.Module, shape: Sequence[int]) -> Traced:
    """The prunable channel groups by their root layer's name (classifier outputs excluded). Tracing costs a
    forward pass through torch-pruning's tracer: trace once per prune and pass the result on."""
    graph = _graph(model, shape)
    names = {m: n for n, m in model.named_modules()}
    ignored = [model.get_submodule(classifier_name(model))]
    by_root = {}
    for group in graph.get_all_groups(ignored_layers=ignored, root_module_types=[nn.Conv2d, nn.Linear]):
        by_root[names[group[0].dep.target.module]] = group
    return graph, by_root


def _norms(module: nn.Module) -> torch.Tensor:
    """Per-output-channel L2 norm of a conv/linear weight, divided by the layer's mean channel norm."""
    norm = module.weight.detach().float().flatten(1).norm(dim=1)
    return norm / norm.mean().clamp_min(1e-12)


def channel_scores(model: nn.Module, shape: Sequence[int], traced: Traced | None = None) -> dict[str, torch.Tensor]:
    """Per group root: each channel's layer-normalised norm, averaged over the group's output layers
    (``traced``: the net's groups, traced before; the weights are read now)."""
    graph, by_root = traced or groups(model, shape)
    scores = {}
    for root, group in by_root.items():
        parts = [_norms(dep.target.module)[list(idxs)] for dep, idxs in group
                 if graph.is_out_channel_pruning_fn(dep.handler)
                 and isinstance(dep.target.module, nn.Conv2d | nn.Linear)]
        scores[root] = torch.stack(parts).mean(0)
    return scores


def keep_channels(scores: dict[str, torch.Tensor], ratio: float, multiple: int = 1) -> dict[str, torch.Tensor]:
    """Kept channel indices per group: one global threshold removes ``round(ratio * total)`` channels, then
    each group's count is rounded to the nearest multiple of ``multiple`` (at least one multiple, at most the
    group's width), keeping its best-scored channels. Tensor cores want channel counts in multiples of 8: a
    compact layer of 35 channels runs no faster on a GPU than one of 64.

    So the cut achieved differs from ``ratio`` (``removed_fraction`` says by how much); with ``multiple > 1`` no
    ratio empties a group (it keeps at least one multiple), and a group narrower than ``multiple`` keeps every
    channel. With ``multiple = 1`` a ratio that would empty a group is refused."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"channel ratio {ratio} must be in [0, 1)")
    flat = torch.cat(list(scores.values()))
    keep = torch.ones(flat.numel(), dtype=torch.bool)
    keep[torch.sort(flat, stable=True).indices[: round(ratio * flat.numel())]] = False
    out, offset = {}, 0
    for root, s in scores.items():
        kept = keep[offset : offset + s.numel()].nonzero().flatten()
        offset += s.numel()
        if kept.numel() == 0 and multiple == 1:
            raise TicketError(f"prune.ratio={ratio} would remove every channel of {root}: lower the ratio (or "
                              "align with prune.channel_multiple > 1, which keeps at least one multiple per group)")
        count = min(s.numel(), max(multiple, multiple * round(kept.numel() / multiple)))
        if count != kept.numel():  # the group's best ``count`` channels instead
            kept = torch.sort(s, descending=True, stable=True).indices[:count].sort().values
        out[root] = kept
    return out


def removed_fraction(scores: dict[str, torch.Tensor], kept: dict[str, torch.Tensor]) -> float:
    """The fraction of all scored channels a ticket removes (what was achieved, after rounding)."""
    total = sum(len(s) for s in scores.values())
    return 1.0 - sum(len(kept[root]) for root in scores) / total


def keep_mask(scores: dict[str, torch.Tensor], kept: dict[str, torch.Tensor]) -> torch.Tensor:
    """One flat boolean mask over every scored channel, group by group: True where the channel is kept."""
    return torch.cat([torch.zeros(len(s), dtype=torch.bool).index_fill_(0, kept[root], True)
                      for root, s in scores.items()])


def channel_masks(model: nn.Module, shape: Sequence[int], kept: dict[str, torch.Tensor],
                  traced: Traced | None = None) -> dict[str, torch.Tensor]:
    """Full-size keep-masks over every parameter a removed channel touches (weights, biases, BN)."""
    graph, by_root = traced or groups(model, shape)
    names = {m: n for n, m in model.named_modules()}
    masks: dict[str, torch.Tensor] = {}
    for root, removed in _removed(by_root, kept).items():
        for dep, idxs in graph.get_pruning_group(model.get_submodule(root), by_root[root][0].dep.handler, removed):
            module = dep.target.module
            if module in names:  # parameter-free ops (activations, additions, flatten) are graph-only nodes
                _mask_dep(masks, names[module], module, graph.is_out_channel_pruning_fn(dep.handler),
                          [int(i) for i in idxs])
    return masks


def _removed(by_root: dict[str, tp.Group], kept: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    """Per group root with something to remove: the removed channel indices. Kept indices that do not fit
    this net's groups (a ticket found on another architecture) are a ``TicketError``."""
    if set(kept) != set(by_root):
        raise TicketError(f"the channel ticket's groups ({', '.join(sorted(kept))}) are not this model's "
                          f"({', '.join(sorted(by_root))})")
    out = {}
    for root, group in by_root.items():
        module = group[0].dep.target.module
        width = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
        if kept[root].numel() == 0 or int(kept[root].max()) >= width:
            raise TicketError(f"the channel ticket keeps channels {root} does not have (width {width})")
        removed = sorted(set(range(width)) - set(kept[root].tolist()))
        if removed:
            out[root] = removed
    return out


def _mask_dep(masks: dict[str, torch.Tensor], name: str, module: nn.Module, out: bool, idxs: list[int]) -> None:
    """Zero the slices of ``module``'s parameters that ``idxs`` (output or input channels) touch."""
    if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d) or (out and isinstance(module, nn.Conv2d | nn.Linear)):
        parts, dim = ("weight", "bias"), 0
    elif isinstance(module, nn.Conv2d | nn.Linear):
        parts, dim = ("weight",), 1
    else:
        return  # ops without parameters (activations, pooling, additions, flatten)
    for part in parts:
        param = getattr(module, part, None)
        if param is not None:
            mask = masks.setdefault(f"{name}.{part}", torch.ones_like(param, dtype=torch.bool))
            mask.index_fill_(dim, torch.tensor(idxs, dtype=torch.long), False)


def compact(model: nn.Module, shape: Sequence[int], kept: dict[str, torch.Tensor]) -> nn.Module:
    """Remove every channel not in ``kept`` from ``model`` in place (a smaller dense net); returns it.

    The surviving weights are copied, not changed: the compact net starts exactly where the full one was."""
    graph, by_root = groups(model, shape)
    for root, removed in _removed(by_root, kept).items():
        graph.get_pruning_group(model.get_submodule(root), by_root[root][0].dep.handler, removed).prune()
    return model


def macs(model: nn.Module, shape: Sequence[int]) -> int:
    """Multiply-accumulates of one forward pass on one example, counted by torch's own FlopCounterMode."""
    probe = copy.deepcopy(model).eval()  # a train-mode forward would move BatchNorm's running statistics
    param = next(probe.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        probe(torch.zeros(1, *shape, device=param.device, dtype=param.dtype))
    return counter.get_total_flops() // 2


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def compact_state(ticket: Ticket, full: nn.Module, shape: Sequence[int]) -> dict[str, torch.Tensor]:
    """A channel ticket's compact weights: its (full-size) weights in ``full``, the removed channels cut."""
    ticket.apply_to(full)
    return compact(full, shape, ticket.channels).state_dict()
